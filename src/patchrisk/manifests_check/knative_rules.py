"""What Knative Serving's admission webhook refuses in the pods KServe builds for a Knative-mode
InferenceService (rule ``knative-security-context``).

KServe copies a component's pod fields into the Knative Service it creates, and the runtime's
containers (merged with ``spec.<component>.model``/``containers``) into its pod. Knative validates
that pod against field masks (knative/serving ``pkg/apis/serving/fieldmask.go``):

- ``PodSecurityContextMask`` keeps no field while ``kubernetes.podspec-securitycontext`` is
  ``disabled``, Knative's default, so *any* pod-level ``securityContext`` is refused ("must not
  set the field(s)") and the InferenceService never becomes Ready;
- ``SecurityContextMask`` keeps only the container fields below; ``capabilities.add`` needs
  ``kubernetes.containerspec-addcapabilities``.

The schema and KServe's webhook accept both, so nothing else catches this before a cluster does.
Harden a Knative-mode predictor per container (the ServingRuntime's ``securityContext``).
"""

from __future__ import annotations

from patchrisk.manifests_check.findings import Finding, object_id

RULE = "knative-security-context"
COMPONENTS = ("predictor", "transformer", "explainer")
CONTAINER_FIELDS = frozenset({"capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
                              "allowPrivilegeEscalation", "seccompProfile"})
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KNATIVE_MODES = {"Knative", "Serverless"}  # Serverless: the deprecated name of the same mode


def _container_context(context, where: str, source: str, obj: str) -> list[Finding]:
    if not isinstance(context, dict):
        return []
    findings = [Finding(source, obj, f"{where}.{key}", RULE,
                        f"Knative refuses {key} in a container's securityContext; it accepts only "
                        f"{', '.join(sorted(CONTAINER_FIELDS))}")
                for key in context if key not in CONTAINER_FIELDS]
    if isinstance(context.get("capabilities"), dict) and context["capabilities"].get("add"):
        findings.append(Finding(source, obj, f"{where}.capabilities.add", RULE,
                                "Knative refuses added capabilities unless "
                                "kubernetes.containerspec-addcapabilities is enabled; drop, do not add"))
    return findings


def _is_knative(doc: dict) -> bool:
    return ((doc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION) in KNATIVE_MODES


def check_knative_security(docs: list[dict], source: str) -> list[Finding]:
    """Knative-mode InferenceServices of one rendered target, and the ServingRuntimes they name."""
    runtimes = {(d.get("metadata") or {}).get("name"): d for d in docs
                if isinstance(d, dict) and d.get("kind") == "ServingRuntime"}
    findings, used_runtimes = [], set()
    for doc in docs:
        if not (isinstance(doc, dict) and doc.get("kind") == "InferenceService" and _is_knative(doc)):
            continue
        obj, spec = object_id(doc), doc.get("spec") or {}
        for component in COMPONENTS:
            pod = spec.get(component)
            if not isinstance(pod, dict):
                continue
            if "securityContext" in pod:
                findings.append(Finding(source, obj, f"spec.{component}.securityContext", RULE,
                                        "a pod-level securityContext is refused by Knative "
                                        "(kubernetes.podspec-securitycontext is disabled by default), so the "
                                        "revision is never created; set these fields per container"))
            model = pod.get("model")
            if isinstance(model, dict):
                findings += _container_context(model.get("securityContext"), f"spec.{component}.model.securityContext",
                                               source, obj)
                used_runtimes.add(model.get("runtime"))
            for index, container in enumerate(pod.get("containers") or []):
                if isinstance(container, dict):
                    findings += _container_context(container.get("securityContext"),
                                                   f"spec.{component}.containers[{index}].securityContext", source, obj)
    for name in sorted(n for n in used_runtimes if n in runtimes):
        runtime = runtimes[name]
        for index, container in enumerate((runtime.get("spec") or {}).get("containers") or []):
            if isinstance(container, dict):
                findings += _container_context(container.get("securityContext"),
                                               f"spec.containers[{index}].securityContext", source, object_id(runtime))
    return findings
