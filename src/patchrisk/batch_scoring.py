"""Batch scoring for release planning, for any spec: which items QA looks at first, which groups to watch.

What plays which part comes from the model version's spec (``roles`` and ``outputs``), so patch-risk
and feature-reliability go through the same code. For patch-risk: the QA list ranks patches by
expected impact, risk × devices targeted (the blast radius), and names each patch's top
contributing features; the watch list sums expected regressions (Σ risk) and devices at risk
(Σ risk × devices) per device family and region.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchrisk.contract.matrix import frame_to_matrix
from patchrisk.errors import SpecError
from patchrisk.model_bundle import ModelBundle
from patchrisk.reporting.humanize import driver, is_missing
from patchrisk.reporting.page import page, table
from patchrisk.reporting.svg import bar_chart
from patchrisk.spec import ModelSpec

TOP_FEATURES = 3


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


def score_items(bundle: ModelBundle, items: pd.DataFrame) -> pd.DataFrame:
    """Id, features, the version's score and bucket outputs, and each row's top features."""
    spec = bundle.spec
    scored = items[[spec.id_column, *spec.feature_names]].copy()
    if scored.empty:  # a week without upcoming items: CatBoost refuses an empty matrix
        return scored.assign(**{spec.outputs.score: pd.Series(dtype=float), spec.outputs.bucket: pd.Series(dtype=str),
                                "top_features": pd.Series(dtype=str)})
    matrix = frame_to_matrix(items, spec)
    scored[spec.outputs.score] = bundle.predict_matrix(matrix)
    scored[spec.outputs.bucket] = [spec.risk_bucket(s) for s in scored[spec.outputs.score]]
    scored["top_features"] = top_contributions(bundle, matrix)
    return scored


score_patches = score_items  # the patch-risk name, kept for readers of the first spec


def _blast_radius(spec: ModelSpec) -> str:
    if not spec.roles.blast_radius:
        raise SpecError(f"spec '{spec.name}' declares no roles.blast_radius: batch lists need one")
    return spec.roles.blast_radius


def qa_priority(scored: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Items ranked by expected impact (score × blast radius), then by score."""
    score, names, blast = spec.outputs.score, spec.roles.list_names, _blast_radius(spec)
    out = scored.assign(**{names.expected_impact: scored[score] * scored[blast]})
    out = out.sort_values([names.expected_impact, score], ascending=False, kind="stable")
    out.insert(0, "qa_rank", np.arange(1, len(out) + 1))
    cols = ["qa_rank", spec.id_column, score, spec.outputs.bucket, blast, names.expected_impact,
            *spec.roles.qa_columns, "top_features"]
    return out[cols].reset_index(drop=True)


def watchlist(scored: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Per group (``roles.watch_groups``): expected incidents (Σ score) and impact at risk."""
    score, names, blast = spec.outputs.score, spec.roles.list_names, _blast_radius(spec)
    groups = list(spec.roles.watch_groups)
    if not groups:
        raise SpecError(f"spec '{spec.name}' declares no roles.watch_groups: the watch list needs them")
    alert = spec.alert_bucket
    grouped = scored.assign(**{names.impact_at_risk: scored[score] * scored[blast],
                               "_alert": (scored[spec.outputs.bucket] == alert).astype(int)})
    aggregations = {
        names.items: (score, "size"),
        names.expected_incidents: (score, "sum"),
        names.impact_at_risk: (names.impact_at_risk, "sum"),
        f"{alert}_risk_{names.items}": ("_alert", "sum"),
        "max_risk": (score, "max"),
    }
    detail = spec.roles.watch_detail
    if detail:
        aggregations[f"riskiest_{detail}"] = (detail, lambda c: c.loc[grouped.loc[c.index, score].idxmax()])
    out = grouped.groupby(groups, observed=True).agg(**aggregations).reset_index()
    out = out.sort_values([names.expected_incidents, names.impact_at_risk], ascending=False, kind="stable")
    out.insert(0, "watch_rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def batch_report_html(qa: pd.DataFrame, watch: pd.DataFrame, spec: ModelSpec, model: str, version: str,
                      rejected: pd.DataFrame | None = None) -> str:
    names, groups = spec.roles.list_names, list(spec.roles.watch_groups)
    top = qa.head(15)
    group_labels = [" / ".join(str(v) for v in row) for row in watch[groups].itertuples(index=False)]
    charts = (bar_chart(top[spec.id_column].astype(str).tolist(), top[names.expected_impact].tolist(),
                        f"{names.expected_impact} (top 15 {names.items})", value_format="{:,.0f}")
              + bar_chart(group_labels[:15], watch[names.expected_incidents].head(15).tolist(),
                          f"{names.expected_incidents} by {' / '.join(groups)}", value_format="{:.1f}",
                          color="#dc2626"))
    sections = [
        *([("Charts", f'<div class="charts">{charts}</div>')] if len(qa) else []),
        ("QA priority list", table(qa, max_rows=40)),
        (f"Watch list by {' / '.join(groups)}", table(watch, max_rows=40)),
    ]
    subtitle = (f"{len(qa)} {names.items} scored; ranked by {spec.outputs.score} × {spec.roles.blast_radius}."
                if len(qa) else f"no upcoming {names.items} to score: the input holds none.")
    if rejected is not None and len(rejected):
        sections.append(("Rejected rows", table(rejected, max_rows=100)))
        subtitle += f" {rejected['row'].nunique()} row(s) set aside: they break the contract (see Rejected rows)."
    return page(f"Batch scoring: {model} v{version}", sections, subtitle=subtitle)
