"""An Azure ML managed online endpoint behind the `Endpoints` port.

Creating or deleting a deployment and changing traffic take minutes in Azure. Each call here only starts
the operation (`begin_*`, never waited) and returns; progress is read back from the resource itself
(`deployment(name)` reads its provisioning state), so a handler persists nothing about pollers and the
`reconcile` tick picks up where the last call left off. The SDK's pollers keep checking in the background
until the operation ends; nobody waits for them.

Scoring goes straight to the endpoint's scoring URL with its key, both read once through the SDK: what a
client of the endpoint sees, and what the smoke test and canary time. (`online_endpoints.invoke` would add
three control-plane calls to every request, and azure-ai-ml 1.35 keeps one call's deployment header for the
next.)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.adapters.azure.registry import model_reference
from shared.adapters.azure.sdk import quicken_experimental_check
from shared.domain import capture
from shared.domain import endpoint_rules as rules
from shared.ports import Deployment, ModelVersion

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from shared.adapters.azure.metrics import EndpointMetrics

log = logging.getLogger(__name__)

_STATES = {
    "Creating": "Creating",
    "Updating": "Creating",
    "Scaling": "Creating",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Canceled": "Failed",
}
DELETING = "Deleting"
LOG_LINES = 20
DEPLOYMENT_HEADER = "azureml-model-deployment"
CONNECT_TIMEOUT_SECONDS = 10
SCORE_TIMEOUT_SECONDS = 60


def _provisioning(deployment: Any) -> str:
    """The deployment's provisioning state as its plain name (the SDK gives an enum, or a string)."""
    state = deployment.provisioning_state
    return str(getattr(state, "value", state) or "Creating")


class EndpointNotReady(RuntimeError):
    """The endpoint or deployment is being created or deleted; try again later (the platform retries)."""


