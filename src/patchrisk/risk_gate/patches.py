"""Read the patches to gate from JSON (an object, a list, or ``{"instances": [...]}``) or CSV files.

CSV cells are text, so they are typed with the model spec (numbers, booleans, empty = missing);
JSON values are sent as written. A NaN (Python's json module writes a missing value so, though JSON
has no NaN) is a missing value in either; an infinite number is refused, naming where it is. Either way every patch must carry every feature, and nothing
else but the id and timestamp columns: mistakes name the file, the patch and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchrisk.contract.rows import quoted_names
from patchrisk.errors import PatchriskError
from patchrisk.spec import DType, Feature, ModelSpec
from patchrisk.text_files import read_text_file

PATCHES_FILE = "patches file (.json or .csv)"  # what a directory given as one is not

_TRUE = {"true", "1", "yes", "1.0"}
_FALSE = {"false", "0", "no", "0.0"}


@dataclass
class Patch:
    id: str
    source: str  # "file.json patch 2"
    row: dict[str, Any]  # features (and the id column when the file had one)


def read_patches(paths: list[Path], spec: ModelSpec) -> list[Patch]:
    patches: list[Patch] = []
    for path in paths:
        rows = _read_csv(path, spec) if path.suffix.lower() == ".csv" else _read_json(path)
        if not rows:
            raise PatchriskError(f"{path}: no patches in the file")
        for i, row in enumerate(rows):
            where = f"{path} patch {i}"
            if not isinstance(row, dict):
                raise PatchriskError(
                    f"{where}: expected an object (feature name -> value), got {type(row).__name__}"
                )
            _check_fields(row, spec, where)
            _check_finite(row, where)
            patch_id = str(row.get(spec.id_column) or f"{path.name}#{i}")
            patches.append(Patch(id=patch_id, source=where, row=row))
    return patches


def _read_json(path: Path) -> list:
    try:
        # NaN: a missing value (null); ±Infinity stays a float, refused by _check_finite with its place
        data = json.loads(read_text_file(path, PATCHES_FILE), object_pairs_hook=_object_once,
                          parse_constant=lambda name: None if name == "NaN" else float(name))
    except (json.JSONDecodeError, _RepeatedField) as err:
        raise PatchriskError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:  # json's decoder recurses once per nested array or object
        raise PatchriskError(f"{path}: not valid JSON (nested too deeply)") from None
    if isinstance(data, dict):
        data = data["instances"] if "instances" in data else [data]
    if not isinstance(data, list):
        raise PatchriskError(f'{path}: expected a patch object, a list of them or {{"instances": [...]}}')
    return data


def _read_csv(path: Path, spec: ModelSpec) -> list[dict]:
    # newline="": line breaks inside quoted fields stay as written, as the csv module wants
    reader = csv.DictReader(io.StringIO(read_text_file(path, PATCHES_FILE), newline=""))
    _refuse_repeated_columns(reader.fieldnames or [], path)
    records = list(reader)
    features = {f.name: f for f in spec.features}
    rows = []
    for i, record in enumerate(records):
        row = {}
        for key, text in record.items():
            if key is None:
                raise PatchriskError(f"{path} line {i + 2}: more values than header columns")
            feature = features.get(key)
            row[key] = _typed(text, feature, f"{path} line {i + 2}, field '{key}'") if feature else text
        rows.append(row)
    return rows


def _refuse_repeated_columns(header: list[str], path: Path) -> None:
    """A column named twice: the csv module keeps the last value, so the gate would score a guess."""
    first: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in first:
            raise PatchriskError(f"{path} line 1: column {name!r} appears twice (columns {first[name]} and "
                                 f"{position}); which value is the patch's would be a guess")
        first[name] = position


class _RepeatedField(ValueError):
    pass


def _object_once(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose fields are each written once (json keeps the last of a repeated one)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedField(f"field {key!r} appears twice in one object")
        found[key] = value
    return found


def _typed(text: str | None, feature: Feature, where: str) -> Any:
    text = (text or "").strip()
    if text == "":
        return None
    if feature.is_categorical:
        return text
    if feature.dtype == DType.bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise PatchriskError(f"{where}: {text!r} is not true/false or 1/0")
    try:
        number = float(text)
    except ValueError:
        raise PatchriskError(f"{where}: {text!r} is not a number") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise PatchriskError(f"{where}: {text!r} is not a finite number")
    return int(number) if feature.dtype == DType.int and number.is_integer() else number


def _check_finite(row: dict, where: str) -> None:
    """No request can carry an infinite number (JSON has none): name it rather than fail to send."""
    for key, value in row.items():
        if isinstance(value, float) and math.isinf(value):
            raise PatchriskError(f"{where}, field '{key}': {value} is not a finite number")


def _check_fields(row: dict, spec: ModelSpec, where: str) -> None:
    missing = [n for n in spec.feature_names if n not in row]
    if missing:
        raise PatchriskError(f"{where}: missing feature(s) {', '.join(missing)}")
    allowed = set(spec.feature_names) | {spec.id_column, spec.timestamp_column}
    unknown = [k for k in row if k not in allowed]
    if unknown:
        raise PatchriskError(  # the file's own names: quoted, cut and counted, as the predictor does
            f"{where}: unknown field(s) {quoted_names(unknown)} "
            f"(the model takes: {', '.join(spec.feature_names)})"
        )
