"""An older revision of the patch-risk spec, as a champion trained months ago would carry it.

Revision 1 had no ``region`` feature, knew fewer components and called its outputs ``risk`` and
``risk_band``; the packaged spec (today's) has all three changes. A stage that reads the packaged
spec instead of the served version's would reject or mis-read every row of that champion.
"""

from __future__ import annotations

from patchrisk.contract import Contract
from patchrisk.spec import ModelSpec, load_spec

PACKAGED = load_spec("patch-risk")


def older_revision() -> ModelSpec:
    data = PACKAGED.model_dump(mode="json")
    data["features"] = [f for f in data["features"] if f["name"] != "region"]
    for feature in data["features"]:
        if feature["name"] == "component":
            feature["categories"] = ["kernel", "bootloader", "modem", "wifi", "legacy-radio"]
    data["sensitive_attributes"] = ["device_family"]
    data["invariance"] = []
    data["roles"]["watch_groups"] = ["device_family"]
    data["roles"]["qa_columns"] = ["component", "device_family"]
    data["outputs"] = {"score": "risk", "bucket": "risk_band"}
    return ModelSpec.model_validate(data)


OLD = older_revision()


def old_rows(count: int, seed: int = 3) -> list[dict]:
    """Requests as the old champion's callers send them: no region, a component today's spec lacks."""
    from patchrisk.datagen import generate_rows

    frame = generate_rows(PACKAGED, count, seed=seed)
    frame["component"] = ["legacy-radio" if i % 2 else "kernel" for i in range(count)]
    rows = frame[[PACKAGED.id_column, *OLD.feature_names]].to_dict(orient="records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]


def old_contract(version: str = "3") -> Contract:
    return Contract(OLD, version)


def old_training_rows(count: int = 600, seed: int = 7):
    """Training rows of the old revision: today's generator, less ``region``, components it knew."""
    from patchrisk.datagen import generate_rows

    frame = generate_rows(PACKAGED, count, seed=seed).drop(columns=["region"])
    known = list(OLD.feature("component").categories)
    frame["component"] = [c if c in known else "legacy-radio" for c in frame["component"]]
    return frame


def train_old_champion(model_dir, seed: int = 7):
    """A small model trained on the old revision, saved with its reference as training does."""
    from patchrisk.training import TrainParams, train_model, write_reference

    result = train_model(old_training_rows(seed=seed), OLD, TrainParams(seed=seed, iterations=40))
    result.bundle.save(model_dir)
    write_reference(result, model_dir, seed=seed)
    return result
