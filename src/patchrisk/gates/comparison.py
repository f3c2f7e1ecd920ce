"""Champion comparison gate: the challenger against the model holding the ``champion`` alias, on
the same holdout.

Fails when
- the primary metric trails the champion's by more than the policy's delta (for ROC-AUC the drop
  must also be real: the paired bootstrap interval of the AUC difference lies below zero), or
- McNemar's test on the decisions at the operating threshold says the challenger makes
  significantly more mistakes (exact binomial test on the discordant pairs, one-sided).
No champion yet: the gate passes and says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchrisk.evaluation import classification_metrics
from patchrisk.gates.policy import ComparisonPolicy
from patchrisk.gates.report import FAILED, NOT_APPLICABLE, PASSED, Check, GateResult, gate_from_checks
from patchrisk.model_bundle import ModelBundle

GATE = "comparison"
BOOTSTRAP_CHUNK = 50  # resamples per block: bounds memory on large holdouts


def find_champion(settings, model_name: str, environment: str | None = None) -> ModelBundle | None:
    """The bundle holding ``environment``'s champion alias (default: the settings' environment),
    or None when that environment has no champion yet."""
    from patchrisk.registry import CHAMPION, alias_for, client, model_files

    try:
        model = client(settings).get_registered_model(model_name)
    except Exception as exc:  # MLflow raises one exception type; the error code says "no such model"
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc):
            return None
        raise
    alias = alias_for(CHAMPION, environment or settings.environment)
    if alias not in (model.aliases or {}):
        return None
    with model_files(settings, f"models:/{model_name}@{alias}") as model_dir:
        return ModelBundle.load(model_dir)


def bootstrap_auc_difference(
    y_true: np.ndarray, challenger: np.ndarray, champion: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """Paired bootstrap of AUC(challenger) - AUC(champion): both scored on the same resampled rows."""
    from scipy.stats import rankdata

    y_true = np.asarray(y_true).astype(int)
    rng = np.random.default_rng(seed)
    n, out = len(y_true), []
    for start in range(0, resamples, BOOTSTRAP_CHUNK):
        idx = rng.integers(0, n, size=(min(BOOTSTRAP_CHUNK, resamples - start), n))
        yb = y_true[idx]
        pos = yb.sum(axis=1)
        neg = n - pos
        ok = (pos > 0) & (neg > 0)
        diff = _rank_auc(rankdata(challenger[idx], axis=1), yb, pos, neg) - _rank_auc(
            rankdata(champion[idx], axis=1), yb, pos, neg
        )
        out.append(diff[ok])
    return np.concatenate(out)


def _rank_auc(ranks: np.ndarray, labels: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Row-wise AUC from within-row ranks (Mann-Whitney U; ties get average ranks)."""
    return ((ranks * labels).sum(axis=1) - pos * (pos + 1) / 2) / np.maximum(pos * neg, 1)


def mcnemar_exact(y_true: np.ndarray, challenger_pred: np.ndarray, champion_pred: np.ndarray) -> dict:
    """Discordant pairs and the one-sided exact p-value that the challenger errs more often."""
    from scipy.stats import binomtest

    champ_right = champion_pred == y_true
    chall_right = challenger_pred == y_true
    only_champion_right = int(np.sum(champ_right & ~chall_right))
    only_challenger_right = int(np.sum(~champ_right & chall_right))
    discordant = only_champion_right + only_challenger_right
    p = binomtest(only_champion_right, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    return {
        "only_champion_right": only_champion_right,
        "only_challenger_right": only_challenger_right,
        "p_value": float(p),
    }


def comparison_gate(
    challenger: ModelBundle,
    champion: ModelBundle | None,
    holdout: pd.DataFrame,
    y_true: np.ndarray,
    policy: ComparisonPolicy,
) -> GateResult:
    if champion is None:
        check = Check("champion", None, None, "", NOT_APPLICABLE, "no champion registered yet")
        return GateResult(GATE, PASSED, "no champion registered yet: nothing to compare against", [check])
    missing = sorted(set(champion.spec.feature_names) - set(holdout.columns))
    if missing:
        check = Check(
            "champion",
            None,
            None,
            "",
            NOT_APPLICABLE,
            f"champion version {champion.version} needs columns the holdout lacks: {', '.join(missing)}",
        )
        return GateResult(GATE, PASSED, f"not comparable: {check.detail}", [check])

    spec, y = challenger.spec, np.asarray(y_true).astype(int)
    threshold, metric = spec.decision_threshold, spec.primary_metric
    s_chall, s_champ = challenger.predict_frame(holdout), champion.predict_frame(holdout)
    m_chall = classification_metrics(y, s_chall, threshold)
    m_champ = classification_metrics(y, s_champ, champion.spec.decision_threshold)
    diffs = bootstrap_auc_difference(y, s_chall, s_champ, policy.bootstrap_resamples, policy.seed)
    tail = (1 - policy.confidence) / 2
    ci = [float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))]
    diff = m_chall[metric] - m_champ[metric]
    worse = diff < -policy.max_primary_metric_drop and (metric != "roc_auc" or ci[1] < 0)
    metric_check = Check(
        f"{metric}_difference",
        diff,
        -policy.max_primary_metric_drop,
        ">=",
        FAILED if worse else PASSED,
        f"challenger {metric} {m_chall[metric]:.4f} vs champion version {champion.version} "
        f"{m_champ[metric]:.4f} "
        f"(difference {diff:+.4f}, {policy.confidence:.0%} bootstrap CI of the AUC difference "
        f"[{ci[0]:+.4f}, {ci[1]:+.4f}]; allowed drop {policy.max_primary_metric_drop:g})",
    )
    mc = mcnemar_exact(
        y, (s_chall >= threshold).astype(int), (s_champ >= champion.spec.decision_threshold).astype(int)
    )
    significantly_worse = (
        mc["only_champion_right"] > mc["only_challenger_right"] and mc["p_value"] < policy.alpha
    )
    mcnemar_check = Check(
        "mcnemar_p_value",
        mc["p_value"],
        policy.alpha,
        ">=",
        FAILED if significantly_worse else PASSED,
        f"at threshold {threshold:g} only the champion is right on {mc['only_champion_right']} rows, "
        "only the "
        f"challenger on {mc['only_challenger_right']} (McNemar exact one-sided p={mc['p_value']:.3g}, "
        f"alpha {policy.alpha:g})",
    )
    details = {
        "champion_version": champion.version,
        "challenger": m_chall,
        "champion": m_champ,
        "auc_difference_ci": ci,
        "mcnemar": mc,
        "metric": metric,
    }
    return gate_from_checks(
        GATE,
        [metric_check, mcnemar_check],
        f"challenger is not worse than champion version {champion.version} ({metric} {diff:+.4f})",
        details,
    )
