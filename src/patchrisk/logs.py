"""One logging format for every process (components, servers, jobs)."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("PATCHRISK_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "botocore", "urllib3", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
