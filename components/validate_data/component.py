from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate_data(spec: str, data_uri: str, table: Input[Dataset], validated: Output[Dataset],
                  report: Output[Artifact], summary: Output[Markdown], policy_env: str = "dev"):
    """The spec's data contract and quality rules; fails the run on a blocking violation. The gate
    policy environment is checked first: a typo fails the run here, not at the gates after training."""
    from patchrisk.steps.validate import validate_table
    from patchrisk.task_process import start_task

    start_task()
    validate_table(spec, table.path, data_uri, report.path, summary.path, validated.path, policy_env=policy_env)
