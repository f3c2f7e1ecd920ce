from kfp import dsl
from kfp.dsl import Markdown, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def record_rejection(reason: str, rejection: Output[Markdown]) -> str:
    """Ends a gated-out run with its reason as an output: nothing is registered, nothing crashes."""
    message = reason if reason.startswith("rejected") else f"rejected: {reason}"
    with open(rejection.path, "w") as fh:
        fh.write(f"# Model not registered\n\n{message}\n")
    print(message)
    return message
