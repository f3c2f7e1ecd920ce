"""The data contract: the spec's types, ranges, categories and nulls (checked by pandera) plus
quality rules (duplicate ids, missing rate, class balance, minimum rows).

The report lists every violation with column, rule, count and examples; any blocking violation
fails the run with a message naming the file, column and rule.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pandas as pd

from patchrisk.errors import DataContractError
from patchrisk.spec import DType, Feature, ModelSpec, UnknownCategoryPolicy

MAX_EXAMPLES = 5


@dataclass
class Violation:
    column: str
    rule: str
    count: int
    examples: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    blocking: bool = True

    def describe(self) -> str:
        ex = f" e.g. {self.examples}" if self.examples else ""
        where = f" (rows {self.rows})" if self.rows else ""
        return f"column '{self.column}': {self.rule}: {self.count} value(s){ex}{where}"


@dataclass
class ValidationReport:
    source: str
    spec: str
    rows: int
    violations: list[Violation]

    @property
    def passed(self) -> bool:
        return not any(v.blocking for v in self.violations)

    def to_dict(self) -> dict:
        return {"source": self.source, "spec": self.spec, "rows": self.rows, "passed": self.passed,
                "violations": [asdict(v) for v in self.violations]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"# Data validation: {verdict}", "",
                 f"Source `{self.source}`, spec `{self.spec}`, {self.rows} rows.", ""]
        if self.violations:
            lines += ["| column | rule | count | examples | blocking |", "|---|---|---|---|---|"]
            lines += [f"| {v.column} | {v.rule} | {v.count} | {v.examples} | {'yes' if v.blocking else 'no'} |"
                      for v in self.violations]
        else:
            lines.append("No violations.")
        return "\n".join(lines) + "\n"

    def raise_if_failed(self, problem: str = "data breaks the contract") -> None:
        if not self.passed:
            blocking = [v for v in self.violations if v.blocking]
            detail = "\n".join(f"  - {v.describe()}" for v in blocking)
            raise DataContractError(f"{self.source}: {problem} of spec {self.spec}:\n{detail}", violations=blocking)


def _as_numbers(values: pd.Series) -> pd.Series:
    """A column's values as numbers, text that is no number as NaN. A CSV column with one text cell is
    read as text, and pandera runs the checks on it uncoerced when the coercion fails: judged as text,
    '0' is not 0 and '5' has no range, so every row failed (or none was seen). The coercion names the
    text cell ("wrong type"); the checks judge the numbers."""
    return pd.to_numeric(values, errors="coerce") if values.dtype == object else values


def _number_check(holds, error: str):
    """A check of ``holds(numbers)`` that leaves a value that is no number to the coercion's error."""
    import pandera.pandas as pa

    def check(values: pd.Series) -> pd.Series:
        numbers = _as_numbers(values)
        return holds(numbers) | numbers.isna()

    return pa.Check(check, element_wise=False, ignore_na=True, error=error)


def _feature_column(f: Feature):
    import pandera.pandas as pa

    checks = []
    if f.dtype == DType.category:
        if f.unknown_category == UnknownCategoryPolicy.reject:
            checks.append(pa.Check.isin(list(f.categories), error="category not in the spec's allowed list"))
        return pa.Column(str, nullable=f.nullable, coerce=True, checks=checks, name=f.name)
    if f.min is not None or f.max is not None:
        lo = f.min if f.min is not None else float("-inf")
        hi = f.max if f.max is not None else float("inf")
        checks.append(_number_check(lambda v, lo=lo, hi=hi: v.between(lo, hi), f"outside the range [{lo:g}, {hi:g}]"))
    if f.dtype in (DType.int, DType.bool):
        checks.append(_number_check(lambda v: v % 1 == 0, "must be a whole number"))
    parsers = []
    if f.dtype == DType.bool:
        checks.append(_number_check(lambda v: v.isin([0, 1]), "must be 0/1 or true/false"))
        parsers.append(pa.Parser(text_booleans_as_numbers))
    return pa.Column(float, nullable=f.nullable, coerce=True, checks=checks, parsers=parsers, name=f.name)


_TEXT_BOOLEANS = {"true": 1, "false": 0}


