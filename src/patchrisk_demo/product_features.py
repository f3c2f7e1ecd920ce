"""The second model spec in the loop: feature-day reliability risk, from raw telemetry events."""

from __future__ import annotations

from patchrisk_demo.context import LoopContext, StepResult

FEATURE_DAYS = 3000  # about 100 product features over 30 days


def rank_product_features(ctx: LoopContext) -> StepResult:
    """Rank product features by reliability risk (second spec, same code)."""
    from patchrisk.aggregate import aggregate_events
    from patchrisk.batch_scoring import qa_priority, score_items
    from patchrisk.datagen import generate, write_generated
    from patchrisk.evaluation import evaluate
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    spec = load_spec("feature-reliability")
    paths = write_generated(spec, generate(spec, FEATURE_DAYS, seed=ctx.seed), ctx.work / "telemetry")
    table = aggregate_events(spec, paths["events"], paths["metadata"])
    result = train_model(table, spec, TrainParams(seed=ctx.seed, iterations=300))
    holdout = result.holdout
    metrics = evaluate(holdout[spec.target.name], result.bundle.predict_frame(holdout), spec.decision_threshold).metrics
    day = spec.timestamp_column
    latest = table[table[day] == table[day].max()]
    ranked = qa_priority(score_items(result.bundle, latest), spec)  # the patch QA list's code path
    path = ctx.work / "product-feature-ranking.csv"
    ranked.to_csv(path, index=False)
    ctx.facts["feature_ranking"] = ranked
    top = ranked.iloc[0]
    return StepResult("Product features ranked by reliability risk (spec feature-reliability)", [
        f"{len(table):,} feature-days aggregated from {paths['events'].stat().st_size / 1e6:.1f} MB of events; "
        f"holdout ROC-AUC {metrics['roc_auc']:.3f}",
        f"watch first: {top[spec.id_column]} (risk {top[spec.outputs.score]:.2f}; {top['top_features'] or 'no single driver'})",
    ], {"product feature ranking (CSV)": path})
