"""Trained models shared by the gate tests: real CatBoost models on small synthetic data, each
trained once per test session (cached), with planted flaws the gates must catch."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from patchrisk.datagen import generate_rows
from patchrisk.model_bundle import ModelBundle
from patchrisk.spec import load_spec
from patchrisk.training import TrainParams, train_model

SPEC = "patch-risk"
TRAIN_ROWS, HOLDOUT_ROWS = 4000, 2000
BIASED_FAMILY = "wearable"
FRAGILE_FEATURE, FRAGILE_CUT = "code_churn_score", 0.3


def spec():
    return load_spec(SPEC)


@cache
def training_data() -> pd.DataFrame:
    return generate_rows(spec(), TRAIN_ROWS, seed=11)


@cache
def holdout() -> pd.DataFrame:
    """An independent labelled table (another seed) every model is judged on."""
    return generate_rows(spec(), HOLDOUT_ROWS, seed=99)


def _train(df: pd.DataFrame, **params) -> ModelBundle:
    return train_model(df, spec(), TrainParams(seed=11, **params)).bundle


@cache
def healthy_model() -> ModelBundle:
    return _train(training_data())


@cache
def biased_model() -> ModelBundle:
    """Trained where every patch for one device family was labelled safe: it misses that family's risk."""
    df = training_data().copy()
    df.loc[df["device_family"] == BIASED_FAMILY, spec().target.name] = 0
    return _train(df)


def sharp_threshold_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(**{spec().target.name: (df[FRAGILE_FEATURE] > FRAGILE_CUT).astype(int)})


@cache
def fragile_model() -> ModelBundle:
    """Labels are a sharp cut on one numeric feature: perfect on clean data, brittle under noise."""
    return _train(sharp_threshold_labels(training_data()))


@cache
def fragile_holdout() -> pd.DataFrame:
    return sharp_threshold_labels(holdout())


@cache
def undertrained_model() -> ModelBundle:
    return _train(training_data(), iterations=2, depth=1)


@cache
def weak_model() -> ModelBundle:
    """A clearly worse challenger: trained on a tenth of the data with a third of its labels flipped."""
    df = training_data().sample(frac=0.3, random_state=5).reset_index(drop=True)
    rng = np.random.default_rng(5)
    flip = rng.random(len(df)) < 0.3
    target = spec().target.name
    df.loc[flip, target] = 1 - df.loc[flip, target]
    return _train(df, iterations=60, depth=3)