class ScoringError(RuntimeError):
    """The endpoint did not answer a scoring request with 200; `status` and `body` say what it answered."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def deployment_entity(
    endpoint: str, name: str, model: ModelVersion, instance_type: str, count: int, capture_datastore: str = ""
) -> Any:
    """The `ManagedOnlineDeployment` of a registered MLflow model (no scoring script or environment needed), with
    the data collector writing what it serves where the drift and quality checks read it."""
    from azure.ai.ml.entities import ManagedOnlineDeployment

    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=endpoint,
        model=f"azureml:{model.name}:{model.version}",
        instance_type=instance_type,
        instance_count=count,
        tags={"mlops.model": model.id},
        data_collector=data_collector(endpoint, name, capture_datastore) if capture_datastore else None,
    )


def data_collector(endpoint: str, deployment: str, datastore: str) -> Any:
    """Azure ML's data collector for `model_inputs` and `model_outputs`, every request, in hour folders under
    `modelDataCollector/{endpoint}/{deployment}/{collection}/` of `datastore` (shared.domain.capture's layout).
    A fresh object per deployment: the SDK changes it while serialising it."""
    from azure.ai.ml.entities import DataAsset, DataCollector, DeploymentCollection

    quicken_experimental_check()

    def collection(name: str) -> Any:
        path = (
            f"azureml://datastores/{datastore}/paths/{capture.folder(endpoint, deployment, name).rstrip('/')}"
        )
        asset = DataAsset(name=f"{endpoint}-{deployment}-{name}", path=path, version="1")
        return DeploymentCollection(enabled="true", data=asset)

    return DataCollector(
        collections={name: collection(name) for name in capture.COLLECTIONS},
        rolling_rate="hour",
        sampling_rate=1.0,
    )


def endpoint_entity(name: str) -> Any:
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    return ManagedOnlineEndpoint(name=name, auth_mode="key", description="Served by mlops-functions")


class AzureMLEndpoints:
    def __init__(
        self,
        ml_client: Callable[[], MLClient],
        endpoint: str,
        instance_type: str,
        instance_count: int,
        metrics: EndpointMetrics | None = None,
        capture_datastore: str = "",
        **scoring_options: Any,
    ) -> None:
        """`metrics` answers `stats`; `scoring_options` go to the azure-core pipeline that posts scoring
        requests (tests pass `transport`)."""
        rules.validate_name("endpoint", endpoint)
        self.name = endpoint
        self._ml = ml_client
        self._instance_type = instance_type
        self._instance_count = instance_count
        self._metrics = metrics
        self._capture_datastore = capture_datastore  # every deployment's data collector writes there
        self._scoring_options = scoring_options
        self._scoring: tuple[Any, str, str] | None = None  # pipeline client, scoring URL, key or token
        self._scoring_lock = threading.Lock()

    def begin_deployment(self, name: str, model: ModelVersion) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        rules.validate_name("deployment", name)
        existing = self._get_deployment(name)
        if existing is not None:
            if _provisioning(existing) == DELETING:
                raise EndpointNotReady(f"deployment {name!r} is being deleted; it can be created again after")
            if model_reference(str(existing.model)) != model.id:
                log.warning(
                    "deployment exists with another model; keeping it",
                    extra={"deployment": name, "model": str(existing.model), "requested": model.id},
                )
            return
        entity = deployment_entity(
            self.name, name, model, self._instance_type, self._instance_count, self._capture_datastore
        )
        try:
            self._ml().online_deployments.begin_create_or_update(entity)  # not waited
        except ResourceNotFoundError:
            if self._get_endpoint() is not None:
                raise  # the endpoint is there: something else (the model) is missing
            self._ml().online_endpoints.begin_create_or_update(endpoint_entity(self.name))  # not waited
            raise EndpointNotReady(
                f"endpoint {self.name!r} did not exist; its creation has started, deploy again when it is up"
            ) from None
        log.info("deployment started", extra={"endpoint": self.name, "deployment": name, "model": model.id})

    def deployment(self, name: str) -> Deployment | None:
        found = self._get_deployment(name)
        if found is None or _provisioning(found) == DELETING:
            return None
        return self._observe(found)

    def deployments(self) -> list[Deployment]:
        found = self._ml().online_deployments.list(endpoint_name=self.name)
        observed = [self._observe(d) for d in found if _provisioning(d) != DELETING]
        return sorted(observed, key=lambda d: d.name)

    def traffic(self) -> dict[str, int]:
        endpoint = self._ml().online_endpoints.get(self.name)
        current = {name: int(pct) for name, pct in (endpoint.traffic or {}).items()}
        return {d.name: current.get(d.name, 0) for d in self.deployments()}

    def set_traffic(self, traffic: dict[str, int]) -> None:
        full = rules.validate_traffic(dict(traffic), {d.name for d in self.deployments()})
        ml = self._ml()
        endpoint = ml.online_endpoints.get(self.name)
        endpoint.traffic = full
        # A deployment cannot take live traffic and mirrored traffic at once.
        endpoint.mirror_traffic = rules.mirror_after_traffic(
            {name: int(pct) for name, pct in (endpoint.mirror_traffic or {}).items()}, full
        )
        ml.online_endpoints.begin_create_or_update(endpoint)  # not waited
        log.info("traffic set", extra={"endpoint": self.name, "traffic": full})

    def set_mirror_traffic(self, mirror: dict[str, int]) -> None:
        ml = self._ml()
        endpoint = ml.online_endpoints.get(self.name)
        live = {d.name: int((endpoint.traffic or {}).get(d.name, 0)) for d in self.deployments()}
        endpoint.mirror_traffic = rules.validate_mirror(dict(mirror), live)
        ml.online_endpoints.begin_create_or_update(endpoint)  # not waited
        log.info("mirror traffic set", extra={"endpoint": self.name, "mirror": endpoint.mirror_traffic})

    def mirror_traffic(self) -> dict[str, int]:
        endpoint = self._ml().online_endpoints.get(self.name)
        return {name: int(pct) for name, pct in (endpoint.mirror_traffic or {}).items() if int(pct) > 0}

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        if self._metrics is None:
            raise RuntimeError(f"endpoint {self.name!r} was built without a metrics reader")
        return self._metrics.stats(name, since_seconds)

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any:
        response = self._score(payload, deployment, refresh=False)
        if response.status_code == 401:  # the key was rotated or the token expired: read it again, once
            response = self._score(payload, deployment, refresh=True)
        if response.status_code != 200:
            text = response.text()
            raise ScoringError(
                f"endpoint {self.name!r} ({deployment or 'by traffic'}) answered {response.status_code}: "
                f"{text[:500]}",
                status=response.status_code,
                body=text,
            )
        return response.json()

    def delete_deployment(self, name: str) -> None:
        found = self._get_deployment(name)
        if found is None or _provisioning(found) == DELETING:
            return
        ml = self._ml()
        endpoint = ml.online_endpoints.get(self.name)
        # Azure refuses too, but only after accepting the request; say it here, as the local endpoint does.
        rules.check_deletable(name, {k: int(v) for k, v in (endpoint.traffic or {}).items()})
        if int((endpoint.mirror_traffic or {}).get(name, 0)) > 0:
            # A mirror serves no client: deleting it ends the mirroring. Azure needs the endpoint updated
            # first, which takes a while; the delete is then asked for again (by the next tick).
            endpoint.mirror_traffic = {k: v for k, v in endpoint.mirror_traffic.items() if k != name}
            ml.online_endpoints.begin_create_or_update(endpoint)  # not waited
            raise EndpointNotReady(
                f"deployment {name!r} was mirrored; mirroring is ending, delete it again after"
            )
        ml.online_deployments.begin_delete(name=name, endpoint_name=self.name)  # not waited
        log.info("deployment deletion started", extra={"endpoint": self.name, "deployment": name})

    # ----- internals -----

    def _score(self, payload: dict[str, Any], deployment: str | None, refresh: bool) -> Any:
        from azure.core.rest import HttpRequest

        client, url, secret = self._scoring_target(refresh)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        # the platform's own request: its capture is never counted as production traffic
        headers[capture.PROBE_HEADER] = capture.probe_id()
        if deployment is not None:
            headers[DEPLOYMENT_HEADER] = deployment
        try:
            # NaN is not JSON; the endpoint's front end refuses it, and so does the local endpoint.
            body = json.dumps(payload, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise ScoringError(f"the payload is not valid JSON: {error}", status=400) from error
        request = HttpRequest("POST", url, headers=headers, content=body)
        return client.send_request(
            request, connection_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=SCORE_TIMEOUT_SECONDS
        )

    def _scoring_target(self, refresh: bool) -> tuple[Any, str, str]:
        """The pipeline, scoring URL and key (or token) of the endpoint, read through the SDK once."""
        with self._scoring_lock:
            if self._scoring is None or refresh:
                from azure.core import PipelineClient

                ml = self._ml()
                url = ml.online_endpoints.get(self.name).scoring_uri
                credentials = ml.online_endpoints.get_keys(self.name)
                secret = getattr(credentials, "primary_key", None) or getattr(credentials, "access_token", "")
                # No retries: a failed request is a finding of the smoke test or the canary, not noise.
                client = PipelineClient(base_url=url, retry_total=0, **self._scoring_options)
                self._scoring = (client, url, secret)
            return self._scoring

    def _get_deployment(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._ml().online_deployments.get(name=name, endpoint_name=self.name)
        except ResourceNotFoundError:
            return None

    def _get_endpoint(self) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._ml().online_endpoints.get(self.name)
        except ResourceNotFoundError:
            return None

    def _observe(self, found: Any) -> Deployment:
        provisioning = _provisioning(found)
        state = _STATES.get(provisioning, "Creating")
        detail = f"provisioning state {provisioning}"
        if state == "Failed":
            detail += self._logs_tail(found.name)
        return Deployment(
            name=found.name, model=model_reference(str(found.model or "")), state=state, detail=detail
        )

    def _logs_tail(self, name: str) -> str:
        """The deployment's last log lines, for the release's failure reason; best effort."""
        try:
            logs = self._ml().online_deployments.get_logs(name=name, endpoint_name=self.name, lines=LOG_LINES)
        except Exception as error:  # the reason is still recorded without them
            return f" (logs unavailable: {type(error).__name__})"
        return f"; last log lines:\n{logs.strip()}" if logs and logs.strip() else ""
