"""Read and write what an overlay serves: the champion and the canary in
``inferenceservice-patch.yaml``, in the overlay's KServe mode (``deployment-mode.env``).

The contract (manifests/README.md): Standard mode names predictors ``v<N>`` and keeps the canary
as ``spec.canary[0]``; Knative mode keeps the *latest* revision's model in
``spec.predictor.model.storageUri`` and its share in ``spec.predictor.canaryTrafficPercent``, so
while a canary runs the champion's URI lives only in the rollout journal (and Git history).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from patchrisk.config_files import validation_problems
from patchrisk.errors import PatchriskError
from patchrisk.manifests_check.kserve_rules import sink_logger_url
from patchrisk.manifests_check.locations import declared_mode

PATCH_FILE = "inferenceservice-patch.yaml"
STANDARD, KNATIVE = "standard", "knative"
VERSION_IN_URI = re.compile(r"/v(?P<version>[1-9][0-9]*)/?$")
# Fixed fields of a Standard-mode canary entry (the CRD requires model.name on canaries).
CANARY_MODEL_FIELDS = {"name": "kserve-container", "modelFormat": {"name": "catboost"},
                       "runtime": "kserve-catboostserver"}


@dataclass(frozen=True)
class ModelRef:
    version: str
    uri: str

    @classmethod
    def from_uri(cls, uri: str) -> ModelRef:
        match = VERSION_IN_URI.search(uri or "")
        if not match:
            raise PatchriskError(f"{uri!r}: cannot tell the model version (expected …/v<N>/)")
        return cls(match["version"], uri)


# What the rollout reads of the patch, checked before it is used: people edit these files (GitOps),
# and a weight of "fifty" or 150 must be named, not a traceback in the analysis CronJob or a 150 % canary.
# Every other field is KServe's and kept as written.
Percent = Annotated[StrictInt, Field(ge=0, le=100)]


class _Kept(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Model(_Kept):
    storageUri: StrictStr | None = None


class _Predictor(_Kept):
    model: _Model | None = None
    canaryTrafficPercent: Percent | None = None


class _CanaryEntry(_Kept):
    predictor: _Predictor | None = None
    trafficPercent: Percent = 0


class _Spec(_Kept):
    predictor: _Predictor | None = None
    canary: list[_CanaryEntry] | None = None


class _Patch(_Kept):
    spec: _Spec | None = None


@dataclass(frozen=True)
class Serving:
    """What the overlay asks KServe to run. ``champion`` is None in Knative mode while a canary
    runs (the file then only holds the canary's URI)."""

    champion: ModelRef | None
    canary: ModelRef | None = None
    canary_percent: int | None = None


ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def overlay_directory(repo: Path, environment: str) -> Path:
    """``<repo>/manifests/overlays/<environment>``, refused (before anything is read or written)
    unless ``environment`` is a plain name and the folder, symlinks resolved, lies directly there."""
    overlays = Path(repo) / "manifests" / "overlays"
    directory = overlays / environment
    if not ENVIRONMENT_NAME.match(environment or "") or directory.resolve().parent != overlays.resolve():
        raise PatchriskError(f"--overlay {environment!r}: must name an environment folder directly under "
                             f"{overlays} (lowercase letters, digits and '-'), not a path")
    return directory


class _IndentedDumper(yaml.SafeDumper):
    """Indent list items under their key, as the hand-written manifests do."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


@dataclass(frozen=True)
class Overlay:
    directory: Path
    mode: str

    @classmethod
    def open(cls, repo: Path, environment: str) -> Overlay:
        directory = overlay_directory(repo, environment)
        if not (directory / "kustomization.yaml").is_file():
            raise PatchriskError(f"{directory}: no kustomize overlay for environment {environment!r}")
        if not (directory / PATCH_FILE).is_file():
            raise PatchriskError(f"{directory / PATCH_FILE}: missing (the rollout CLI edits this patch)")
        mode = declared_mode(directory)
        if mode not in (STANDARD, KNATIVE):
            raise PatchriskError(f"{directory}/deployment-mode.env: DEPLOYMENT_MODE must be standard or "
                                 f"knative, got {mode!r}")
        return cls(directory, mode)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def namespace(self) -> str:
        """The overlay's namespace (kustomization.yaml): the canary's logger URL names its sink."""
        path = self.directory / "kustomization.yaml"
        try:
            namespace = (yaml.safe_load(path.read_text()) or {}).get("namespace")
        except (yaml.YAMLError, AttributeError) as err:
            raise PatchriskError(f"{path}: cannot read the overlay's namespace: {err}") from None
        if not isinstance(namespace, str) or not namespace:
            raise PatchriskError(f"{path}: `namespace:` is not set (the canary's logger URL needs it)")
        return namespace

    @property
    def patch_path(self) -> Path:
        return self.directory / PATCH_FILE

    def content_hash(self) -> str:
        """sha256 over every file of the overlay (names and bytes): what an analysis was made against."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.directory.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.directory)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        return digest.hexdigest()

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> dict:
        try:
            doc = yaml.safe_load(self.patch_path.read_text())
        except yaml.YAMLError as err:
            raise PatchriskError(f"{self.patch_path}: invalid YAML: {err}") from None
        if not isinstance(doc, dict) or doc.get("kind") != "InferenceService":
            raise PatchriskError(f"{self.patch_path}: expected one InferenceService patch")
        return doc

    def read(self) -> Serving:
        try:
            spec = _Patch.model_validate(self._load()).spec or _Spec()
        except ValidationError as err:
            raise PatchriskError(f"{self.patch_path}: {'; '.join(validation_problems(err))}") from None
        predictor = spec.predictor or _Predictor()
        uri = (predictor.model or _Model()).storageUri
        if not uri:
            raise PatchriskError(f"{self.patch_path}: spec.predictor.model.storageUri is not set")
        if self.mode == KNATIVE:
            if predictor.canaryTrafficPercent is None:
                return Serving(ModelRef.from_uri(uri))
            return Serving(None, ModelRef.from_uri(uri), predictor.canaryTrafficPercent)
        canaries = spec.canary or []
        if len(canaries) > 1:
            raise PatchriskError(f"{self.patch_path}: spec.canary has {len(canaries)} entries; "
                                 "the rollout CLI manages exactly one canary")
        if not canaries:
            return Serving(ModelRef.from_uri(uri))
        entry = canaries[0]
        canary_uri = ((entry.predictor or _Predictor()).model or _Model()).storageUri
        return Serving(ModelRef.from_uri(uri), ModelRef.from_uri(canary_uri), entry.trafficPercent)

    def serving_fields(self, serving: Serving) -> dict[str, object]:
        """The patch fields that say what ``serving`` is, as this overlay's mode writes them (field
        paths as the read errors name them); comparing two of these names what differs."""
        canary_uri = serving.canary.uri if serving.canary else None
        percent = serving.canary_percent if serving.canary else None
        if self.mode == KNATIVE:  # while a canary runs the patch holds only the canary's URI
            latest = canary_uri if serving.canary else (serving.champion.uri if serving.champion else None)
            return {"spec.predictor.model.storageUri": latest, "spec.predictor.canaryTrafficPercent": percent}
        return {"spec.predictor.model.storageUri": serving.champion.uri if serving.champion else None,
                "spec.canary.0.predictor.model.storageUri": canary_uri, "spec.canary.0.trafficPercent": percent}

    def canary_fields(self) -> frozenset[str]:
        """The ``serving_fields`` that only say what the canary is: a rollback rewrites them whatever
        they hold. (In Knative mode the model URI is the canary's only while a canary runs.)"""
        if self.mode == KNATIVE:
            return frozenset({"spec.predictor.canaryTrafficPercent"})
        return frozenset({"spec.canary.0.predictor.model.storageUri", "spec.canary.0.trafficPercent"})

    # -- writing -------------------------------------------------------------------------------
    def render(self, serving: Serving) -> str:
        """The patch file's text for ``serving`` (other fields of the patch are kept)."""
        if serving.champion is None:
            raise PatchriskError("internal: the champion must be known to write the overlay")
        doc = self._load()
        spec = doc.setdefault("spec", {})
        predictor = spec.setdefault("predictor", {})
        model = predictor.setdefault("model", {})
        canary_logger = {"mode": "all", "url": sink_logger_url(self.namespace, "canary")}
        if self.mode == STANDARD:
            _standard(spec, predictor, model, serving, canary_logger)
        else:
            _knative(predictor, model, serving, canary_logger)
        return yaml.dump(doc, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False)

    def write(self, serving: Serving) -> bool:
        """Write ``serving``; False (nothing written) when the file already says exactly that."""
        text = self.render(serving)
        if text == self.patch_path.read_text():
            return False
        self.patch_path.write_text(text)
        return True


def _standard(spec: dict, predictor: dict, model: dict, serving: Serving, canary_logger: dict) -> None:
    """The stable predictor logs as ``default`` (the base manifest's URL); the canary entry gets its
    own logger naming ``canary`` (KServe merges it over the stable spec, URL included)."""
    predictor["name"] = f"v{serving.champion.version}"
    predictor.pop("canaryTrafficPercent", None)
    model["storageUri"] = serving.champion.uri
    if serving.canary is None:
        spec["canary"] = []
        return
    spec["canary"] = [{
        "predictor": {"name": f"v{serving.canary.version}", "logger": canary_logger,
                      "model": {**CANARY_MODEL_FIELDS, "storageUri": serving.canary.uri}},
        "trafficPercent": int(serving.canary_percent or 0),
    }]


def _knative(predictor: dict, model: dict, serving: Serving, canary_logger: dict) -> None:
    """Each Knative revision keeps the logger URL it was created with. Starting a canary changes
    the model and the URL together, so the new (latest) revision logs as ``canary`` while the
    previous one keeps logging as ``default``; a step changes only the share (no new revision);
    promote and rollback drop the override, so the revision they create logs as ``default``."""
    predictor.pop("name", None)
    if serving.canary is None:
        predictor.pop("canaryTrafficPercent", None)
        predictor.pop("logger", None)  # back to the base manifest's /endpoint/default
        model["storageUri"] = serving.champion.uri
        return
    # canaryTrafficPercent goes before `model`, where a person would write it.
    rest = {k: v for k, v in predictor.items() if k not in ("canaryTrafficPercent", "logger")}
    predictor.clear()
    predictor.update({"canaryTrafficPercent": int(serving.canary_percent or 0), "logger": canary_logger, **rest})
    model["storageUri"] = serving.canary.uri
