"""Run the gate: score every patch, explain the blocked ones, decide."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from patchrisk.risk_gate.client import EndpointError, RiskClient
from patchrisk.risk_gate.patches import Patch, read_patches
from patchrisk.risk_gate.report import GateReport, PatchResult
from patchrisk.security.redact import redact_credentials


def gate_files(
    paths: list[Path],
    endpoint: str,
    *,
    model: str = "patch-risk",
    protocol: str = "v1",
    threshold: float = 0.6,
    spec: str = "patch-risk",
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    fail_open: bool = False,
    top_k: int = 3,
    batch_size: int = 500,
    ca_bundle: str | Path | None = None,
    insecure: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> GateReport:
    """What ``patchrisk risk-gate`` does: read the patch files (checked against ``spec``; a bad file
    raises PatchriskError naming it), score them on ``endpoint``, explain the blocked ones. The
    report holds the verdict, each patch's score and ``exit_code``; an endpoint failure is its
    ``error``, not an exception."""
    from patchrisk.spec import load_spec

    model_spec = load_spec(spec)
    patches = read_patches(paths, model_spec)

    def shown(message: str) -> None:  # CI logs are read by many: a password in the endpoint stays out
        log(redact_credentials(message))

    client = RiskClient(endpoint, model, protocol, timeout=timeout, retries=retries, backoff=backoff, log=shown,
                        ca_bundle=ca_bundle, insecure=insecure,
                        outputs=(model_spec.outputs.score, model_spec.outputs.bucket))
    report = GateReport(endpoint=redact_credentials(client.endpoint), model=model, protocol=protocol,
                        threshold=threshold, fail_open=fail_open)
    try:
        report = run_gate(patches, client, report, batch_size=batch_size, top_k=top_k, log=shown)
    finally:
        client.close()
    if report.error:
        report.error = redact_credentials(report.error)
    return report


def run_gate(
    patches: list[Patch],
    client: RiskClient,
    report: GateReport,
    batch_size: int = 500,
    top_k: int = 3,
    log: Callable[[str], None] = lambda _m: None,
) -> GateReport:
    try:
        for start in range(0, len(patches), batch_size):
            batch = patches[start : start + batch_size]
            scored = client.predict([p.row for p in batch])
            report.model_version = scored.model_version
            report.patches += [
                PatchResult(
                    id=p.id,
                    source=p.source,
                    risk_score=s.risk_score,
                    risk_bucket=s.risk_bucket,
                    blocked=s.risk_score > report.threshold,
                )
                for p, s in zip(batch, scored.scores)
            ]
            log(f"scored {min(start + batch_size, len(patches))} of {len(patches)} patch(es)")
        blocked, by_source = report.blocked, {p.source: p for p in patches}
        for start in range(0, len(blocked), batch_size):
            chunk = blocked[start : start + batch_size]
            rows = [by_source[r.source].row for r in chunk]
            for result, top in zip(chunk, client.explain(rows, top_k=top_k)):
                result.top_features = top
    except EndpointError as err:
        report.error = _with_patch(str(err), patches)
    return report


def _with_patch(message: str, patches: list[Patch]) -> str:
    """'row 3, field ...' from the server, plus which file and patch row 3 was."""
    match = re.search(r"\brow (\d+)", message)
    if match and int(match[1]) < len(patches):
        return f"{message} [row {match[1]} = {patches[int(match[1])].source}]"
    return message