def text_booleans_as_numbers(values: pd.Series) -> pd.Series:
    """A boolean column written as the text "true"/"false" (any case, a Parquet export) read as 1/0, as
    pandas reads the same CSV cells; other text stays, to be refused by the contract."""
    if values.dtype != object:
        return values
    return values.map(lambda v: _TEXT_BOOLEANS.get(v.strip().lower(), v) if isinstance(v, str) else v)


def contract_schema(spec: ModelSpec, require_target: bool = True):
    import pandera.pandas as pa

    columns = {f.name: _feature_column(f) for f in spec.features}
    columns[spec.id_column] = pa.Column(str, coerce=True, nullable=False)
    columns[spec.timestamp_column] = pa.Column("datetime64[ns]", coerce=True, nullable=False)
    if require_target:
        # Read as numbers, not int: a cast to int would truncate 0.5 or 1.7 to a label before the check sees it.
        columns[spec.target.name] = pa.Column(float, coerce=True, nullable=False,
                                              checks=[_number_check(lambda v: v.isin([0, 1]), "label must be 0 or 1")])
    return pa.DataFrameSchema(columns, strict=False)


def _rule_text(check: str, column: str) -> str:
    check = str(check)
    if check == "column_in_dataframe":
        return "required column is missing"
    if check.startswith("coerce_dtype") or check.startswith("dtype("):
        wanted = check.split("(", 1)[-1].rstrip(")").strip("'")
        return "wrong type (expected a number)" if wanted.startswith(("float", "int")) else f"wrong type ({wanted})"
    if check == "not_nullable":
        return "missing values not allowed"
    return check


def _failure_cases(df: pd.DataFrame, spec: ModelSpec, require_target: bool) -> pd.DataFrame | None:
    """pandera's failure cases (column, check, failure_case, index: the row, None for the column), or None."""
    import warnings

    import pandera.errors as pe

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            contract_schema(spec, require_target).validate(df, lazy=True)
        return None
    except pe.SchemaErrors as err:
        cases = err.failure_cases
    return cases.assign(column=cases["column"].fillna(cases["failure_case"]).astype(str),
                        check=cases["check"].astype(str))


def row_contract_violations(df: pd.DataFrame, spec: ModelSpec, require_target: bool) -> list[Violation]:
    cases = _failure_cases(df, spec, require_target)
    if cases is None:
        return []
    out: dict[tuple[str, str], Violation] = {}
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        examples = group["failure_case"].dropna().astype(str).unique().tolist()[:MAX_EXAMPLES]
        rows = [int(i) for i in group["index"].dropna().tolist()[:MAX_EXAMPLES]]
        if any(e.startswith(("TypeError(", "ValueError(")) for e in examples):
            continue  # a check that could not run on a wrongly typed column: the type error says it
        rule = _rule_text(check, column)
        if rule == "required column is missing":
            examples, rows = [], []
        # pandera reports a failed coercion twice (coerce, then dtype): keep one
        out.setdefault((column, rule), Violation(column=column, rule=rule, count=max(len(group), 1),
                                                 examples=examples, rows=rows))
    return list(out.values())


def _quality_violations(df: pd.DataFrame, spec: ModelSpec, require_target: bool) -> list[Violation]:
    out = []
    if require_target and len(df) < spec.min_rows:  # a training-set rule; any batch can be scored
        out.append(Violation("(table)", f"at least {spec.min_rows} rows required", len(df)))
    if spec.id_column in df:
        dup = df[spec.id_column][df[spec.id_column].duplicated(keep=False)]
        if len(dup):
            out.append(Violation(spec.id_column, "duplicate ids", int(dup.duplicated().sum()),
                                 examples=dup.astype(str).unique().tolist()[:MAX_EXAMPLES]))
    for name in spec.feature_names:
        if name in df and len(df):
            rate = float(df[name].isna().mean())
            if rate > spec.max_missing_rate:
                out.append(Violation(name, f"missing rate {rate:.1%} above {spec.max_missing_rate:.0%}",
                                     int(df[name].isna().sum())))
    target = spec.target.name
    if require_target and target in df and len(df):
        labels = pd.to_numeric(df[target], errors="coerce")
        if labels.notna().all():
            # Whatever the spec's rates allow: one label alone cannot be trained on, and the stratified
            # holdout split needs two rows of each.
            positives = int((labels == 1).sum())
            if min(positives, len(labels) - positives) < 2:
                out.append(Violation(target, f"each label needs at least 2 rows (the holdout split keeps both): "
                                             f"{positives} with label 1, {len(labels) - positives} with label 0",
                                     min(positives, len(labels) - positives)))
            rate = float(labels.mean())
            if not spec.min_positive_rate <= rate <= spec.max_positive_rate:
                out.append(Violation(target, f"positive rate {rate:.1%} outside "
                                     f"[{spec.min_positive_rate:.0%}, {spec.max_positive_rate:.0%}]",
                                     int(labels.sum())))
    return out


