"""The model registry on Azure ML models; registering fires Azure ML's own ModelRegistered event."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.ports import ModelVersion, RunResults

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

log = logging.getLogger(__name__)

RUN_TAG = "mlops.run_id"
_MODEL_ID = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)


def model_reference(model: str) -> str:
    """`name:version` of a model given as an ARM id, `azureml:name:version` or `name:version`."""
    found = _MODEL_ID.search(model)
    if found:
        return f"{found['name']}:{found['version']}"
    return model.removeprefix("azureml:")


class AzureMLRegistry:
    def __init__(self, ml_client: Callable[[], MLClient]) -> None:
        self._ml = ml_client

    def register(self, name: str, results: RunResults, tags: dict[str, str]) -> ModelVersion:
        existing = self.find_by_run(name, results.run_id)
        if existing is not None:
            return existing  # registered by an earlier delivery; Azure ML announced it then
        from azure.ai.ml.entities import Model

        # The version is the next number (the SDK reads the latest); callers hold the run's lease, so two
        # registrations of one run do not race here.
        created = self._ml().models.create_or_update(
            Model(
                name=name,
                type="mlflow_model",
                path=results.model_uri,
                tags={**tags, RUN_TAG: results.run_id},
                # Properties cannot be changed after registration, unlike tags: the run id that makes this
                # version is kept there too.
                properties={RUN_TAG: results.run_id},
                description=f"Trained by run {results.run_id}",
            )
        )
        model = _version(created)
        log.info("model registered", extra={"model": model.id, "run_id": results.run_id})
        return model

    def find_by_run(self, name: str, run_id: str) -> ModelVersion | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            versions = list(self._ml().models.list(name=name))
        except ResourceNotFoundError:
            return None  # no model of this name yet
        for version in versions:
            marks = (version.properties or {}, version.tags or {})
            if any(mark.get(RUN_TAG) == run_id for mark in marks):
                return _version(version)
        return None

    def get(self, name: str, version: str) -> ModelVersion | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _version(self._ml().models.get(name=name, version=str(version)))
        except ResourceNotFoundError:
            return None

    def artifact_sha256(self, model: ModelVersion) -> str | None:
        """Not read in Azure yet: hashing would download the model's files into the Function. The lineage
        carries the evaluated hash; the release records that it was not compared."""
        return None


def _version(model: Any) -> ModelVersion:
    return ModelVersion(
        name=model.name,
        version=str(model.version),
        tags={str(k): str(v) for k, v in (model.tags or {}).items()},
        source=str(model.path or ""),
    )
