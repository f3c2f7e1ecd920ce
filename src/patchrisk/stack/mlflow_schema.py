"""Fresh SQLite stores for the local MLflow server, copied from empty stores migrated once per MLflow version.

Why: on a fresh SQLite file MLflow runs every Alembic migration of its tracking schema, and of its
auth schema with basic auth on, ≈ 1.5-2 CPU-s per start, and ``make test`` starts the local server
about 9 times. MLflow accepts a database that is already at its schema head (it checks the revision
and skips the migrations), so the first start migrates an empty file into the template cache and
every later fresh store is a copy of it. Templates hold schema only: MLflow adds the Default
experiment and the admin user at each start, with that start's settings. A store that exists is
never touched, and a PostgreSQL store is migrated by MLflow as always.

The cache is ``$PATCHRISK_MLFLOW_SCHEMA_CACHE`` or ``~/.cache/patchrisk/mlflow-<version>/``; a template
is written to a temp file beside it and renamed into place, so a reader never sees half of one.
If the cache cannot be written the store is left to MLflow (slower, same result).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "PATCHRISK_MLFLOW_SCHEMA_CACHE"
TRACKING_TEMPLATE = "tracking.db"
AUTH_TEMPLATE = "basic_auth.db"

_logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    from mlflow.version import VERSION

    base = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patchrisk"
    return Path(base) / f"mlflow-{VERSION}"


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI; None for any other store (or an in-memory one)."""
    # SQLAlchemy parses only what names its SQLite dialect: MLflow imports it anyway for a SQLite
    # store, but a client of a tracking server (http) never does, and paid ~0.2 s of CPU here for it.
    if uri.split(":", 1)[0].split("+", 1)[0].lower() != "sqlite":
        return None
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def seed_tracking_store(uri: str) -> str:
    """Copy the migrated tracking-schema template to ``uri``'s file if it has none; says what happened."""
    return _seed(uri, TRACKING_TEMPLATE, _migrate_tracking_schema)


def seed_auth_store(uri: str) -> str:
    """The same for the basic-auth app's user store."""
    return _seed(uri, AUTH_TEMPLATE, _migrate_auth_schema)


def _migrate_tracking_schema(path: Path) -> None:
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables  # what SqlAlchemyStore runs on an empty database

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def _migrate_auth_schema(path: Path) -> None:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{path}")
    store.engine.dispose()


def _seed(uri: str, template_name: str, migrate: Callable[[Path], None]) -> str:
    target = sqlite_file(uri)
    if target is None:
        return "not SQLite: MLflow migrates it"
    if target.exists():
        return f"{target} exists: kept"
    try:
        # inside the try: a sandboxed user with no HOME and no passwd entry has no home (RuntimeError),
        # and every command's registry client seeds here, so that must cost speed, never the command
        template = cache_dir() / template_name
        if not template.is_file():
            _write_atomically(template, migrate)
            _logger.info("migrated an empty MLflow schema into %s (once per MLflow version)", template)
        write_new(target, lambda tmp: shutil.copyfile(template, tmp))
    except FileExistsError:  # another process created it meanwhile: its writes win
        return f"{target} exists: kept"
    except (OSError, RuntimeError) as err:  # an unwritable cache or a full disk: MLflow migrates the fresh file itself
        return f"no template ({err}): MLflow migrates {target}"
    return f"{target}: copied from {template}"


def write_new(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` fills a temp file beside ``path``, which is then linked in as ``path`` only if no
    ``path`` exists by then (FileExistsError): two commands seeding one new store at once (the CLI
    seeds its local registry too) must not replace what the first one already wrote."""
    _write_through_temp(path, write, os.link)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` fills a temp file in ``path``'s directory, which then replaces ``path`` in one rename."""
    _write_through_temp(path, write, os.replace)


def _write_through_temp(path: Path, write: Callable[[Path], None], publish: Callable[[str, Path], None]) -> None:
    """Readers of ``path`` never see a half-written file: it appears only once ``write`` is done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(name))
        publish(name, path)
    finally:
        Path(name).unlink(missing_ok=True)  # gone after a replace; the spare link after a link
