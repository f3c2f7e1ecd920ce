"""What the overlay asks the cluster to run, as pods and Services with local addresses.

Deployments give ``<name>-<i>`` pods (one per replica); an InferenceService gives one predictor
pod per replica of the default predictor and of each canary (``minReplicas``), built as KServe
builds them from the ServingRuntime's container, and a router Service in front; CronJobs are
kept as Job templates for ``run-job``. External Services the overlay's config names (MLflow,
S3, the KFP API in other namespaces) get addresses too, forwarded to the local stand-ins.

Given the running overlay's plan, a pod or Service that is in both keeps its address (a Service's
ClusterIP never changes on a cluster, nor does a running pod's IP), so a sync that adds or removes
something leaves the others' addresses, and the hosts files naming them, as they were."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from patchrisk.localcluster.errors import LocalClusterError
from patchrisk.localcluster.network import AddressBook
from patchrisk.localcluster.render import Rendered

CLUSTER_HOST = re.compile(r"^(?P<name>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)(\.svc(\.cluster\.local)?)?$")
MODEL_VOLUME = "kserve-provision-location"


@dataclass
class PodPlan:
    name: str
    owner: str  # Deployment/<name>, InferenceService/<name>/<component>, CronJob/<name>
    labels: dict[str, str]
    ip: str
    spec: dict
    readiness: dict | None = None  # {"path": ..., "port": ...}
    model_uri: str | None = None


@dataclass
class ServicePlan:
    name: str
    namespace: str
    ip: str
    ports: list[dict]  # {"port": 80, "targetPort": 8080}
    backends: list[str] = field(default_factory=list)  # pod IPs
    external: str | None = None  # a local stand-in ("mlflow", "s3", "kfp") instead of pods
    router: dict | None = None  # InferenceService: {"mode", "model", "namespace", "splits" (each with its logger)}


@dataclass
class Plan:
    overlay: str
    namespace: str
    pods: list[PodPlan] = field(default_factory=list)
    services: list[ServicePlan] = field(default_factory=list)
    jobs: dict[str, dict] = field(default_factory=dict)  # CronJob name -> pod spec

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        return cls(data["overlay"], data["namespace"], [PodPlan(**p) for p in data["pods"]],
                   [ServicePlan(**s) for s in data["services"]], data.get("jobs", {}))

    def service_ips(self) -> dict[tuple[str, str], str]:
        return {(s.name, s.namespace): s.ip for s in self.services}


def _http_probe(container: dict) -> dict | None:
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if not probe:
        return None
    port = probe["port"]
    if isinstance(port, str):  # a named port
        port = next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)
    return {"path": probe.get("path", "/"), "port": int(port)}


def predictor_spec(component: dict, runtime: dict, model_name: str) -> dict:
    """The pod spec KServe builds for one predictor component from the ServingRuntime."""
    if not runtime:
        raise LocalClusterError(f"InferenceService {model_name}: ServingRuntime not found in the overlay")
    container = copy.deepcopy(runtime["spec"]["containers"][0])
    container["args"] = [a.replace("{{.Name}}", model_name) for a in container.get("args") or []]
    model = component.get("model") or {}
    if model.get("resources"):
        container["resources"] = model["resources"]
    container.setdefault("volumeMounts", []).append(
        {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True})
    spec = {key: copy.deepcopy(component[key]) for key in
            ("serviceAccountName", "securityContext", "automountServiceAccountToken") if key in component}
    spec["containers"] = [container]
    spec["volumes"] = [*copy.deepcopy(runtime["spec"].get("volumes") or []), {"name": MODEL_VOLUME, "emptyDir": {}}]
    return spec


def _isvc_components(isvc: dict) -> list[tuple[str, dict, int | None]]:
    """(component name, merged predictor spec, canary trafficPercent) for predictor and canaries."""
    spec = isvc.get("spec") or {}
    defaults = spec["predictor"]
    out = [("predictor", spec["predictor"], None)]
    for entry in spec.get("canary") or []:
        # Pod-level settings (identity, securityContext, logger) as the champion's; replicas its own.
        merged = {**{k: v for k, v in defaults.items() if k not in ("name", "model", "minReplicas", "maxReplicas")},
                  **(entry.get("predictor") or {})}
        out.append((merged.get("name", "canary"), merged, int(entry.get("trafficPercent", 0))))
    return out


class _Addresses:
    """One block's addresses: a name the previous plan had keeps its address; a new name gets the
    lowest index that neither this plan nor the previous one holds. A name removed by this sync
    thus frees its address only for the next sync: its stopped pod's address is not handed to
    another pod while clients and the old proxies may still point at it."""

    def __init__(self, address_of_index: Callable[[int], str], previous: dict):
        self.address_of_index = address_of_index
        self.previous = previous
        self.held = set(previous.values())
        self.next_index = 0

    def take(self, key) -> str:
        if key in self.previous:
            return self.previous[key]
        while (ip := self.address_of_index(self.next_index)) in self.held:
            self.next_index += 1
        self.held.add(ip)
        return ip


def build_plan(rendered: Rendered, previous_revision: str | None = None, previous: Plan | None = None) -> Plan:
    """The overlay as pods and Services; ``previous`` (the running plan) gives the addresses to keep."""
    book = AddressBook(rendered.overlay)
    plan = Plan(rendered.overlay, rendered.namespace)
    ns = rendered.namespace
    same_overlay = previous is not None and previous.overlay == rendered.overlay
    pod_ips = _Addresses(book.pod_ip, {p.name: p.ip for p in previous.pods} if same_overlay else {})
    service_ips = _Addresses(book.service_ip, previous.service_ips() if same_overlay else {})

    def add_pod(name: str, owner: str, labels: dict, spec: dict, readiness=None, model_uri=None) -> PodPlan:
        pod = PodPlan(name, owner, labels, pod_ips.take(name), spec, readiness, model_uri)
        plan.pods.append(pod)
        return pod

    def add_service(name: str, namespace: str, ports: list[dict], **kwargs) -> ServicePlan:
        service = ServicePlan(name, namespace, service_ips.take((name, namespace)), ports, **kwargs)
        plan.services.append(service)
        return service

    for deployment in rendered.of_kind("Deployment"):
        template = deployment["spec"]["template"]
        for i in range(_replicas(rendered, deployment)):
            add_pod(f"{deployment['metadata']['name']}-{i}", f"Deployment/{deployment['metadata']['name']}",
                    template["metadata"].get("labels", {}), template["spec"],
                    _http_probe(template["spec"]["containers"][0]))
    for cronjob in rendered.of_kind("CronJob"):
        plan.jobs[cronjob["metadata"]["name"]] = cronjob["spec"]["jobTemplate"]["spec"]["template"]

    for service in rendered.of_kind("Service"):
        selector = service["spec"].get("selector") or {}
        backends = [p.ip for p in plan.pods if selector and all(p.labels.get(k) == v for k, v in selector.items())]
        ports = [{"port": p["port"], "targetPort": p.get("targetPort", p["port"])} for p in service["spec"]["ports"]]
        add_service(service["metadata"]["name"], ns, ports, backends=backends)

    for isvc in rendered.of_kind("InferenceService"):
        _plan_inference_service(rendered, isvc, add_pod, add_service, previous_revision)

    for name, namespace, port, stand_in in external_services(rendered):
        if (name, namespace) not in plan.service_ips():
            add_service(name, namespace, [{"port": port, "targetPort": port}], external=stand_in)
    return plan


def _plan_inference_service(rendered, isvc, add_pod, add_service, previous_revision) -> None:
    name, ns = isvc["metadata"]["name"], rendered.namespace
    annotations = isvc["metadata"].get("annotations") or {}
    mode = annotations.get("serving.kserve.io/deploymentMode", "Knative").lower()
    predictor = isvc["spec"]["predictor"]
    runtime_name = (predictor.get("model") or {}).get("runtime")
    runtime = rendered.get("ServingRuntime", runtime_name) or {}
    readiness = {"path": f"/v1/models/{name}", "port": 8080}
    splits = []
    components = _isvc_components(isvc)
    if mode == "knative":  # one component; revisions: the latest takes canaryTrafficPercent
        percent = predictor.get("canaryTrafficPercent")
        revisions = [("latest", predictor["model"]["storageUri"], 100 if percent is None else int(percent))]
        if percent is not None and previous_revision:
            revisions.append(("prev", previous_revision, 100 - int(percent)))
        elif percent is not None:
            revisions[0] = ("latest", revisions[0][1], 100)  # no earlier ready revision: all to latest
        components = [(f"predictor-{tag}", {**predictor, "model": {**predictor["model"], "storageUri": uri}}, share)
                      for tag, uri, share in revisions]
    else:
        canary_total = sum(p for _, _, p in components if p is not None)
        components = [(c if c == "predictor" else f"{c}-predictor", spec, 100 - canary_total if p is None else p)
                      for c, spec, p in components]
    for component, spec, share in components:
        pods = []
        labels = {"serving.kserve.io/inferenceservice": name, "component": component}
        pod_spec = predictor_spec(spec, runtime, name)
        for i in range(int(spec.get("minReplicas", 1) or 1)):
            pods.append(add_pod(f"{name}-{component}-{i}", f"InferenceService/{name}/{component}", labels,
                                pod_spec, readiness, spec["model"]["storageUri"]))
        service = add_service(f"{name}-{component}", ns, [{"port": 80, "targetPort": 8080}],
                              backends=[p.ip for p in pods])
        logger = spec.get("logger") or {}  # each component's own payload logger (KServe's agent sidecar)
        splits.append({"component": component, "service": service.name, "percent": share,
                       "backends": [p.ip for p in pods], "logger_url": logger.get("url"),
                       "logger_mode": logger.get("mode", "all")})
    add_service(name, ns, [{"port": 80, "targetPort": 8080}], router={
        "mode": mode, "model": name, "namespace": ns, "splits": splits})


def job_pod_ip(plan: Plan, run: int) -> str:
    """The address of a CronJob's ``run``-th Job pod: one no planned pod holds (kept addresses
    leave gaps, so ``len(plan.pods) + run`` could be a running pod's), and one per run."""
    book, held = AddressBook(plan.overlay), {p.ip for p in plan.pods}
    free = (ip for ip in map(book.pod_ip, range(250)) if ip not in held)
    for _ in range(run):
        next(free, None)
    ip = next(free, None)
    if ip is None:
        raise LocalClusterError(f"overlay {plan.overlay}: no pod address left for Job run {run} (250 per overlay)")
    return ip


