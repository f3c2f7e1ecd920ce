"""`<state>/stack/loop-stores.json` is how `serve`, `monitor`, `rollout …` and `pipeline run` find the
loop's stores. A file that is JSON but not what `make run` writes was a traceback (a list:
AttributeError), or silently an empty local registry (no `servers` list: the loop's MLflow was never
started, "no alias champion-dev"). Now it is named, with the fix, like a file that is no JSON."""

from __future__ import annotations

import json

import pytest

from patchrisk.stack.local import stack_dir
from patchrisk.stack.on_demand import StoreUnreachable, loop_stores, record_loop_stores


@pytest.mark.parametrize(("content", "problem"), [
    ([1, 2], "expected an object, got a list"),
    ({"mlflow": 5}, "'servers': expected a list of s3, mlflow, got nothing"),
    ({"servers": "s3"}, "'servers': expected a list of s3, mlflow, got 's3'"),
    ({"servers": ["s3", "postgres"]}, "'servers': expected a list of s3, mlflow, got ['s3', 'postgres']"),
    ({"servers": ["s3"], "env": ["x"]}, "'env': expected an object of text values"),
    ({"servers": ["s3", "mlflow"], "mlflow_auth": "yes"}, "'mlflow_auth': expected true or false, got 'yes'"),
])
def test_a_description_of_another_shape_is_named_with_the_fix(tmp_path, content, problem):
    path = stack_dir(tmp_path) / "loop-stores.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(content))
    with pytest.raises(StoreUnreachable) as caught:
        loop_stores(tmp_path)
    assert str(caught.value) == f"{path}: not what `make run` writes ({problem}); delete it and run `make run` again"


def test_what_make_run_writes_reads_back(tmp_path):
    record_loop_stores(tmp_path, {"PATCHRISK_ENVIRONMENT": "staging"}, mlflow=True, auth=True)
    assert loop_stores(tmp_path)["servers"] == ["s3", "mlflow"]
