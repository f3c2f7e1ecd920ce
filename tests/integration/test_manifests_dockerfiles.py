"""Both image Dockerfiles pass hadolint and keep the promised shape; hadolint is not a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchrisk.manifests_check.hadolint_scan import find_dockerfiles, hadolint_binary, run_hadolint

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
IMAGES = ["components/Dockerfile", "serving/Dockerfile"]


def test_every_dockerfile_in_the_repo_is_found():
    found = {str(p.relative_to(REPO)) for p in find_dockerfiles(REPO)}
    assert set(IMAGES) | {"infra/mlflow/Dockerfile"} <= found
    assert not any(part.startswith(".venv") for path in found for part in Path(path).parts)


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_hadolint_passes(dockerfile):
    assert run_hadolint(hadolint_binary(), [REPO / dockerfile], REPO) == []


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_multi_stage_non_root_and_locked(dockerfile):
    text = (REPO / dockerfile).read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and all(f.startswith("python:3.11.") and "slim" in f for f in froms)
    final_stage = text.split("\nFROM ")[-1]
    assert "USER 1000" in final_stage
    assert "pip install" not in final_stage and "apt-get" not in final_stage  # nothing built in the final stage
    lock = {"components/Dockerfile": "requirements-components.lock",
            "serving/Dockerfile": "requirements-predictor.lock"}[str(dockerfile)]
    assert f"--requirement {lock}" in text and "pip install --no-deps ." in text
    installed = {line.split("==")[0] for line in (REPO / lock).read_text().splitlines() if "==" in line}
    assert not installed & {"pytest", "moto", "playwright", "hypothesis", "ruff", "import-linter"}  # runtime only


def test_predictor_entrypoint():
    assert 'ENTRYPOINT ["python", "-m", "patchrisk_serving.catboost_predictor"]' in (REPO / IMAGES[1]).read_text()


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    codes = {f.rule for f in run_hadolint(hadolint_binary(), [bad], tmp_path)}
    assert {"DL3007", "DL3013"} <= codes


def _deploy_guide_builds() -> list[tuple[str, str]]:
    """(Dockerfile, build context) of every `docker build -f F ... CONTEXT` in docs/deploy.md."""
    import shlex

    builds = []
    for line in (REPO / "docs" / "deploy.md").read_text().splitlines():
        if line.startswith("docker build "):
            words = shlex.split(line)
            builds.append((words[words.index("-f") + 1], words[-1]))
    return builds


def test_the_deploy_guides_builds_have_every_file_their_dockerfile_copies_in_their_context():
    """The guide built the MLflow image with context infra/mlflow, whose Dockerfile copies
    src/patchrisk/security/alias_policy.py from the repository root: the build failed."""
    builds = _deploy_guide_builds()
    assert {dockerfile for dockerfile, _ in builds} >= {*IMAGES, "infra/mlflow/Dockerfile"}
    for dockerfile, context in builds:
        for line in (REPO / dockerfile).read_text().splitlines():
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                sources = [w for w in words[1:-1] if not w.startswith("--")]
                missing = [s for s in sources if not list((REPO / context).glob(s))]
                assert not missing, f"{dockerfile} built in {context}/ copies {missing}, absent there"
