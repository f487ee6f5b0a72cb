"""The model registry on MLflow (SQLite store); registration is announced as Azure ML's ModelRegistered."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from shared.adapters.local.paths import local_path, mlflow_uri, topic_endpoint
from shared.config import Settings
from shared.domain.messages import MODEL_REGISTERED
from shared.ports import ModelVersion, RunResults

RUN_TAG = "mlops.run_id"


class MlflowRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def register(self, name: str, results: RunResults, tags: dict[str, str]) -> ModelVersion:
        existing = self.find_by_run(name, results.run_id)
        if existing is not None:
            return existing  # registered by an earlier delivery: announce nothing twice
        client = self._mlflow()
        from mlflow.exceptions import MlflowException

        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        created = client.create_model_version(
            name, source=results.model_uri, tags={**tags, RUN_TAG: results.run_id}
        )
        model = self._version(created)
        self._announce(model)
        return model

    def find_by_run(self, name: str, run_id: str) -> ModelVersion | None:
        return next(iter(self.run_versions(name, run_id)), None)

    def run_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        found = [version for version in self._versions(name) if version.tags.get(RUN_TAG) == run_id]
        return sorted(found, key=lambda version: int(version.version))  # MLflow numbers versions 1, 2, ...

    def get(self, name: str, version: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._version(self._mlflow().get_model_version(name, str(version)))
        except MlflowException:
            return None

    def artifact_sha256(self, model: ModelVersion) -> str | None:
        from shared.training.provenance import folder_sha256

        folder = local_path(model.source)
        return folder_sha256(folder) if folder.is_dir() else None

    def _versions(self, name: str) -> list[ModelVersion]:
        found = self._mlflow().search_model_versions(f"name='{name}'")
        return [self._version(v) for v in found]

    def _version(self, version: Any) -> ModelVersion:
        return ModelVersion(
            name=version.name, version=str(version.version), tags=dict(version.tags), source=version.source
        )

    def _mlflow(self) -> Any:
        with self._lock:
            if self._client is None:
                from mlflow.tracking import MlflowClient

                uri = mlflow_uri(self._settings.home)
                self._settings.home.mkdir(parents=True, exist_ok=True)
                self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            return self._client

    def _announce(self, model: ModelVersion) -> None:
        from azure.core.credentials import AzureKeyCredential
        from azure.eventgrid import EventGridEvent, EventGridPublisherClient

        event = EventGridEvent(
            id=str(uuid.uuid4()),
            subject=f"models/{model.name}:{model.version}",
            event_type=MODEL_REGISTERED,
            data={
                "modelName": model.name,
                "modelVersion": model.version,
                "modelTags": model.tags,
                "modelProperties": {"source": model.source},
            },
            data_version="2",
            topic=self._settings.topics.workspace,
        )
        client = EventGridPublisherClient(
            topic_endpoint(self._settings.local.host_url, "workspace"),
            AzureKeyCredential(self._settings.events.key),
        )
        client.send([event])
