"""Batch scoring for release planning: which patches QA tests first, which devices to watch.

QA priority ranks patches by expected impact, risk × devices targeted (the blast radius), and
names each patch's top contributing features. The device-monitoring list sums expected
regressions (Σ risk) and devices at risk (Σ risk × devices) per device family and region.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchrisk.model_bundle import ModelBundle, frame_to_matrix
from patchrisk.reporting.humanize import driver, is_missing
from patchrisk.reporting.page import page, table
from patchrisk.reporting.svg import bar_chart

TOP_FEATURES = 3
BLAST_RADIUS_COLUMN = "num_devices_targeted"


def top_contributions(bundle: ModelBundle, matrix: list[list], k: int = TOP_FEATURES) -> list[str]:
    """The k features that raise each row's risk the most, phrased for people with the spec's
    names and units: 'test coverage missing (+0.64); device age 1,490 days (+0.45)'."""
    shap = bundle.contributions(matrix)
    features = bundle.spec.features
    out = []
    for row, values in zip(matrix, shap):
        order = np.argsort(-values)[:k]
        out.append("; ".join(driver(features[i].label, _as_shown(features[i], row[i]), values[i], features[i].unit)
                             for i in order if values[i] > 0))
    return out


def _as_shown(feature, value):
    """The matrix codes booleans as numbers; a person reads 'hotfix lane yes'."""
    return bool(value) if feature.dtype == "bool" and not is_missing(value) else value


def score_patches(bundle: ModelBundle, patches: pd.DataFrame) -> pd.DataFrame:
    spec = bundle.spec
    matrix = frame_to_matrix(patches, spec)
    scored = patches[[spec.id_column, *spec.feature_names]].copy()
    scored["risk_score"] = bundle.predict_matrix(matrix)
    scored["risk_bucket"] = [spec.risk_bucket(s) for s in scored["risk_score"]]
    scored["top_features"] = top_contributions(bundle, matrix)
    return scored


def qa_priority(scored: pd.DataFrame, id_column: str) -> pd.DataFrame:
    out = scored.assign(expected_devices_affected=scored["risk_score"] * scored[BLAST_RADIUS_COLUMN])
    out = out.sort_values(["expected_devices_affected", "risk_score"], ascending=False, kind="stable")
    out.insert(0, "qa_rank", np.arange(1, len(out) + 1))
    cols = ["qa_rank", id_column, "risk_score", "risk_bucket", BLAST_RADIUS_COLUMN,
            "expected_devices_affected", "component", "device_family", "region", "top_features"]
    return out[cols].reset_index(drop=True)


def device_watchlist(scored: pd.DataFrame) -> pd.DataFrame:
    grouped = scored.assign(devices_at_risk=scored["risk_score"] * scored[BLAST_RADIUS_COLUMN],
                            high=(scored["risk_bucket"] == "high").astype(int))
    out = grouped.groupby(["device_family", "region"], observed=True).agg(
        patches=("risk_score", "size"),
        expected_regressions=("risk_score", "sum"),
        devices_at_risk=("devices_at_risk", "sum"),
        high_risk_patches=("high", "sum"),
        max_risk=("risk_score", "max"),
        riskiest_component=("component", lambda c: c.loc[grouped.loc[c.index, "risk_score"].idxmax()]),
    ).reset_index()
    out = out.sort_values(["expected_regressions", "devices_at_risk"], ascending=False, kind="stable")
    out.insert(0, "watch_rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def batch_report_html(qa: pd.DataFrame, watch: pd.DataFrame, model: str, version: str) -> str:
    top = qa.head(15)
    charts = (bar_chart(top.iloc[:, 1].astype(str).tolist(), top["expected_devices_affected"].tolist(),
                        "Expected devices affected (top 15 patches)", value_format="{:,.0f}")
              + bar_chart([f"{f} / {r}" for f, r in zip(watch["device_family"], watch["region"])][:15],
                          watch["expected_regressions"].head(15).tolist(),
                          "Expected regressions by device family / region", value_format="{:.1f}", color="#dc2626"))
    return page(f"Batch scoring: {model} v{version}", [
        ("Charts", f'<div class="charts">{charts}</div>'),
        ("QA priority list", table(qa, max_rows=40)),
        ("Device-monitoring priority list", table(watch, max_rows=40)),
    ], subtitle=f"{len(qa)} upcoming patches scored; ranked by risk × devices targeted.")
