"""Execute one KFP run of the stand-in: ``python -m patchrisk.localcluster.kfp_run IR RUN_DIR``
loads the pipeline version's IR and runs it with kfp.local (SubprocessRunner, this venv) with
the run's parameters (RUN_DIR/parameters.json); outputs land under RUN_DIR/root."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(ir: Path, run_dir: Path) -> None:
    from kfp import components, local

    from patchrisk.child_processes import children_temporary_directory

    parameters = json.loads((run_dir / "parameters.json").read_text())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "root"),
               raise_on_error=True)
    pipeline = components.load_component_from_file(str(ir))
    with children_temporary_directory():
        pipeline(**parameters)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
