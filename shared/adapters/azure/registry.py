"""The model registry on Azure ML models; registering fires Azure ML's own ModelRegistered event."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.ports import BlobStore, ModelVersion, RunResults

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


MAX_HASHED_BYTES = 512 * 1024 * 1024  # a larger model is not read into the Function to be hashed


class AzureMLRegistry:
    def __init__(
        self, ml_client: Callable[[], MLClient], blobs: BlobStore | None = None, container: str = ""
    ) -> None:
        self._blobs, self._container = blobs, container
        self._ml = ml_client

    def register(self, name: str, results: RunResults, tags: dict[str, str]) -> ModelVersion:
        existing = self.find_by_run(name, results.run_id)
        if existing is not None:
            return existing  # registered by an earlier delivery; Azure ML announced it then
        from azure.ai.ml.entities import Model

        # The version is the next number (the SDK reads the latest). Callers renew the run's lease right before,
        # but a registration slower than the lease can still race another: the lowest version is the run's.
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
        return next(iter(self.run_versions(name, run_id)), None)

    def run_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            versions = list(self._ml().models.list(name=name))
        except ResourceNotFoundError:
            return []  # no model of this name yet
        found = [
            _version(version)
            for version in versions
            if any(mark.get(RUN_TAG) == run_id for mark in (version.properties or {}, version.tags or {}))
        ]
        return sorted(found, key=_number)

    def get(self, name: str, version: str) -> ModelVersion | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _version(self._ml().models.get(name=name, version=str(version)))
        except ResourceNotFoundError:
            return None

    def artifact_sha256(self, model: ModelVersion) -> str | None:
        """The hash of the files the version was registered from: the run's job output
        (`runs/<run id>/output/model/` in the datasets container, read with the app's own blob access), hashed
        as the job hashed the model it evaluated. None without the run id, the files, or past MAX_HASHED_BYTES."""
        from shared.training.provenance import files_sha256, skipped

        run_id = model.tags.get("mlops.run_id")
        if self._blobs is None or not run_id:
            return None
        prefix = f"runs/{run_id}/output/model/"
        listed = [info for info in self._blobs.list(self._container, prefix=prefix)]
        if not listed or sum(info.size for info in listed) > MAX_HASHED_BYTES:
            return None
        files = []
        for info in listed:
            relative = info.name.removeprefix(prefix)
            if skipped(relative):
                continue
            blob = self._blobs.read(self._container, info.name)
            if blob is None:
                return None  # changed while being read: the next check reads it again
            files.append((relative, hashlib.sha256(blob.data).hexdigest()))
        return files_sha256(files)


def _number(model: ModelVersion) -> tuple[int, str]:
    return (int(model.version), "") if model.version.isdigit() else (2**63, model.version)


def _version(model: Any) -> ModelVersion:
    return ModelVersion(
        name=model.name,
        version=str(model.version),
        tags={str(k): str(v) for k, v in (model.tags or {}).items()},
        source=str(model.path or ""),
    )
