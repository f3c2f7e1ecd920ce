"""What every check returns: a finding names where (source, object, field) and which rule."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Finding:
    source: str  # overlay name, or the rendered file it came from
    obj: str  # "Kind/name", or the Dockerfile path for hadolint
    field: str  # dotted field path, e.g. spec.canary[0].predictor.name ("-" when none applies)
    rule: str  # our rule id, "k8s-schema", "kserve-schema", a checkov or hadolint id
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.obj}: {self.field}: {self.message} [{self.rule}]"


@dataclass
class Report:
    """The outcome of one `patchrisk manifests check` run."""

    sources: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tools_run: list[str] = field(default_factory=list)
    # tool -> source -> what it examined there: objects (schemas and our rules), checks evaluated
    # (checkov), Dockerfiles (hadolint). A tool that ran but examined nothing shows as 0, not as clean.
    examined: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """The report ``patchrisk manifests check --json`` printed."""
        return cls(sources=data["sources"], findings=[Finding(**f) for f in data["findings"]],
                   tools_run=data["tools_run"], examined=data["examined"])

    def count(self, tool: str, source: str, n: int) -> None:
        per_source = self.examined.setdefault(tool, {})
        per_source[source] = per_source.get(source, 0) + n

    def for_source(self, source: str) -> list[Finding]:
        return [f for f in self.findings if f.source == source]

    @property
    def clean(self) -> bool:
        return not self.findings


def field_path(parts) -> str:
    """Render path parts as ``spec.canary[0].predictor.name``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "-"


def object_id(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind', '?')}/{meta.get('name', '?')}"
