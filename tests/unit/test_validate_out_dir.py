"""`patchrisk validate --out` that cannot be a directory is named before any gate runs (exit 2)."""

from __future__ import annotations

from tests.cli_support import run_patchrisk


def test_an_out_dir_that_is_a_file_is_refused_before_the_model_is_loaded(tmp_path, capsys, monkeypatch):
    from patchrisk import registry

    def model_files(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(registry, "model_files", model_files)
    a_file = tmp_path / "report.txt"
    a_file.write_text("keep me\n")
    ran = run_patchrisk(["validate", "--model", tmp_path / "model", "--data", tmp_path / "holdout.csv",
                         "--out", a_file], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip() == f"error: {a_file}: not a directory (a file is there)"
    assert a_file.read_text() == "keep me\n"
