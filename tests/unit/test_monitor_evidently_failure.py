"""Evidently only draws the page: when it fails, the window keeps its summary, verdicts and decision,
and the summary's evidently section says why there is no page."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from patchrisk.monitoring.drift import evidently_report
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.job import evidently_page


def test_an_evidently_failure_costs_only_the_page(monkeypatch):
    def broken(*_args, **_kwargs):
        raise ValueError("An empty column 'x' was provided for drift calculation")

    monkeypatch.setattr(evidently_report, "build_report", broken)
    reference = SimpleNamespace(sample_parquet=pd.DataFrame({"a": [1.0]}).to_parquet(), spec=None)
    analysis = SimpleNamespace(sample=pd.DataFrame({"a": [2.0]}), verdict=SimpleNamespace(rows=1))
    said = []
    html, section = evidently_page(reference, analysis, load_config(), said.append)
    assert html is None
    assert section == {"error": "ValueError: An empty column 'x' was provided for drift calculation"}
    assert said[-1] == ("warning: no Evidently page for this window (ValueError: An empty column 'x' was "
                        "provided for drift calculation); the verdicts come from the window's statistics")
