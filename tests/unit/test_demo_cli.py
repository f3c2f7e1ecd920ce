"""`make run` rolls out on the local pod runner by default; without bubblewrap it must say so before
the loop starts anything (the canary step, ten steps in, would otherwise be where it fails)."""

from typer.testing import CliRunner

from patchrisk_cli import app


def test_the_runner_loop_without_bubblewrap_exits_2_naming_the_fix_and_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    state = tmp_path / "state"
    result = CliRunner().invoke(app, ["demo", "--state-dir", str(state)])
    assert result.exit_code == 2, result.output
    assert "bubblewrap" in result.output and "make run RUNNER=0" in result.output
    assert not state.exists()  # nothing was started or written
