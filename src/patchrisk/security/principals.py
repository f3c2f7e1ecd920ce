"""The principals of the loop and what each may do: one table of data, read by the local stack
(to create users and grants), the MLflow alias policy, the permission-matrix test and the table
in docs/security.md. Nothing here talks to a server.

MLflow's basic-auth app grants READ/EDIT/MANAGE per experiment and per registered model, with
``default_permission = NO_PERMISSIONS`` for everything not granted. It cannot say *which alias* a
principal may move (moving any alias needs EDIT on the model), so ``aliases`` below is enforced by
our authorization function (``patchrisk.security.alias_policy``) on top of MLflow's own check,
as is ``registers`` (EDIT also covers creating versions, which only the training pipeline may).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patchrisk.alias_names import CANARY, CHALLENGER, CHAMPION, alias_for

TRAINING_EXPERIMENT = "patchrisk"  # Settings.mlflow_experiment
MONITORING_EXPERIMENT = "patchrisk-monitoring"  # patchrisk.monitoring.drift.job.MONITORING_EXPERIMENT
MODELS = ("patch-risk", "feature-reliability")
ADMIN = "admin"
# A rollout moves its own environment's aliases (`canary-<env>`, `champion-<env>`, see
# patchrisk.alias_names) and may remove `challenger` from the version it promotes.


def rollout_aliases(environment: str) -> tuple[str, ...]:
    return (alias_for(CANARY, environment), alias_for(CHAMPION, environment), CHALLENGER)


@dataclass(frozen=True)
class Principal:
    name: str  # the MLflow username
    component: str  # who runs as it
    secret: str  # Kubernetes Secret holding MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD
    experiments: dict[str, str] = field(default_factory=dict)  # experiment -> READ/EDIT/MANAGE
    models: dict[str, str] = field(default_factory=dict)  # registered model -> READ/EDIT/MANAGE
    aliases: tuple[str, ...] = ()  # aliases it may set or delete (alias policy)
    registers: bool = False  # may create model versions (registry policy)
    admin: bool = False


def _on_models(permission: str) -> dict[str, str]:
    return {model: permission for model in MODELS}


ROLLOUT_ENVIRONMENTS = ("staging", "prod")


def rollout_principal(environment: str) -> str:
    """The MLflow user of one environment's rollout CLI."""
    return f"rollout-{environment}"


# Who a command run after `make run` acts as towards the loop's MLflow (rollout commands: the
# rollout principal of their --overlay). `serve` only resolves the champion to a model directory
# and scores with it, as batch scoring does; the cluster's predictor holds no MLflow credentials.
COMMAND_PRINCIPALS = {"serve": "batch-scoring", "monitor": "monitor", "pipeline run": "training"}


def _rollout(env: str) -> Principal:
    """The rollout CLI of one environment. MANAGE because MLflow lets only MANAGE delete an alias
    (the canary's, after a promotion); the registry policy keeps deleting models and granting
    access admin-only. The alias policy keeps it to its own environment's aliases."""
    return Principal(rollout_principal(env),
                     f"rollout CLI for the {env} overlay: moves canary-{env} and champion-{env}",
                     "patchrisk-mlflow-rollout", experiments={TRAINING_EXPERIMENT: "READ"},
                     models=_on_models("MANAGE"), aliases=rollout_aliases(env))


PRINCIPALS: tuple[Principal, ...] = (
    Principal(ADMIN, "bootstrap only: creates users, experiments, models and grants", "mlflow-auth",
              admin=True),
    Principal("training", "training pipeline (KFP run pods): logs runs, registers versions",
              "patchrisk-mlflow-training",
              experiments={TRAINING_EXPERIMENT: "EDIT"}, models=_on_models("EDIT"), aliases=("challenger",),
              registers=True),
    Principal("monitor", "monitoring CronJob: reads models, logs monitoring runs",
              "patchrisk-mlflow-monitor",
              experiments={TRAINING_EXPERIMENT: "READ", MONITORING_EXPERIMENT: "EDIT"}, models=_on_models("READ")),
    Principal("batch-scoring", "batch scoring pipeline (KFP run pods): reads models and runs",
              "patchrisk-mlflow-batch-scoring", experiments={TRAINING_EXPERIMENT: "READ"},
              models=_on_models("READ")),
    Principal("sink", "prediction log sink: reads aliases to attribute rows to default/canary",
              "patchrisk-mlflow-sink", models=_on_models("READ")),
    *(_rollout(env) for env in ROLLOUT_ENVIRONMENTS),
)


