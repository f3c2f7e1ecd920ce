"""upload_dir can hold one file back until every other one is stored: a copy whose completeness
marker is there is whole, so a reader (or an idempotent retry) that trusts the marker never takes a
copy cut short for a finished one."""

from __future__ import annotations

import pytest

from patchrisk import storage
from patchrisk.storage import Store, upload_dir


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "model"
    directory.mkdir()
    # 'registration.json' sorts before 'spec.yaml' and 'zz.bin', after 'metadata.json'
    for name in ("metadata.json", "model.cbm", "registration.json", "spec.yaml", "zz.bin"):
        (directory / name).write_text(name)
    return directory


def test_the_marker_is_written_after_every_other_file(model_dir, tmp_path, monkeypatch):
    written = []
    real_write = Store.write_bytes

    def recording_write(self, relative, data):
        written.append(relative)
        return real_write(self, relative, data)

    monkeypatch.setattr(storage.Store, "write_bytes", recording_write)
    upload_dir(model_dir, str(tmp_path / "copy"), last="registration.json")

    assert written[-1] == "registration.json"
    assert sorted(written) == ["metadata.json", "model.cbm", "registration.json", "spec.yaml", "zz.bin"]


def test_an_upload_that_fails_midway_leaves_no_marker(model_dir, tmp_path, monkeypatch):
    real_write = Store.write_bytes

    def failing_on_spec(self, relative, data):
        if relative == "spec.yaml":
            raise OSError("connection reset while uploading spec.yaml")
        return real_write(self, relative, data)

    monkeypatch.setattr(storage.Store, "write_bytes", failing_on_spec)
    with pytest.raises(OSError, match="spec.yaml"):
        upload_dir(model_dir, str(tmp_path / "copy"), last="registration.json")

    assert not Store(str(tmp_path / "copy")).exists("registration.json")


def test_a_marker_the_directory_lacks_is_refused_before_anything_is_written(model_dir, tmp_path):
    (model_dir / "registration.json").unlink()
    with pytest.raises(ValueError, match="registration.json"):
        upload_dir(model_dir, str(tmp_path / "copy"), last="registration.json")
    assert Store(str(tmp_path / "copy")).list() == []