def validate_frame(df: pd.DataFrame, spec: ModelSpec, source: str = "<data>",
                   require_target: bool = True) -> ValidationReport:
    if df.empty and len(df.columns) == 0:
        return ValidationReport(source, spec.name, 0, [Violation("(table)", "file has no columns", 0)])
    violations = row_contract_violations(df, spec, require_target) + _quality_violations(df, spec, require_target)
    return ValidationReport(source=source, spec=spec.name, rows=len(df), violations=violations)


DUPLICATE_ID_RULE = "duplicate id (its first row is scored)"


def set_aside_bad_rows(df: pd.DataFrame, spec: ModelSpec, source: str = "<data>",
                       require_target: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows that keep the contract, one line per rule each other row breaks).

    For scoring, where one bad record must not block the good ones: a row with a value the contract
    refuses (out of range, an unknown category, missing, not a number) is set aside, as is a row whose
    id an earlier kept row already has. The lines read ``row`` (the row's position in the table, 0 for
    the first), the id, ``column``, ``rule`` and ``value``; the kept rows are labelled by position too.
    A problem of the table itself (a missing column, too many missing values in the rows kept) or no
    row left still raises :class:`DataContractError` with the full report.
    """
    # Positions, not the caller's labels: a table written from pd.concat([a, b]) repeats them, and one
    # bad row's label would drop every row sharing it.
    df = df.reset_index(drop=True)
    cases = _failure_cases(df, spec, require_target)
    lines: dict[tuple, dict] = {}  # pandera reports a failed coercion twice (coerce, then dtype): keep one
    if cases is not None:
        for case in cases[cases["index"].notna()].to_dict("records"):
            row, column, rule = int(case["index"]), case["column"], _rule_text(case["check"], case["column"])
            lines.setdefault((row, column, rule), {"row": row, "column": column, "rule": rule,
                                                   "value": str(case["failure_case"])})
    bad = {row for row, _, _ in lines}
    if spec.id_column in df:
        ids = df[spec.id_column].drop(index=list(bad)).astype(str)
        for row, value in ids[ids.duplicated(keep="first")].items():
            lines[(int(row), spec.id_column, DUPLICATE_ID_RULE)] = {
                "row": int(row), "column": spec.id_column, "rule": DUPLICATE_ID_RULE, "value": value}
            bad.add(int(row))
    kept = df.drop(index=sorted(bad))
    if len(df) and kept.empty:
        validate_frame(df, spec, source, require_target).raise_if_failed("no row keeps the contract")
    validate_frame(kept, spec, source, require_target).raise_if_failed()
    rejected = pd.DataFrame(sorted(lines.values(), key=lambda line: line["row"]),
                            columns=["row", "column", "rule", "value"])
    if spec.id_column in df:
        rejected.insert(1, spec.id_column, [str(df.at[row, spec.id_column]) for row in rejected["row"]])
    return kept, rejected


def conform(df: pd.DataFrame, spec: ModelSpec, require_target: bool = True) -> pd.DataFrame:
    """The validated frame with the contract's types applied (ids as str, timestamps parsed).

    Without ``require_target`` (scoring) the label column is dropped when present: upcoming rows may
    carry it empty until the outcome is known, and their labels were never checked."""
    out = df.copy() if require_target else df.drop(columns=[spec.target.name], errors="ignore")
    out[spec.id_column] = out[spec.id_column].astype(str)
    out[spec.timestamp_column] = pd.to_datetime(out[spec.timestamp_column])
    for f in spec.features:
        values = text_booleans_as_numbers(out[f.name]) if f.dtype == DType.bool else out[f.name]
        out[f.name] = values.astype(str if f.is_categorical else float)
    if spec.target.name in out:
        out[spec.target.name] = out[spec.target.name].astype(int)
    return out
