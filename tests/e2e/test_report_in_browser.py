"""The reliability report in a real headless Chromium: no console errors, charts rendered."""

import os
import shutil

import pytest

from patchrisk.reliability_report import render_reliability_report
from tests.unit.test_reliability_report import sample_inputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="Chromium not installed (make test installs it)")
def test_report_loads_without_console_errors_and_draws_its_charts(tmp_path):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(render_reliability_report(sample_inputs()))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        problems = []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.goto(path.as_uri())
        charts = page.eval_on_selector_all(
            "svg.chart", "els => els.map(e => { const b = e.getBBox(); "
                         "return {w: b.width, h: b.height, marks: e.querySelectorAll('rect,polyline').length}; })")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert problems == []
    assert len(charts) >= 6
    assert all(c["w"] > 100 and c["h"] > 30 and c["marks"] >= 1 for c in charts), charts
