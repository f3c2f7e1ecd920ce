from kfp import dsl
from kfp.dsl import Dataset, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def prepare_data(spec: str, data_uri: str, table: Output[Dataset]) -> int:
    """Model-ready table from the data source; aggregates raw telemetry when the spec declares it."""
    from patchrisk.steps.prepare import prepare_table
    from patchrisk.task_process import start_task

    start_task()
    result = prepare_table(spec, data_uri, table.path)
    table.metadata.update(result)
    return result["rows"]
