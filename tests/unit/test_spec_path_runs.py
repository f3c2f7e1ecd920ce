"""`patchrisk pipeline run --spec PATH` (a spec YAML by path, as its help says): each step that
checks the gate policy ahead takes the policy of that spec's name, as for a built-in spec name; the
spec file is never read as a gate policy."""

from __future__ import annotations

import shutil
from importlib import resources

import pytest

from patchrisk.datagen import generate_rows
from patchrisk.spec import load_spec


@pytest.fixture
def spec_path(tmp_path):
    """An exact copy of the built-in patch-risk spec, given by path."""
    path = tmp_path / "specs" / "patch-risk.yaml"
    path.parent.mkdir()
    with resources.as_file(resources.files("patchrisk.specs").joinpath("patch-risk.yaml")) as builtin:
        shutil.copy(builtin, path)
    return path


class _PipelineStarted(Exception):
    """Stands in for kfp.local: the checks made before any task starts have passed."""


def test_a_local_run_given_a_spec_path_starts_the_pipeline_with_it(tmp_path, spec_path, monkeypatch):
    from patchrisk_pipelines import run

    from patchrisk.settings import get_settings

    started = {}

    def pipeline_started(func, arguments, settings, log_file=None):
        started.update(arguments)
        raise _PipelineStarted

    monkeypatch.setattr(run, "run_local", pipeline_started)
    (tmp_path / "history.csv").write_text("patch_id\nP-1\n")
    with pytest.raises(_PipelineStarted):
        run.run_training_locally(get_settings(state_dir=tmp_path / "state"), data_uri=str(tmp_path / "history.csv"),
                                 spec=str(spec_path), policy_env="staging")
    assert started["spec"] == str(spec_path) and started["policy_env"] == "staging"


def test_the_validate_step_given_a_spec_path_checks_the_policy_environment_of_its_spec(tmp_path, spec_path):
    from patchrisk.errors import SpecError
    from patchrisk.steps.validate import validate_table

    table = tmp_path / "history.parquet"
    generate_rows(load_spec(spec_path), 300, seed=3).to_parquet(table, index=False)
    outputs = [str(tmp_path / name) for name in ("report.json", "report.md", "validated.parquet")]

    assert validate_table(str(spec_path), str(table), "history.parquet", *outputs, policy_env="prod")["passed"]
    with pytest.raises(SpecError, match="unknown environment 'prd'"):
        validate_table(str(spec_path), str(table), "history.parquet", *outputs, policy_env="prd")


def test_the_monitor_checks_the_gate_policy_of_a_retraining_spec_given_by_path(spec_path):
    """``retraining.spec`` is the training pipeline's ``spec`` parameter, a name or a path: the monitor's
    start-up check read a path as a gate policy and refused every config naming one."""
    from patchrisk.errors import PatchriskError
    from patchrisk.monitoring.drift.job import check_retraining_arguments

    check_retraining_arguments({"policy_env": "staging"}, str(spec_path), None)
    with pytest.raises(PatchriskError, match="retraining.arguments: .*nowhere"):
        check_retraining_arguments({"policy_env": "nowhere"}, str(spec_path), None)
