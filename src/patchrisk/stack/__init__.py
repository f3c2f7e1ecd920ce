"""The local stack: MLflow tracking server + S3-compatible server on 127.0.0.1."""

from patchrisk.stack.local import LocalStack, StackError, local_stack, stack_down, stack_up

__all__ = ["LocalStack", "StackError", "local_stack", "stack_down", "stack_up"]
