"""What an Azure ML training job runs: the training code and its environment, both versioned by content.

The code is `python -m shared.training`: the `shared` package with only `shared/training` in it (it imports
nothing else from `shared`), so a change to a handler does not make a new code snapshot. The environment is
built from `shared/training/requirements.txt` on a base image and registered once per content hash, or is
an existing environment the user names.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import AzureSettings

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TRAINING_REQUIREMENTS = PROJECT_ROOT / "shared" / "training" / "requirements.txt"
# The Python of the Function App; models are pickled in training and unpickled when served and in the
# next training run, so one version throughout.
TRAINING_PYTHON = "3.11"
_CODE_SUFFIXES = (".py", ".txt")


def training_code_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The files a training job needs, relative to `root`: `shared/__init__.py` and `shared/training/`."""
    training = root / "shared" / "training"
    files = [
        path.relative_to(root)
        for path in training.rglob("*")
        if path.is_file() and path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts
    ]
    return sorted([Path("shared/__init__.py"), *files])


def stage_training_code(destination: Path, root: Path = PROJECT_ROOT) -> Path:
    """Copy the training code into `destination` (the job's code folder) and return it."""
    for relative in training_code_files(root):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, target)
    return destination


def conda_specification(requirements: str) -> dict[str, Any]:
    """A conda file installing the pip requirements, comments and blank lines dropped."""
    packages = [line.split("#", 1)[0].strip() for line in requirements.splitlines()]
    return {
        "name": "mlops-training",
        "channels": ["conda-forge"],
        "dependencies": [f"python={TRAINING_PYTHON}", "pip", {"pip": [p for p in packages if p]}],
    }


def is_environment_reference(environment: str) -> bool:
    """`name:version`, `name@label` and `azureml:...` name an existing environment; a bare name is ours."""
    return ":" in environment or "@" in environment


class TrainingEnvironment:
    """The job's environment reference; registers `<name>:<content hash>` the first time it is needed."""

    def __init__(
        self,
        ml_client: Callable[[], MLClient],
        azure: AzureSettings,
        requirements: Path = TRAINING_REQUIREMENTS,
    ) -> None:
        self._ml = ml_client
        self._azure = azure
        self._requirements = requirements
        self._resolved: str | None = None
        self._lock = threading.Lock()

    def entity(self) -> Any:
        """The `Environment` this project registers (not registered by this call)."""
        from azure.ai.ml.entities import Environment

        conda = conda_specification(self._requirements.read_text(encoding="utf-8"))
        content = json.dumps({"image": self._azure.environment_image, "conda": conda}, sort_keys=True)
        return Environment(
            name=self._azure.environment,
            version=hashlib.sha256(content.encode()).hexdigest()[:16],
            image=self._azure.environment_image,
            conda_file=conda,
            description="python -m shared.training: shared/training/requirements.txt on the base image",
        )

    def reference(self) -> str:
        """`azureml:name:version` of the environment to run in, registering ours if it is not there yet."""
        if is_environment_reference(self._azure.environment):
            return self._azure.environment
        with self._lock:
            if self._resolved is None:
                from azure.core.exceptions import ResourceNotFoundError

                wanted = self.entity()
                environments = self._ml().environments
                try:
                    environments.get(wanted.name, wanted.version)
                except ResourceNotFoundError:
                    environments.create_or_update(wanted)  # a PUT: the image is built on first use
                self._resolved = f"azureml:{wanted.name}:{wanted.version}"
            return self._resolved
