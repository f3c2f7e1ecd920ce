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


def _gate_report_html() -> str:
    from patchrisk.gates.policy import load_policy
    from patchrisk.gates.render import render_html
    from patchrisk.gates.runner import run_gates
    from tests.unit import gates_support as models

    return render_html(run_gates(models.biased_model(), models.holdout(), load_policy("patch-risk")))


REPORTS = {"reliability": lambda: render_reliability_report(sample_inputs()), "gate": _gate_report_html}
RAW_NUMBER = r"\bnan\b|\d\.?\d*e[+-]\d"  # what a dump prints: nan, 1.49e+03


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="Chromium not installed (make test installs it)")
@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_fits_1280px_and_shows_numbers_for_people(name, tmp_path):
    import re

    from playwright.sync_api import sync_playwright

    path = tmp_path / f"{name}.html"
    path.write_text(REPORTS[name]())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(path.as_uri())
        layout = page.evaluate("""() => ({
            page: document.documentElement.scrollWidth, viewport: window.innerWidth,
            wide: [...document.querySelectorAll('table, svg, img, pre')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .map(e => e.tagName + ' ' + (e.getAttribute('aria-label') || e.textContent.slice(0, 60)))})""")
        text = page.inner_text("body")
        browser.close()
    assert layout["page"] <= layout["viewport"], layout
    assert layout["wide"] == [], layout
    assert not re.search(RAW_NUMBER, text, re.IGNORECASE), re.findall(rf".{{0,40}}(?:{RAW_NUMBER}).{{0,20}}", text, re.IGNORECASE)
