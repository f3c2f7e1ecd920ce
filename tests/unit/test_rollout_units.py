"""Rollout building blocks without Git or MLflow: policy, overlay edits, statistics, decisions."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from patchrisk.errors import PatchriskError
from patchrisk.rollout.analysis import EndpointStats, compare, endpoint_stats, recall_test
from patchrisk.rollout.config import load_config
from patchrisk.rollout.decision import decide
from patchrisk.rollout.logs import read_logs
from patchrisk.rollout.overlay import ModelRef, Overlay, Serving
from tests.conftest import REPO

V = {n: ModelRef(str(n), f"s3://patchrisk-models/patch-risk/v{n}/") for n in (1, 2, 3)}


@pytest.fixture
def overlays(tmp_path):
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    return tmp_path


def test_packaged_policy_loads_and_bad_policies_name_the_field(tmp_path):
    config = load_config()
    assert config.schedule[-1] < 100 and config.next_weight(10) == 25 and config.next_weight(50) is None
    bad = tmp_path / "rollout.yaml"
    bad.write_text("schedule: [50, 25]\nmin_requests: 0\n")
    with pytest.raises(PatchriskError, match=r"rollout.yaml: schedule: .*increase strictly.*min_requests"):
        load_config(bad)


def test_a_schedule_reaching_100_is_refused_since_the_champion_would_get_no_traffic(tmp_path):
    """On a cluster traffic follows the weight: at 100 the champion serves nothing, the evidence
    minimum per endpoint never holds and the canary could never be promoted."""
    bad = tmp_path / "rollout.yaml"
    bad.write_text("schedule: [10, 50, 100]\n")
    with pytest.raises(PatchriskError, match=r"rollout.yaml: schedule: .*1\.\.99 \(the champion needs traffic"):
        load_config(bad)


def test_standard_overlay_round_trip_keeps_the_contract_layout(overlays):
    overlay = Overlay.open(overlays, "staging")
    assert overlay.mode == "standard"
    assert overlay.read() == Serving(V[2], V[3], 10)  # the shipped staging state
    overlay.write(Serving(V[2], V[3], 10))
    text = overlay.patch_path.read_text()
    assert "  canary:\n    - predictor:\n        name: v3\n" in text and "name: kserve-container" in text
    canary = yaml.safe_load(text)["spec"]["canary"][0]["predictor"]
    assert canary["logger"] == {"mode": "all",
                                "url": "http://patchrisk-sink.patchrisk-staging.svc.cluster.local/endpoint/canary"}
    assert overlay.write(Serving(V[3])) is True
    assert overlay.read() == Serving(V[3]) and "canary: []" in overlay.patch_path.read_text()
    assert "logger" not in yaml.safe_load(overlay.patch_path.read_text())["spec"]["predictor"]  # base: default
    assert overlay.write(Serving(V[3])) is False  # already says so: nothing written


def test_knative_overlay_keeps_the_latest_revision_in_storage_uri(overlays):
    overlay = Overlay.open(overlays, "dev")
    assert overlay.mode == "knative" and overlay.read() == Serving(V[2])
    overlay.write(Serving(V[2], V[3], 20))
    assert overlay.read() == Serving(None, V[3], 20)  # the champion now lives in the journal only
    assert "canaryTrafficPercent: 20\n" in overlay.patch_path.read_text()
    # The latest revision (the canary) logs as the canary; the previous one keeps its own URL.
    predictor = yaml.safe_load(overlay.patch_path.read_text())["spec"]["predictor"]
    assert predictor["logger"] == {"mode": "all",
                                   "url": "http://patchrisk-sink.patchrisk-dev.svc.cluster.local/endpoint/canary"}
    overlay.write(Serving(V[2], V[3], 50))  # a step changes only the share: no new revision
    assert yaml.safe_load(overlay.patch_path.read_text())["spec"]["predictor"]["logger"] == predictor["logger"]
    overlay.write(Serving(V[2]))  # promote/rollback: the new latest revision logs as default again
    assert overlay.read() == Serving(V[2]) and "canaryTrafficPercent" not in overlay.patch_path.read_text()
    assert "logger" not in yaml.safe_load(overlay.patch_path.read_text())["spec"]["predictor"]


def test_unknown_environment_is_a_clear_error(overlays):
    with pytest.raises(PatchriskError, match="no kustomize overlay for environment 'qa'"):
        Overlay.open(overlays, "qa")


def _frame(scores, labels, ids=None, status=None, latency=4.0):
    n = len(scores)
    return pd.DataFrame({"row_id": ids if ids is not None else [f"r{i}" for i in range(n)],
                         "risk_score": scores, "label": labels, "status": status or ["ok"] * n,
                         "latency_ms": [latency] * n})


def test_mcnemar_on_shared_rows_detects_a_recall_drop(patch_spec):
    labels = [1] * 100
    default = _frame([0.9] * 80 + [0.1] * 20, labels)
    canary = _frame([0.9] * 55 + [0.1] * 45, labels)
    test = recall_test(default, canary, patch_spec.decision_threshold)
    assert test.method == "mcnemar" and test.rows == 100 and test.drop == pytest.approx(0.25)
    assert test.discordant == {"default_only": 25, "canary_only": 0} and test.p_value < 1e-6


def test_two_proportion_test_when_no_row_was_scored_by_both(patch_spec):
    default = _frame([0.9] * 60 + [0.1] * 40, [1] * 100)
    canary = _frame([0.9] * 58 + [0.1] * 42, [1] * 100, ids=[f"c{i}" for i in range(100)])
    test = recall_test(default, canary, patch_spec.decision_threshold)
    assert test.method == "two-proportion z" and test.drop == pytest.approx(0.02) and test.p_value > 0.3


def _stats(patch_spec, errors=0, latency=4.0, n=400, seed=0):
    rng = np.random.default_rng(seed)
    ops = _frame(rng.beta(2, 5, n).tolist(), [0] * n, status=["error"] * errors + ["ok"] * (n - errors),
                 latency=latency)
    ops.loc[ops["status"] == "error", "risk_score"] = np.nan
    return ops


@pytest.mark.parametrize(("canary_kw", "weight", "action"), [
    ({}, 10, "step"), ({}, 50, "promote"), ({"errors": 20}, 10, "rollback"),
    ({"latency": 9.0}, 25, "rollback"), ({"n": 100}, 10, "hold"),
])
def test_decisions_follow_the_guardrails(patch_spec, canary_kw, weight, action):
    config = load_config()
    default = endpoint_stats(_stats(patch_spec), None, "default", "1", patch_spec, 10)
    canary = endpoint_stats(_stats(patch_spec, seed=1, **canary_kw), None, "canary", "2", patch_spec, 10)
    decision = decide(default, canary, compare(default, canary, None, None, 0.5), config, weight, False)
    assert decision.action == action, decision.reasons


def test_labels_required_to_promote_hold_the_last_step(patch_spec):
    config = load_config().model_copy(update={"require_labels_to_promote": True})
    stats = EndpointStats("default", "1", requests=500, errors=0, error_rate=0.0, latency_p99_ms=5.0,
                          score_histogram=[0.1] * 10)
    decision = decide(stats, stats, compare(stats, stats, None, None, 0.5), config, config.last_weight, False)
    assert decision.action == "hold" and "no labels" in decision.reasons[0]


def test_logs_are_read_from_the_sink_layout_since_a_time(tmp_path):
    part = tmp_path / "model=patch-risk" / "endpoint=canary" / "date=2026-01-02"
    part.mkdir(parents=True)
    pd.DataFrame({"event_id": ["a", "b"], "received_at": pd.to_datetime(["2026-01-02T10:00Z", "2026-01-02T12:00Z"]),
                  "model_name": "patch-risk", "model_version": [3, 3], "row_id": [1, 2], "risk_score": [0.2, 0.7],
                  "risk_bucket": ["low", "high"], "status": ["ok", "ok"], "latency_ms": [3.0, 4.0]}
                 ).to_parquet(part / "part-0.parquet")
    old = tmp_path / "model=patch-risk" / "endpoint=canary" / "date=2026-01-01"
    old.mkdir(parents=True)
    (old / "part-0.parquet").write_bytes(b"not parquet: never read, its day is before the window")
    logs = read_logs(str(tmp_path), "patch-risk", pd.Timestamp("2026-01-02T11:00Z").to_pydatetime())
    assert logs["row_id"].tolist() == ["2"] and logs["endpoint"].tolist() == ["canary"]
    assert logs["model_version"].tolist() == ["3"]
    (part / "part-1.parquet").write_bytes(b"torn")
    with pytest.raises(PatchriskError, match="part-1.parquet: unreadable prediction log"):
        read_logs(str(tmp_path), "patch-risk", pd.Timestamp("2026-01-02T11:00Z").to_pydatetime())


def test_a_config_file_replaces_only_the_keys_it_names(tmp_path):
    partial = tmp_path / "rollout.yaml"
    partial.write_text("schedule: [20, 60]\nmin_requests: 20\n")
    config, packaged = load_config(partial), load_config()
    assert config.schedule == [20, 60] and config.min_requests == 20
    assert config.max_score_psi == packaged.max_score_psi and config.min_labelled == packaged.min_labelled
    partial.write_text("- not\n- a mapping\n")
    with pytest.raises(PatchriskError, match="rollout.yaml: a rollout config must be a YAML mapping, got list"):
        load_config(partial)


@pytest.mark.parametrize("name", ["../staging", "../../elsewhere", "/tmp", "staging/..", "Staging", ""])
def test_an_overlay_name_that_is_a_path_is_refused(overlays, name):
    with pytest.raises(PatchriskError, match="must name an environment folder directly under"):
        Overlay.open(overlays, name)


def test_an_overlay_symlinked_from_elsewhere_is_refused(overlays, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(overlays / "manifests" / "overlays" / "staging", elsewhere)
    (overlays / "manifests" / "overlays" / "linked").symlink_to(elsewhere)
    with pytest.raises(PatchriskError, match="'linked': must name an environment folder"):
        Overlay.open(overlays, "linked")


def test_the_canary_analysis_skips_a_label_that_is_no_label_and_names_it(patch_spec, tmp_path, caplog, monkeypatch):
    """Labels as the monitor reads them (patchrisk.labels): a 2 or a 'yes' is no positive; it used to
    count as one (2) or end the analysis with a ValueError traceback ('yes')."""
    from patchrisk.rollout.analyze import read_labels

    monkeypatch.setattr(logging.getLogger("patchrisk.rollout.analyze"), "disabled", False)  # import-linter's dictConfig
    path = tmp_path / "labels.csv"
    path.write_text("patch_id,high_risk_flag\np1,1\np2,yes\np3,0\np4,2\np1,1\n")
    labels = read_labels(path, patch_spec)
    # p1 twice with the same label is one outcome (with another label it is refused: test_labels_duplicates.py)
    assert labels.to_dict("records") == [{"row_id": "p1", "label": 1}, {"row_id": "p3", "label": 0}]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 label row(s) skipped: column 'high_risk_flag' must be 0/1, found ['yes', '2']"]


def test_a_readable_part_that_is_no_prediction_log_is_skipped_and_named(tmp_path):
    """Readable Parquet with a score that is text (a stray export, another writer): the canary analysis
    read it into its score column, where the statistics would fail; now it is an unreadable part."""
    part = tmp_path / "model=patch-risk" / "endpoint=canary" / "date=2026-01-02"
    part.mkdir(parents=True)
    rows = {"event_id": ["a", "b"], "received_at": pd.to_datetime(["2026-01-02T10:00Z", "2026-01-02T12:00Z"]),
            "model_name": "patch-risk", "model_version": ["3", "3"], "row_id": ["1", "2"],
            "risk_score": [0.2, 0.7], "status": ["ok", "ok"], "latency_ms": [3.0, 4.0]}
    pd.DataFrame(rows).to_parquet(part / "part-0.parquet")
    pd.DataFrame({**rows, "risk_score": ["low", "high"]}).to_parquet(part / "part-1.parquet")
    since = pd.Timestamp("2026-01-02T00:00Z").to_pydatetime()
    with pytest.raises(PatchriskError, match="part-1.parquet: not a prediction log: column 'risk_score' is string"):
        read_logs(str(tmp_path), "patch-risk", since)
    unreadable = []
    logs = read_logs(str(tmp_path), "patch-risk", since, unreadable=unreadable)
    assert logs["risk_score"].tolist() == [0.2, 0.7]
    assert [u["file"].rsplit("/", 1)[-1] for u in unreadable] == ["part-1.parquet"]


def _hand_edit(overlays, environment: str, change) -> Overlay:
    """The shipped patch with one edit a person could commit (GitOps: people edit these files)."""
    overlay = Overlay.open(overlays, environment)
    doc = yaml.safe_load(overlay.patch_path.read_text())
    change(doc)
    overlay.patch_path.write_text(yaml.safe_dump(doc))
    return overlay


def _canary(doc):
    return doc["spec"]["canary"][0]


@pytest.mark.parametrize(
    ("environment", "change", "problem"),
    [
        ("staging", lambda d: _canary(d).update(trafficPercent="fifty"), "spec.canary.0.trafficPercent: "),
        ("staging", lambda d: _canary(d).update(trafficPercent=150), "spec.canary.0.trafficPercent: "),
        ("staging", lambda d: _canary(d).update(trafficPercent=-5), "spec.canary.0.trafficPercent: "),
        ("staging", lambda d: _canary(d).update(trafficPercent=12.7), "spec.canary.0.trafficPercent: "),
        ("staging", lambda d: d["spec"].update(canary={"a": 1}), "spec.canary: "),
        ("staging", lambda d: d["spec"].update(canary=["v3"]), "spec.canary.0: "),
        ("staging", lambda d: d["spec"].update(predictor="v2"), "spec.predictor: "),
        ("staging", lambda d: d.update(spec=[1]), "spec: "),
        ("staging", lambda d: d["spec"]["predictor"]["model"].update(storageUri=5), "spec.predictor.model.storageUri: "),
        ("dev", lambda d: d["spec"]["predictor"].update(canaryTrafficPercent="lots"),
         "spec.predictor.canaryTrafficPercent: "),
        ("dev", lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=300),
         "spec.predictor.canaryTrafficPercent: "),
        ("dev", lambda d: d["spec"]["predictor"].update(model="abc"), "spec.predictor.model: "),
    ],
)
def test_a_hand_edited_patch_the_rollout_cannot_read_is_named_by_field(overlays, environment, change, problem):
    """Was: ValueError/KeyError/AttributeError tracebacks from every rollout command (the analysis
    CronJob included, so a failing canary was never rolled back), or a weight of 150 % or -5 % read as is."""
    overlay = _hand_edit(overlays, environment, change)
    with pytest.raises(PatchriskError) as caught:
        overlay.read()
    assert str(caught.value).startswith(f"{overlay.patch_path}: {problem}"), str(caught.value)


def _journal_for_shipped_staging(overlays, **changes) -> Overlay:
    """The journal `rollout start` would have committed with the shipped staging patch (champion
    v2, canary v3 at 10 %), with ``changes`` made by hand."""
    from patchrisk.rollout.state import Journal, Ref, journal_path

    overlay = Overlay.open(overlays, "staging")
    journal = Journal(model="patch-risk", environment="staging", mode="standard", phase="canary", action="start",
                      champion=Ref.of(V[2]), canary=Ref.of(V[3]), canary_percent=10)
    data = {**journal.model_dump(mode="json"), **changes}
    journal_path(overlay).write_text(json.dumps(data))
    return overlay


@pytest.mark.parametrize("weight", [150, -5, "ten", 12.5])
def test_a_hand_edited_journal_weight_is_named_by_field(overlays, weight):
    """Was: a journal weight of 150 printed 'canary v3 at 150%' and the next passing analysis promoted
    after one step; -5 stepped '-5% -> 10%'."""
    from patchrisk.rollout.state import current_journal, journal_path

    overlay = _journal_for_shipped_staging(overlays, canary_percent=weight)
    with pytest.raises(PatchriskError) as caught:
        current_journal(overlay, "patch-risk")
    assert str(caught.value).startswith(f"{journal_path(overlay)}: canary_percent: "), str(caught.value)


@pytest.mark.parametrize("weight", [150, -5, "ten"])
def test_an_unreadable_overlay_weight_is_named_while_a_journal_exists(overlays, weight):
    """Was: with a journal the patch was never read, so status showed the journal's 10 % and
    `analyze --apply` overwrote the edit without naming it."""
    from patchrisk.rollout.state import current_journal

    overlay = _journal_for_shipped_staging(overlays)
    _hand_edit(overlays, "staging", lambda d: _canary(d).update(trafficPercent=weight))
    with pytest.raises(PatchriskError) as caught:
        current_journal(overlay, "patch-risk")
    assert str(caught.value).startswith(f"{overlay.patch_path}: spec.canary.0.trafficPercent: "), str(caught.value)


@pytest.mark.parametrize(("environment", "change", "field", "found", "recorded"), [
    ("staging", lambda d: _canary(d).update(trafficPercent=50), "spec.canary.0.trafficPercent", "50", "10"),
    ("staging", lambda d: d["spec"].update(canary=[]), "spec.canary.0.predictor.model.storageUri", "None",
     "'s3://patchrisk-models/patch-risk/v3/'"),
    ("staging", lambda d: d["spec"]["predictor"]["model"].update(storageUri="s3://patchrisk-models/patch-risk/v1/"),
     "spec.predictor.model.storageUri", "'s3://patchrisk-models/patch-risk/v1/'",
     "'s3://patchrisk-models/patch-risk/v2/'"),
])
def test_a_valid_overlay_edit_the_journal_does_not_record_is_refused(overlays, environment, change, field, found,
                                                                      recorded):
    """A weight edited by hand (10 -> 50) would skip the schedule at the next analysis, or be
    overwritten by it without a word: every command names the field and both values instead."""
    from patchrisk.rollout.state import current_journal, journal_path

    overlay = _journal_for_shipped_staging(overlays)
    _hand_edit(overlays, environment, change)
    with pytest.raises(PatchriskError) as caught:
        current_journal(overlay, "patch-risk")
    message = str(caught.value)
    assert message.startswith(f"{overlay.patch_path}: {field} is {found}, but {journal_path(overlay)} records "
                              f"{recorded}"), message


@pytest.mark.parametrize(("change", "replaced"), [
    (lambda d: _canary(d).update(trafficPercent=0), {"spec.canary.0.trafficPercent": (0, 10)}),
    (lambda d: d["spec"].update(canary=[]), {"spec.canary.0.predictor.model.storageUri":
                                             (None, "s3://patchrisk-models/patch-risk/v3/"),
                                             "spec.canary.0.trafficPercent": (None, 10)}),
])
def test_a_verb_that_rewrites_the_canary_accepts_a_hand_edit_of_the_canary_only(overlays, change, replaced):
    """A rollback drops the canary whatever its patch says; an edit of the champion is still refused."""
    from patchrisk.rollout.state import current_journal, overlay_differences

    overlay = _journal_for_shipped_staging(overlays)
    _hand_edit(overlays, "staging", change)
    journal = current_journal(overlay, "patch-risk", overlay.canary_fields())
    assert journal.canary_percent == 10 and overlay_differences(overlay, journal) == replaced
    with pytest.raises(PatchriskError, match="records"):
        current_journal(overlay, "patch-risk")  # every other verb: named, exit 2
    _hand_edit(overlays, "staging",
               lambda d: d["spec"]["predictor"]["model"].update(storageUri="s3://patchrisk-models/patch-risk/v1/"))
    with pytest.raises(PatchriskError, match=r"spec.predictor.model.storageUri is .*v1/', but .* records .*v2/'"):
        current_journal(overlay, "patch-risk", overlay.canary_fields())


def test_a_knative_rollback_accepts_a_hand_edited_weight_but_not_the_model(overlays):
    """In Knative mode the patch's model URI is the canary's while one runs, but also the champion's
    after it: only the weight is the canary's alone."""
    from patchrisk.rollout.state import Journal, Ref, current_journal, journal_path

    overlay = Overlay.open(overlays, "dev")
    journal = Journal(model="patch-risk", environment="dev", mode="knative", phase="canary", action="start",
                      champion=Ref.of(V[2]), canary=Ref.of(V[3]), canary_percent=20)
    overlay.write(journal.serving())
    journal_path(overlay).write_text(journal.to_text())
    _hand_edit(overlays, "dev", lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=0))
    assert current_journal(overlay, "patch-risk", overlay.canary_fields()) == journal
    _hand_edit(overlays, "dev", lambda d: d["spec"]["predictor"]["model"].update(storageUri=V[2].uri))
    with pytest.raises(PatchriskError, match="spec.predictor.model.storageUri is"):
        current_journal(overlay, "patch-risk", overlay.canary_fields())


