"""Check a table against its spec's data contract; write the report; fail on blocking rules."""

from __future__ import annotations

from pathlib import Path

from patchrisk.spec import load_spec
from patchrisk.tables import read_table, write_table
from patchrisk.validation import conform, validate_frame


def validate_table(spec_name: str, table_path: str, source: str, report_json: str, report_md: str,
                   validated_path: str, policy_env: str | None = None) -> dict:
    """Raises DataContractError (listing every blocking violation) after writing the report.
    ``policy_env``: the gate policy environment the run's gates will use, checked first (SpecError
    naming the known ones): a typo would otherwise surface at the gates, after training."""
    spec = load_spec(spec_name)
    if policy_env is not None:
        from patchrisk.gates.policy import load_policy

        load_policy(spec.name, policy_env)  # ``spec_name`` may be a spec file's path: its policy is by name
    df = read_table(table_path, spec.text_columns)
    report = validate_frame(df, spec, source=source)
    Path(report_json).parent.mkdir(parents=True, exist_ok=True)
    Path(report_json).write_text(report.to_json())
    Path(report_md).write_text(report.to_markdown())
    report.raise_if_failed()
    write_table(conform(df, spec), validated_path)
    return report.to_dict()
