"""The reliability-report task refuses a canary report that is none, naming it, before it asks MLflow anything."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.steps.reliability import write_reliability_report


@pytest.mark.parametrize(("content", "problem"), [
    (b'{"decision": {"action": "prom', "not a JSON analysis report"),
    (b"[1, 2]", "not an analysis report (a JSON list)"),
    (b'"promote"', "not an analysis report (a JSON str)"),
    (b'{"decision": {}}', "not an analysis report (no 'overlay_hash')"),
    (b'{"overlay_hash": "h", "decision": "promote", "canary": {}, "environment": "staging", "model": "patch-risk"}',
     "not an analysis report ('decision' is a str, not an object)"),
])
def test_a_canary_report_that_is_none_fails_the_task_with_its_name_and_writes_no_page(tmp_path, content, problem):
    report = tmp_path / "canary.json"
    report.write_bytes(content)
    qa = tmp_path / "qa.csv"
    qa.write_text("qa_rank,patch_id,risk_score\n1,P-1,0.9\n")
    out = tmp_path / "report.html"
    with pytest.raises(PatchriskError) as err:
        write_reliability_report("patch-risk", str(qa), str(out), mlflow_tracking_uri=f"sqlite:///{tmp_path}/no.db",
                                 canary_report_uri=str(report))
    assert str(err.value).startswith(f"canary_report_uri {report}: {problem}")
    assert not out.exists()
    assert not (tmp_path / "no.db").exists(), "MLflow was asked before the canary report was read"
