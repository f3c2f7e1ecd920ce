"""Run checkov once over every rendered target and turn its failed checks into findings.

One run for all targets because checkov spends ~10 s starting up on a small machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.findings import Finding

# Where each check looks, relative to a container or the pod spec (checkov names no field).
CONTAINER_FIELDS = {
    "CKV_K8S_8": "livenessProbe", "CKV_K8S_9": "readinessProbe",
    "CKV_K8S_10": "resources.requests.cpu", "CKV_K8S_11": "resources.limits.cpu",
    "CKV_K8S_12": "resources.requests.memory", "CKV_K8S_13": "resources.limits.memory",
    "CKV_K8S_14": "image", "CKV_K8S_15": "imagePullPolicy", "CKV_K8S_43": "image",
    "CKV_K8S_16": "securityContext.privileged", "CKV_K8S_20": "securityContext.allowPrivilegeEscalation",
    "CKV_K8S_22": "securityContext.readOnlyRootFilesystem", "CKV_K8S_23": "securityContext.runAsNonRoot",
    "CKV_K8S_25": "securityContext.capabilities.add", "CKV_K8S_39": "securityContext.capabilities.add",
    "CKV_K8S_28": "securityContext.capabilities.drop", "CKV_K8S_37": "securityContext.capabilities.drop",
    "CKV_K8S_26": "ports[*].hostPort", "CKV_K8S_30": "securityContext",
    "CKV_K8S_35": "env[*].valueFrom.secretKeyRef", "CKV_K8S_40": "securityContext.runAsUser",
}
POD_FIELDS = {
    "CKV_K8S_17": "hostPID", "CKV_K8S_18": "hostIPC", "CKV_K8S_19": "hostNetwork",
    "CKV_K8S_29": "securityContext", "CKV_K8S_31": "securityContext.seccompProfile",
    "CKV_K8S_38": "automountServiceAccountToken",
}
POD_SPEC_PATH = {
    "Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec",
}


def guess_field(check_id: str, kind: str) -> str:
    pod = POD_SPEC_PATH.get(kind, "spec.template.spec")
    if check_id in CONTAINER_FIELDS:
        return f"{pod}.containers[*].{CONTAINER_FIELDS[check_id]}"
    if check_id in POD_FIELDS:
        return f"{pod}.{POD_FIELDS[check_id]}"
    if check_id == "CKV_K8S_21":
        return "metadata.namespace"
    return "-"


def run_checkov(checkov: Path, scan_dir: Path, file_labels: dict[str, str],
                evaluated: dict[str, int] | None = None) -> list[Finding]:
    """Scan ``scan_dir``; ``file_labels`` maps each file name in it to the target label to report.
    ``evaluated`` (label -> count) receives how many checks checkov evaluated per label."""
    if not Path(checkov).is_file():
        raise ManifestsCheckError(f"checkov not found at {checkov} (make .venv-checkov/.installed builds it)")
    # Not --quiet: that drops the passed checks from the JSON, and they are the evidence that
    # checkov evaluated each file at all (Report.examined).
    cmd = [str(checkov), "-d", str(scan_dir), "--framework", "kubernetes", "--compact",
           "--output", "json", "--skip-download"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    try:
        reports = json.loads(proc.stdout) if proc.stdout.strip() else []
    except json.JSONDecodeError as err:
        raise ManifestsCheckError(f"checkov printed no JSON (exit {proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout).strip()[-2000:]}") from err
    if proc.returncode not in (0, 1):
        raise ManifestsCheckError(f"checkov failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    if isinstance(reports, dict):
        reports = [reports]
    findings = []
    for report in reports:
        if report.get("check_type", "kubernetes") != "kubernetes":
            continue
        results = report.get("results") or {}
        if evaluated is not None:
            for result in (results.get("passed_checks") or []) + (results.get("failed_checks") or []):
                label = _label(result.get("file_path", "?"), file_labels)
                evaluated[label] = evaluated.get(label, 0) + 1
        for failed in results.get("failed_checks") or []:
            findings.append(_finding(failed, file_labels))
        for path in results.get("parsing_errors") or []:
            findings.append(Finding(_label(path, file_labels), "-", "-", "checkov-parse",
                                    "checkov could not parse this file"))
    return findings


def _label(file_path: str, file_labels: dict[str, str]) -> str:
    name = Path(file_path).name
    return file_labels.get(name, name)


def _finding(failed: dict, file_labels: dict[str, str]) -> Finding:
    kind, _, rest = str(failed.get("resource", "?")).partition(".")
    _namespace, _, name = rest.partition(".")
    name = name or rest or "?"
    check_id = failed.get("check_id", "?")
    lines = failed.get("file_line_range") or []
    where = f" (rendered lines {lines[0]}-{lines[1]})" if len(lines) == 2 else ""
    return Finding(_label(failed.get("file_path", "?"), file_labels), f"{kind}/{name}", guess_field(check_id, kind),
                   check_id, f"{failed.get('check_name', 'checkov check failed')}{where}")
