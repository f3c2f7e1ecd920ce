"""Per-feature drift verdicts that stay quiet on same-distribution data, however many are made.

A feature is *drifted* when both hold:

1. **The effect matters**: PSI on the reference bins (or category frequencies) is at least
   ``psi_threshold`` (0.2, the usual "significant shift" level), or, for numeric features, the
   Wasserstein distance between the quantile grids is at least ``wasserstein_threshold``
   reference standard deviations (0.1). Effect sizes do not shrink or grow with the window's
   size, so a large window is not flagged for a trivial difference.
2. **The effect is not sampling noise at this window's size**: a chi-square test of homogeneity
   on the same bins (reference counts vs window counts, both samples' noise included) rejects at
   ``alpha / n_features`` (Bonferroni). With PSI alone, a small window is flagged by noise:
   PSI's expectation under no drift is about ``(bins - 1) / n``, 0.09 at 100 rows on 10 bins, and
   with 13 features x many windows some feature crosses 0.2 by chance. Bonferroni bounds the
   chance that *any* feature of a same-distribution window is flagged by ``alpha`` (0.01), and
   the effect threshold makes that chance vanish once windows have a few thousand rows, where
   noise PSI is ~0.005. The retraining trigger then needs several drifted windows in a row.

Missing values are one more bin of a feature's distribution (in PSI and in the test): a feature
whose values stop arriving (a nullable one missing in every row of the window) drifts like one whose
values shift. Wasserstein compares the present values only.

Prediction drift uses the same rule on ``risk_score`` (fixed bins 0.1 wide, one test: ``alpha``);
its missing values are failed calls, the error rate's business, so they are not a bin there.
Windows with fewer than ``min_rows`` rows are reported but not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from patchrisk.contract.log_schema import LOG_SCORE
from patchrisk.drift_stats import normalized_wasserstein, psi
from patchrisk.monitoring.drift.config import DriftThresholds
from patchrisk.monitoring.drift.statistics import OTHER, CategoricalAccumulator, NumericAccumulator

TEST_NAME = "chi2_homogeneity"


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical | prediction
    rows: int
    psi: float
    wasserstein: float | None
    test: str
    p_value: float
    alpha: float  # the corrected level the p-value is compared with
    effect_exceeded: bool
    significant: bool
    drifted: bool
    missing_rate: float
    reference_missing_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DriftVerdict:
    status: str  # ok | no_data | insufficient_data
    rows: int
    features: list[FeatureDrift] = field(default_factory=list)
    prediction: FeatureDrift | None = None

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0


def chi2_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value that both count vectors come from one distribution (bins empty in both dropped).

    Pearson's test as ``scipy.stats.chi2_contingency(table, correction=False)`` computes it, with the
    chi-squared survival function from ``scipy.special``: importing ``scipy.stats`` costs every monitor
    run ~0.6 s of CPU more (tests/unit/test_drift_statistics.py checks both agree)."""
    from scipy.special import chdtrc

    table = np.vstack([np.asarray(reference_counts, float), np.asarray(current_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    return float(chdtrc(table.shape[1] - 1, statistic))


def _shift(ref_props: np.ndarray, ref_missing: float, ref_rows: int, cur_props: np.ndarray, cur_counts: np.ndarray,
           cur_missing: int, cur_missing_rate: float, with_missing: bool) -> tuple[float, float]:
    """(PSI, the test's p-value) of the window's bins against the reference's; ``with_missing``: over
    all rows, the missing ones as one more bin, else over the present values only."""
    ref_counts = ref_props * ref_rows * (1 - ref_missing)
    if not with_missing:
        return psi(ref_props, cur_props), chi2_homogeneity(ref_counts, cur_counts)
    ref_all = np.append(ref_props * (1 - ref_missing), ref_missing)
    cur_all = np.append(cur_props * (1 - cur_missing_rate), cur_missing_rate)
    return (psi(ref_all, cur_all),
            chi2_homogeneity(np.append(ref_counts, ref_rows * ref_missing), np.append(cur_counts, cur_missing)))


def numeric_drift(name: str, ref: dict, ref_rows: int, acc: NumericAccumulator, thresholds: DriftThresholds,
                  alpha: float, kind: str = "numeric", psi_threshold: float | None = None) -> FeatureDrift:
    ref_missing = ref.get("missing_rate", 0.0)
    psi_value, p_value = _shift(np.asarray(ref["proportions"], float), ref_missing, ref_rows, acc.proportions,
                                acc.bin_counts, acc.missing, acc.missing_rate, with_missing=kind != "prediction")
    wasserstein = normalized_wasserstein(ref["quantiles"], acc.quantiles(), ref["std"])
    effect = psi_value >= (psi_threshold or thresholds.psi_threshold) or wasserstein >= thresholds.wasserstein_threshold
    return FeatureDrift(name, kind, acc.count, psi_value, wasserstein, TEST_NAME, p_value, alpha, effect,
                        p_value < alpha, effect and p_value < alpha, acc.missing_rate, ref_missing)


def categorical_drift(name: str, ref: dict, ref_rows: int, acc: CategoricalAccumulator,
                      thresholds: DriftThresholds, alpha: float) -> FeatureDrift:
    names = [*acc.categories, OTHER]
    ref_missing = ref.get("missing_rate", 0.0)
    psi_value, p_value = _shift(np.asarray([ref["frequencies"].get(c, 0.0) for c in names]), ref_missing, ref_rows,
                                np.asarray([acc.frequencies[c] for c in names]), acc.counts, acc.missing,
                                acc.missing_rate, with_missing=True)
    effect = psi_value >= thresholds.psi_threshold
    return FeatureDrift(name, "categorical", acc.count, psi_value, None, TEST_NAME, p_value, alpha, effect,
                        p_value < alpha, effect and p_value < alpha, acc.missing_rate, ref_missing)


def judge(stats: dict, accumulators: dict, score: NumericAccumulator | None, rows: int,
          thresholds: DriftThresholds) -> DriftVerdict:
    """Verdicts for every feature and the score; ``stats`` is the reference_stats.json document."""
    if rows == 0:
        return DriftVerdict("no_data", 0)
    if rows < thresholds.min_rows:
        return DriftVerdict("insufficient_data", rows)
    ref_rows = int(stats["rows"])
    alpha = thresholds.alpha / max(len(accumulators), 1)
    features = []
    for name, acc in accumulators.items():
        if isinstance(acc, NumericAccumulator):
            features.append(numeric_drift(name, stats["numeric"][name], ref_rows, acc, thresholds, alpha))
        else:
            features.append(categorical_drift(name, stats["categorical"][name], ref_rows, acc, thresholds, alpha))
    prediction = None
    if score is not None and "score" in stats and score.count:
        prediction = numeric_drift(LOG_SCORE, stats["score"], ref_rows, score, thresholds, thresholds.alpha,
                                   kind="prediction", psi_threshold=thresholds.score_psi_threshold)
    return DriftVerdict("ok", rows, features, prediction)