def test_a_knative_overlay_agreeing_with_its_journal_is_read(overlays):
    """Knative keeps only the canary's URI in the patch while a canary runs: the champion is the journal's."""
    from patchrisk.rollout.state import Journal, Ref, current_journal, journal_path

    overlay = Overlay.open(overlays, "dev")
    journal = Journal(model="patch-risk", environment="dev", mode="knative", phase="canary", action="start",
                      champion=Ref.of(V[2]), canary=Ref.of(V[3]), canary_percent=20)
    overlay.write(journal.serving())
    journal_path(overlay).write_text(journal.to_text())
    assert current_journal(overlay, "patch-risk") == journal
    _hand_edit(overlays, "dev", lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=60))
    with pytest.raises(PatchriskError, match=r"spec.predictor.canaryTrafficPercent is 60, but .* records 20"):
        current_journal(overlay, "patch-risk")


def test_the_shipped_staging_overlay_agrees_with_its_journal(overlays):
    from patchrisk.rollout.state import current_journal

    overlay = _journal_for_shipped_staging(overlays)
    assert current_journal(overlay, "patch-risk").serving() == overlay.read()


@pytest.mark.parametrize("weight", [150, -5])
def test_a_weight_outside_0_to_100_never_decides_a_promotion(patch_spec, weight):
    config = load_config()
    stats = EndpointStats("default", "1", requests=500, errors=0, error_rate=0.0, latency_p99_ms=5.0,
                          score_histogram=[0.1] * 10)
    with pytest.raises(PatchriskError, match=f"canary weight {weight}% is outside 0..100"):
        decide(stats, stats, compare(stats, stats, None, None, 0.5), config, weight, False)


@pytest.mark.parametrize("default_latency", [0.0, -3.0])
def test_a_default_p99_of_no_time_is_no_baseline_and_never_passes_a_slow_canary(patch_spec, default_latency):
    """Was: a default p99 of 0 ms gave no ratio (a pass) and -3 ms a negative one (a pass): a canary
    at 5000 ms passed the latency guardrail. No call takes no or negative time: the check holds."""
    config = load_config()
    default = endpoint_stats(_stats(patch_spec, latency=default_latency), None, "default", "1", patch_spec, 10)
    canary = endpoint_stats(_stats(patch_spec, seed=1, latency=5000.0), None, "canary", "2", patch_spec, 10)
    decision = decide(default, canary, compare(default, canary, None, None, 0.5), config, 10, False)
    latency = next(c for c in decision.checks if c.name == "p99_latency")
    assert latency.status == "insufficient" and decision.action == "hold", decision.reasons
    assert default.latency_p99_ms is None and "default insufficient" in latency.detail, latency.detail
