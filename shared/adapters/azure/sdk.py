"""One change to how azure-ai-ml runs in this process, made where the adapters first import it.

azure-ai-ml marks some entities experimental, among them `DataCollector` and `DeploymentCollection`: what every
deployment's capture is made of, built again from every REST response that reads a deployment. Each time one is
constructed, the SDK decides whether to log its experimental warning (once per process) by calling
`inspect.stack()`, before it looks whether the warning was logged already. That call reads the source of every
frame on the stack, and for each frame whose file it has not mapped scans all of `sys.modules`: milliseconds per
entity in the function app, tens of milliseconds in a larger process (`bench/experimental_check.py`). All it asks
is whether a caller is named `_from_rest_object`; walking the frames answers that in microseconds.
"""

from __future__ import annotations

import sys


def called_from_rest_conversion() -> bool:
    """The SDK's `_should_skip_warning`, without reading source: is a caller `_from_rest_object`?"""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_from_rest_object":
            return True
        frame = frame.f_back
    return False


def quicken_experimental_check() -> None:
    """Answer the SDK's experimental-warning question without `inspect.stack()`; idempotent. Left as it is if
    the SDK no longer asks it this way (its private helper is gone)."""
    from azure.ai.ml._utils import _experimental

    if callable(getattr(_experimental, "_should_skip_warning", None)):
        _experimental._should_skip_warning = called_from_rest_conversion
