"""Training + evaluation entry point, run as an Azure ML command job or a local subprocess.

    python -m shared.training --manifest PATH --data-dir DIR --config PATH --output DIR
                              [--champion DIR] [--run-id ID]

Importing this package is cheap: scikit-learn, pandas and mlflow load only when `run_training` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.training.errors import TrainingInputError

if TYPE_CHECKING:
    from shared.training.run import run_training

__all__ = ["TrainingInputError", "run_training"]


def __getattr__(name: str) -> Any:
    if name == "run_training":
        from shared.training.run import run_training

        return run_training
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