def principal(name: str) -> Principal:
    for p in PRINCIPALS:
        if p.name == name:
            return p
    raise KeyError(f"no principal {name!r}; known: {', '.join(p.name for p in PRINCIPALS)}")


def alias_grants() -> dict[str, tuple[str, ...]]:
    """username -> aliases it may set or delete (admins are not limited)."""
    return {p.name: p.aliases for p in PRINCIPALS if not p.admin}


# -- the permission matrix: what each principal may do, derived from the grants above ---------

_LEVEL = {"NO_PERMISSIONS": 0, "READ": 1, "EDIT": 3, "MANAGE": 4}


def _at_least(grants: dict[str, str], resource: str, level: str) -> bool:
    return _LEVEL[grants.get(resource, "NO_PERMISSIONS")] >= _LEVEL[level]


@dataclass(frozen=True)
class Action:
    key: str
    title: str
    enforced_by: str

    def allowed(self, p: Principal) -> bool:
        return _ALLOWED[self.key](p)


_MODEL = MODELS[0]


def _may_set(alias: str, level: str = "EDIT"):
    return lambda p: p.admin or (_at_least(p.models, _MODEL, level) and alias in p.aliases)


_ALLOWED = {
    "read_alias": lambda p: p.admin or _at_least(p.models, _MODEL, "READ"),
    **{f"move_champion_{env}": _may_set(alias_for(CHAMPION, env)) for env in ROLLOUT_ENVIRONMENTS},
    "set_challenger": lambda p: p.admin or (_at_least(p.models, _MODEL, "EDIT") and "challenger" in p.aliases),
    "register_version": lambda p: p.admin or (_at_least(p.models, _MODEL, "EDIT") and p.registers),
    "log_training_run": lambda p: p.admin or _at_least(p.experiments, TRAINING_EXPERIMENT, "EDIT"),
    "log_monitoring_run": lambda p: p.admin or _at_least(p.experiments, MONITORING_EXPERIMENT, "EDIT"),
    "read_model_files": lambda p: p.admin or _at_least(p.experiments, TRAINING_EXPERIMENT, "READ"),
    **{f"delete_canary_{env}": _may_set(alias_for(CANARY, env), "MANAGE") for env in ROLLOUT_ENVIRONMENTS},
    "delete_model": lambda p: p.admin,
    "grant_permission": lambda p: p.admin,
    "manage_users": lambda p: p.admin,
}

ACTIONS: tuple[Action, ...] = (
    Action("read_alias", f"read alias (`{_MODEL}@{alias_for(CHAMPION, 'prod')}`)", "MLflow READ on the model"),
    *(Action(f"move_champion_{env}", f"move `{alias_for(CHAMPION, env)}`", "MLflow EDIT on the model + alias policy")
      for env in ROLLOUT_ENVIRONMENTS),
    Action("set_challenger", "set `challenger`", "MLflow EDIT on the model + alias policy"),
    Action("register_version", "register a version", "MLflow EDIT on the model + registry policy"),
    Action("log_training_run", f"log a run in `{TRAINING_EXPERIMENT}`", "MLflow EDIT on the experiment"),
    Action("log_monitoring_run", f"log a run in `{MONITORING_EXPERIMENT}`", "MLflow EDIT on the experiment"),
    Action("read_model_files", "read model files (run artifacts via MLflow)", "MLflow READ on the experiment"),
    *(Action(f"delete_canary_{env}", f"delete alias `{alias_for(CANARY, env)}`",
             "MLflow MANAGE on the model + alias policy") for env in ROLLOUT_ENVIRONMENTS),
    Action("delete_model", "delete the registered model", "registry policy: admin only"),
    Action("grant_permission", "grant a permission on the model", "registry policy: admin only"),
    Action("manage_users", "create a user", "MLflow admin"),
)

ANONYMOUS = "anonymous"


def expected(principal_name: str, action_key: str) -> bool:
    """What the design says: may ``principal_name`` do ``action_key``? Anonymous may do nothing."""
    if principal_name == ANONYMOUS:
        return False
    return next(a for a in ACTIONS if a.key == action_key).allowed(principal(principal_name))


def matrix_markdown() -> str:
    """The permission matrix as the Markdown table docs/security.md carries (kept equal by a test)."""
    names = [p.name for p in PRINCIPALS] + [ANONYMOUS]
    lines = ["| action | enforced by | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for action in ACTIONS:
        cells = ["yes" if expected(n, action.key) else "no" for n in names]
        lines.append(f"| {action.title} | {action.enforced_by} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
