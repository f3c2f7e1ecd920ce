"""Numbers and drivers in reports: what a person reads, never nan or 1.49e+03."""

import math

import pytest

from patchrisk.reporting.humanize import cell, driver, number
from patchrisk.spec import load_spec


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (2023233.0, None, "2,023,233"),
    (1361040.349, None, "1,361,040"),
    (1490.3, "days", "1,490 days"),
    (35.0, "%", "35%"),
    (0.8567, None, "0.86"),
    (0.00042, None, "0.00042"),
    (0, None, "0"),
    (float("nan"), "days", "missing"),
    (None, None, "missing"),
    (True, None, "yes"),
    (math.inf, None, "infinite"),
])
def test_number(value, unit, expected):
    assert number(value, unit) == expected


def test_drivers_are_phrased_with_names_units_and_missing():
    assert driver("test coverage", float("nan"), 0.6412, "%") == "test coverage missing (+0.64)"
    assert driver("device age", 1490.0, 0.449, "days") == "device age 1,490 days (+0.45)"
    assert driver("hotfix lane", True, 0.31) == "hotfix lane yes (+0.31)"
    assert driver("component", "bootloader", 0.2) == "component bootloader (+0.20)"


def test_cells_know_scores_and_percentages():
    assert cell("risk_score", 0.4012345) == "0.40"
    assert cell("test_coverage_pct", 35.27) == "35.3%"
    assert cell("expected_devices_affected", 1361040.349) == "1,361,040"
    assert cell("top_features", "device age 1,490 days (+0.45)") == "device age 1,490 days (+0.45)"


def test_spec_display_names_and_units_are_optional_and_leave_the_fingerprint_alone():
    spec = load_spec("patch-risk")
    age = next(f for f in spec.features if f.name == "avg_device_age_days")
    assert (age.label, age.unit) == ("device age", "days")
    region = next(f for f in spec.features if f.name == "region")
    assert (region.label, region.unit) == ("region", None)  # no display name: the name, readable
    bare = spec.model_copy(update={"features": tuple(f.model_copy(update={"display_name": None, "unit": None})
                                                     for f in spec.features)})
    assert bare.fingerprint() == spec.fingerprint()


def test_batch_scoring_names_each_patchs_drivers_in_words(trained_patch_model, patch_rows):
    import re

    from patchrisk.batch_scoring import score_patches

    result, _ = trained_patch_model
    rows = patch_rows.head(300).copy()
    rows["test_coverage_pct"] = float("nan")  # the suite did not report: a missing value, not "nan"
    drivers = "; ".join(score_patches(result.bundle, rows)["top_features"])
    assert "test coverage missing (+" in drivers
    assert not re.search(r"\bnan\b|\de[+-]\d|_", drivers), drivers  # no nan, no 1.49e+03, no column names
    for phrase in re.findall(r"device age [^;(]*\(", drivers):
        assert re.fullmatch(r"device age [\d,]+ days \(", phrase), phrase