def external_services(rendered: Rendered) -> list[tuple[str, str, int, str]]:
    """Cluster Services in other namespaces that the overlay's ConfigMaps point at by URL."""
    found = []
    for config_map in rendered.of_kind("ConfigMap"):
        for value in (config_map.get("data") or {}).values():
            for word in re.findall(r"https?://[^\s\"']+", str(value)):
                url = urlparse(word)
                match = CLUSTER_HOST.match(url.hostname or "")
                if match and match["namespace"] != rendered.namespace and "." in (url.hostname or ""):
                    port = url.port or (443 if url.scheme == "https" else 80)
                    found.append((match["name"], match["namespace"], port, _stand_in(match["name"])))
    return sorted(set(found))


def _stand_in(name: str) -> str:
    if "mlflow" in name:
        return "mlflow"
    if "pipeline" in name:
        return "kfp"
    return "s3" if name in ("s3", "minio", "moto") else "none"


def _replicas(rendered, deployment: dict) -> int:
    """The Deployment's pods at the start: an autoscaler's minimum when one scales it (the Deployment
    then names no count), else its ``replicas`` (Kubernetes' default 1). The runner does not autoscale."""
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    for autoscaler in rendered.of_kind("HorizontalPodAutoscaler"):
        if autoscaler["spec"].get("scaleTargetRef") == target:
            return int(autoscaler["spec"].get("minReplicas", 1))
    return int(deployment["spec"].get("replicas", 1))
