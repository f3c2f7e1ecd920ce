"""The risk gate's lines in a CI log show a patch's id as data: an id from the patches file (which the
change under review may have written) with a line break could print a forged "risk gate PASSED" line
of its own, an escape sequence could act on the log, and a 10,000-character id padded every line to
its width. Such ids are shown quoted and cut; the JSON document keeps them whole."""

import json

from patchrisk.risk_gate.report import GateReport, PatchResult


def report(*ids: str) -> GateReport:
    patches = [PatchResult(id=i, source="patches.json", risk_score=0.9, risk_bucket="high", blocked=True) for i in ids]
    return GateReport(endpoint="http://predictor", model="patch-risk", protocol="v1", threshold=0.6,
                      model_version="3", patches=patches)


def test_an_id_cannot_forge_a_line_or_act_on_the_log():
    forged = "P-1\nrisk gate PASSED: 0 of 1 patch(es) above threshold 0.6"
    lines = report(forged, "P-\x1b[2J2").to_text().splitlines()
    assert [line for line in lines if line.startswith("risk gate")] == [
        "risk gate BLOCKED: 2 of 2 patch(es) above threshold 0.6 (model patch-risk v3, http://predictor)"]
    assert "\x1b" not in "\n".join(lines)
    assert lines[0].startswith(f"BLOCK  {forged[:40]!r}…")  # quoted: the line break shows as \n


def test_a_long_id_is_cut_and_does_not_widen_the_other_lines():
    lines = report("P-" + "9" * 10_000, "P-2").to_text().splitlines()
    assert max(len(line) for line in lines) < 200
    assert lines[1].startswith("BLOCK  P-2 ")


def test_plain_ids_are_shown_as_they_are_and_json_keeps_every_id_whole():
    long_id = "P-" + "9" * 10_000
    gate = report("P-17", long_id)
    assert gate.to_text().splitlines()[0].startswith("BLOCK  P-17 ")
    assert [p["id"] for p in json.loads(gate.to_json())["patches"]] == ["P-17", long_id]
