"""Azure without a network: an azure-core transport that answers like the REST APIs, and a fake credential.

`StubTransport` implements `azure.core.pipeline.transport.HttpTransport`. The real SDK clients (`MLClient`,
`BlobServiceClient`, `EventGridPublisherClient`) are built with `transport=StubTransport(...)`, so every
request they make goes through their own pipelines (serialization, auth, retries, polling) and ends here,
where it is recorded and answered by a small in-memory service shaped like the real one:

- `FakeAzureML`: the Azure ML workspace's ARM API (jobs, code, environments, models, online endpoints and
  deployments, long-running operations), the endpoint's Azure Monitor metrics and its scoring URL;
- `FakeBlobService`: the Blob service (put, get, head, delete; If-None-Match / If-Match; XML errors);
- `FakeEventGrid`: a custom topic's `/api/events`.

The services keep state, so tests assert on what Azure would now hold, and on the recorded requests where
the request itself is the contract (method, path, body, bearer token).
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import HttpTransport

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
RESOURCE_GROUP = "rg-mlops"
WORKSPACE = "mlw-mlops"
LOCATION = "westeurope"
WORKSPACE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
ARM = "management.azure.com"
STORAGE_ACCOUNT = "stmlops"
STORAGE_HOST = f"{STORAGE_ACCOUNT}.blob.core.windows.net"
STORAGE_URL = f"https://{STORAGE_HOST}"
TOPIC_HOST = "evgt-mlops.westeurope-1.eventgrid.azure.net"
TOPIC_ENDPOINT = f"https://{TOPIC_HOST}/api/events"


def _jwt(claims: dict[str, Any]) -> str:
    """An unsigned token shaped as Entra ID's (the SDK reads claims from it: the caller's object id for a
    pipeline job); the stub never checks a signature."""
    import base64
    import json as _json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(_json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c3R1Yg"


CLAIMS = {"oid": "00000000-0000-0000-0000-00000000b0b0", "tid": "00000000-0000-0000-0000-0000000000aa"}
TOKEN = _jwt({**CLAIMS, "aud": "https://management.azure.com"})
# The SDK sends a token for Azure ML's own audience with a pipeline job (x-azureml-token) and checks its `aud`.
ML_TOKEN = _jwt({**CLAIMS, "aud": "https://ml.azure.com"})

Json = dict[str, Any]


def _metrics_reference() -> dict[str, tuple[set[str], set[str]]]:
    """Azure Monitor's supported metrics of an online endpoint: metric -> (aggregations, dimensions), lower-cased
    aggregations as the REST API's data points name them (tests/fixtures/azure_monitor/)."""
    import csv
    from pathlib import Path

    table = Path(__file__).resolve().parents[1] / "fixtures" / "azure_monitor" / "online_endpoint_metrics.csv"
    with table.open(encoding="utf-8") as rows:
        return {
            row["metric"]: (
                {a.lower() for a in row["aggregations"].split(";") if a},
                {d for d in row["dimensions"].split(";") if d},
            )
            for row in csv.DictReader(rows)
        }


METRICS = _metrics_reference()


# --- the credential -------------------------------------------------------------------------------------------


class FakeCredential:
    """A TokenCredential that hands out one token and remembers which scopes were asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(_token_for(scopes), int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.extend(scopes)
        return AccessTokenInfo(_token_for(scopes), int(time.time()) + 3600)


def _token_for(scopes: tuple[str, ...]) -> str:
    return ML_TOKEN if any(scope.startswith("https://ml.azure.com") for scope in scopes) else TOKEN


# --- the transport --------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        return urlparse(self.url).netloc

    @property
    def path(self) -> str:
        return unquote(urlparse(self.url).path)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlparse(self.url).query).items()}

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Reply:
    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


Service = Callable[[Recorded], Reply]


def _body_of(request: Any) -> bytes:
    for attribute in ("content", "body", "data"):
        value = getattr(request, attribute, None)
        if value is None:
            continue
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            return value.encode()
        if hasattr(value, "read"):
            data = value.read()
            return data.encode() if isinstance(data, str) else bytes(data)
        if isinstance(value, dict):
            return json.dumps(value).encode()
        try:
            return b"".join(bytes(chunk) for chunk in value)
        except TypeError:
            continue
    return b""


class StubTransport(HttpTransport):
    """Records each request and answers it with the service registered for its host."""

    def __init__(self, services: dict[str, Service]) -> None:
        self.services = services
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def __enter__(self) -> StubTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        recorded = Recorded(request.method, request.url, dict(request.headers), _body_of(request))
        with self._lock:
            self.requests.append(recorded)
        service = next((s for host, s in self.services.items() if recorded.host.endswith(host)), None)
        reply = service(recorded) if service else Reply(599, b"no service for this host")
        return _response(request, reply, stream=kwargs.get("stream", False))

    def sent(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> list[Recorded]:
        """Requests made so far, by method and by path (exact, or a compiled pattern searched in it)."""
        with self._lock:
            found = list(self.requests)
        if method:
            found = [r for r in found if r.method == method]
        if isinstance(path, str):
            found = [r for r in found if r.path == path]
        elif path is not None:
            found = [r for r in found if path.search(r.path)]
        return found


def _response(request: Any, reply: Reply, stream: bool) -> Any:
    from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse
    from azure.core.rest._requests_basic import RestRequestsTransportResponse
    from azure.core.rest._rest_py3 import HttpRequest as RestHttpRequest

    body = reply.body
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    raw = requests.Response()
    raw.status_code = reply.status
    raw.reason = "OK" if reply.status < 400 else "Error"
    headers = dict(reply.headers)
    if body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json; charset=utf-8"
    headers.setdefault("Content-Length", str(len(body)))
    raw.headers.update(headers)
    raw.raw = io.BytesIO(body)
    raw.url = request.url
    raw.encoding = "utf-8"
    if isinstance(request, RestHttpRequest):
        response = RestRequestsTransportResponse(request=request, internal_response=raw)
        if not stream:
            response.read()
        return response
    return RequestsTransportResponse(request, raw)


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


# --- Azure ML -------------------------------------------------------------------------------------------------


class FakeAzureML:
    """One workspace's ARM API and one endpoint's scoring URL, with the state Azure would keep."""

    def __init__(self, workspace_id: str = WORKSPACE_ID) -> None:
        self.workspace_id = workspace_id
        self.jobs: dict[str, Json] = {}
        self.cancelled: list[str] = []
        self.environments: dict[tuple[str, str], Json] = {}
        self.data_assets: dict[tuple[str, str], Json] = {}
        self.components: dict[tuple[str, str], Json] = {}
        self.models: dict[str, dict[str, Json]] = {}
        self.endpoints: dict[str, Json] = {}
        self.deployments: dict[tuple[str, str], Json] = {}
        self.code_exists = True  # the training code snapshot was uploaded before (upload is not stubbed)
        self.prediction: Any = 1.0
        self.scored_by: list[str] = []
        self.endpoint_key = "endpoint-key-1"
        # Azure Monitor's per-minute platform metrics, by deployment: request counts by status class, p95s
        self.requests_per_minute: dict[str, dict[str, list[float]]] = {}
        self.latency_p95_per_minute: dict[str, list[float]] = {}
        self._operations = itertools.count(1)

    # test controls
    def add_endpoint(self, name: str, traffic: dict[str, int] | None = None) -> None:
        self.endpoints[name] = {
            "id": f"{self.workspace_id}/onlineEndpoints/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": LOCATION,
            "kind": "Managed",
            "identity": {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
            "properties": {
                "authMode": "Key",
                "scoringUri": f"https://{name}.{LOCATION}.inference.ml.azure.com/score",
                "traffic": dict(traffic or {}),
                "mirrorTraffic": {},
                "provisioningState": "Succeeded",
            },
        }

    def set_job_status(self, name: str, status: str) -> None:
        self.jobs[name]["properties"]["status"] = status

    def set_deployment_state(self, endpoint: str, name: str, state: str) -> None:
        self.deployments[(endpoint, name)]["properties"]["provisioningState"] = state

    def finish_deletions(self) -> None:
        for key in [
            k for k, d in self.deployments.items() if d["properties"]["provisioningState"] == "Deleting"
        ]:
            del self.deployments[key]

    # the service
    def __call__(self, request: Recorded) -> Reply:
        if request.host.endswith("inference.ml.azure.com"):
            return self._score(request)
        path = request.path
        if path.rstrip("/") == self.workspace_id:
            return Reply(
                200, {"id": self.workspace_id, "name": WORKSPACE, "location": LOCATION, "properties": {}}
            )
        if "/operationStatus/" in path:
            return Reply(200, {"status": "Succeeded"})  # every long-running operation is accepted as done
        if not path.startswith(self.workspace_id + "/"):
            return _error(404, "NotFound", f"no route for {path}")
        parts = path[len(self.workspace_id) + 1 :].split("/")
        kind = parts[0]
        handler = {
            "jobs": self._jobs,
            "codes": self._codes,
            "environments": self._environments,
            "models": self._models,
            "onlineEndpoints": self._endpoints,
            "data": self._data,
            "components": self._components,
        }.get(kind)
        if handler is None:
            return _error(404, "NotFound", f"no route for {path}")
        return handler(request, parts[1:])

    def _jobs(self, request: Recorded, parts: list[str]) -> Reply:
        name = parts[0]
        if parts[1:] == ["cancel"] and request.method == "POST":
            job = self.jobs.get(name)
            if job is None:
                return _error(404, "UserError", f"job {name} not found")
            if job["properties"]["status"] not in ("Completed", "Failed", "Canceled"):
                job["properties"]["status"] = "CancelRequested"  # Canceled once the compute has stopped it
            self.cancelled.append(name)
            return self._accepted(request, None, 202)
        if request.method == "GET":
            job = self.jobs.get(name)
            return Reply(200, job) if job else _error(404, "UserError", f"job {name} not found")
        if request.method == "PUT":
            if name in self.jobs:
                return _error(400, "UserError", f"A job with this name already exists: {name}")
            body = request.json()
            body["properties"]["status"] = "NotStarted"
            body.update(
                {
                    "id": request.path,
                    "name": name,
                    "type": "Microsoft.MachineLearningServices/workspaces/jobs",
                }
            )
            self.jobs[name] = body
            return Reply(201, body)
        return _error(405, "MethodNotAllowed", request.method)

    def _data(self, request: Recorded, parts: list[str]) -> Reply:
        """Data assets: the SDK registers one per data collector collection before it creates a deployment."""
        if len(parts) != 3 or parts[1] != "versions":
            return _error(404, "NotFound", f"no route for data/{'/'.join(parts)}")
        key = (parts[0], parts[2])
        if request.method == "GET":
            found = self.data_assets.get(key)
            return Reply(200, found) if found else _error(404, "UserError", f"data {key} not found")
        if request.method == "PUT":
            body = request.json()
            if not str(body["properties"].get("dataUri", "")).startswith("azureml://datastores/"):
                return _error(400, "UserError", f"data {key}: a datastore path is required")
            body.update({"id": request.path, "name": key[1]})
            self.data_assets[key] = body
            return Reply(201, body)
        return _error(405, "MethodNotAllowed", request.method)

    def _components(self, request: Recorded, parts: list[str]) -> Reply:
        """Components: a pipeline job's steps, registered (anonymous, named by content hash) before the job."""
        if len(parts) != 3 or parts[1] != "versions":
            return _error(404, "NotFound", f"no route for components/{'/'.join(parts)}")
        key = (parts[0], parts[2])
        if request.method == "GET":
            found = self.components.get(key)
            return Reply(200, found) if found else _error(404, "UserError", f"component {key} not found")
        if request.method == "PUT":
            body = request.json()
            spec = body["properties"].get("componentSpec") or {}
            missing = [field for field in ("command", "environment", "code") if not spec.get(field)]
            if missing:
                return _error(400, "UserError", f"component {key}: {', '.join(missing)} required")
            body.update({"id": request.path, "name": key[1]})
            self.components[key] = body
            return Reply(201, body)
        return _error(405, "MethodNotAllowed", request.method)

    def _codes(self, request: Recorded, parts: list[str]) -> Reply:
        name = parts[0]
        code_id = f"{self.workspace_id}/codes/{name}/versions/1"
        code = {
            "id": code_id,
            "name": "1",
            "properties": {"codeUri": f"{STORAGE_URL}/code/{name}", "isAnonymous": True},
        }
        if len(parts) == 2:  # list by content hash
            return Reply(200, {"value": [code] if self.code_exists else []})
        if request.method == "GET" and self.code_exists:
            return Reply(200, code)
        return _error(404, "UserError", f"code {name} not found")

    def _environments(self, request: Recorded, parts: list[str]) -> Reply:
        key = (parts[0], parts[2] if len(parts) > 2 else "")
        if request.method == "GET":
            env = self.environments.get(key)
            return Reply(200, env) if env else _error(404, "UserError", f"environment {key} not found")
        if request.method == "PUT":
            body = request.json()
            body.update({"id": request.path, "name": key[1]})
            self.environments[key] = body
            return Reply(201, body)
        return _error(405, "MethodNotAllowed", request.method)

    def _models(self, request: Recorded, parts: list[str]) -> Reply:
        name = parts[0]
        versions = self.models.get(name, {})
        if len(parts) == 1:  # the model container
            if not versions:
                return _error(404, "UserError", f"model {name} not found")
            latest = max(int(v) for v in versions)
            properties = {"latestVersion": str(latest), "nextVersion": str(latest + 1)}
            return Reply(200, {"id": request.path, "name": name, "properties": properties})
        if len(parts) == 2:  # list versions, newest first
            listed = sorted(versions.values(), key=lambda m: -int(m["name"]))
            top = request.query.get("$top")
            return Reply(200, {"value": listed[: int(top)] if top else listed})
        version = parts[2]
        if request.method == "GET":
            model = versions.get(version)
            return (
                Reply(200, model) if model else _error(404, "UserError", f"model {name}:{version} not found")
            )
        if request.method == "PUT":
            body = request.json()
            body["properties"].setdefault(
                "flavors", {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}}
            )
            body.update({"id": request.path, "name": version})
            self.models.setdefault(name, {})[version] = body
            return Reply(201, body)
        return _error(405, "MethodNotAllowed", request.method)

    def _endpoints(self, request: Recorded, parts: list[str]) -> Reply:
        name = parts[0]
        endpoint = self.endpoints.get(name)
        if len(parts) == 1:
            if request.method == "GET":
                return (
                    Reply(200, endpoint)
                    if endpoint
                    else _error(404, "NotFound", f"endpoint {name} not found")
                )
            if request.method == "PUT":
                properties = request.json().get("properties", {})
                traffic, mirror = properties.get("traffic") or {}, properties.get("mirrorTraffic") or {}
                known = {d for (e, d) in self.deployments if e == name}
                if set(traffic) - known or set(mirror) - known or sum(traffic.values()) not in (0, 100):
                    return _error(400, "BadArgument", f"invalid traffic {traffic} / mirror {mirror}")
                if endpoint is None:
                    self.add_endpoint(name)
                stored = self.endpoints[name]
                stored["properties"]["traffic"] = dict(properties.get("traffic") or {})
                stored["properties"]["mirrorTraffic"] = dict(properties.get("mirrorTraffic") or {})
                return self._accepted(request, stored, 201 if endpoint is None else 200)
        if endpoint is None:
            return _error(404, "NotFound", f"endpoint {name} not found")
        if parts[1:] == ["providers", "Microsoft.Insights", "metrics"]:
            return self._metrics(request)
        if parts[1] == "listKeys":
            return Reply(200, {"primaryKey": self.endpoint_key, "secondaryKey": "endpoint-key-2"})
        if parts[1] == "deployments":
            return self._deployments(request, name, parts[2:])
        return _error(404, "NotFound", f"no route for {request.path}")

    def _deployments(self, request: Recorded, endpoint: str, parts: list[str]) -> Reply:
        if not parts:
            listed = [d for (e, _), d in sorted(self.deployments.items()) if e == endpoint]
            return Reply(200, {"value": listed})
        name = parts[0]
        key = (endpoint, name)
        deployment = self.deployments.get(key)
        if len(parts) == 2 and parts[1] == "getLogs":
            return Reply(200, {"content": "Traceback: the model could not be loaded"})
        if request.method == "GET":
            return (
                Reply(200, deployment)
                if deployment
                else _error(404, "NotFound", f"deployment {name} not found")
            )
        if request.method == "PUT":
            body = request.json()
            # What the service fills in when the request leaves it out.
            body["properties"].setdefault("scaleSettings", {"scaleType": "Default"})
            body["properties"].setdefault(
                "requestSettings", {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1}
            )
            body["properties"].setdefault("egressPublicNetworkAccess", "Enabled")
            body["properties"]["provisioningState"] = "Creating"
            body.update(
                {
                    "id": request.path,
                    "name": name,
                    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                }
            )
            self.deployments[key] = body
            return self._accepted(request, body, 201)
        if request.method == "DELETE":
            if deployment is None:
                return Reply(204)
            traffic = self.endpoints[endpoint]["properties"]["traffic"]
            if traffic.get(name, 0) > 0:
                return _error(400, "BadRequest", f"deployment {name} has traffic; it cannot be deleted")
            deployment["properties"]["provisioningState"] = "Deleting"
            return self._accepted(request, None, 202)
        return _error(405, "MethodNotAllowed", request.method)

    def _metrics(self, request: Recorded) -> Reply:
        """Azure Monitor's metrics API for the endpoint: one metric, one aggregation, split by the filter."""
        query = request.query
        found = re.fullmatch(
            r"deployment eq '([^']*)'( and statusCodeClass eq '\*')?", query.get("$filter", "")
        )
        if found is None or query.get("interval") != "PT1M" or "/" not in query.get("timespan", ""):
            return _error(400, "BadRequest", f"unsupported query {query}")
        deployment, by_class = found.group(1), found.group(2) is not None
        metric, aggregation = query.get("metricnames"), (query.get("aggregation") or "").lower()
        minute = "2024-05-06T12:00:00Z"
        listed = METRICS.get(metric or "")
        dimensions = {"deployment", *(["statusCodeClass"] if by_class else [])}
        if listed is None or aggregation not in listed[0] or not dimensions <= listed[1]:
            # what Azure Monitor's reference does not list for the endpoint is refused, as the service does
            return _error(
                400, "BadRequest", f"Failed to find metric configuration for {metric} / {aggregation}"
            )
        if metric == "RequestsPerMinute" and by_class:
            counts = self.requests_per_minute.get(deployment, {})
            series = [
                {
                    "metadatavalues": [{"name": {"value": "statuscodeclass"}, "value": status_class}],
                    "data": [{"timeStamp": minute, aggregation: n} for n in per_minute],
                }
                for status_class, per_minute in counts.items()
            ]
        elif metric == "RequestLatency_P95" and not by_class:
            values = self.latency_p95_per_minute.get(deployment, [])
            series = [{"metadatavalues": [], "data": [{"timeStamp": minute, aggregation: v} for v in values]}]
        else:
            return _error(
                400, "BadRequest", f"Failed to find metric configuration for {metric} / {aggregation}"
            )
        value = {"name": {"value": metric, "localizedValue": metric}, "unit": "Count", "timeseries": series}
        return Reply(200, {"timespan": query["timespan"], "interval": "PT1M", "value": [value]})

    def _accepted(self, request: Recorded, body: Json | None, status: int) -> Reply:
        """A long-running operation's first answer: its status URL, to be polled at once (and found done)."""
        operation = f"https://{ARM}{self.workspace_id}/operationStatus/op-{next(self._operations)}?api-version=2023-04-01-preview"
        headers = {"Azure-AsyncOperation": operation, "Retry-After": "0"}
        if status == 202:
            headers["Location"] = operation
        return Reply(status, body if body is not None else b"", headers)

    def _score(self, request: Recorded) -> Reply:
        endpoint = request.host.split(".", 1)[0]
        deployments = {name for (e, name) in self.deployments if e == endpoint}
        named = request.header("azureml-model-deployment")
        if named:
            if named not in deployments:
                return _error(404, "NotFound", f"deployment {named} not found")
            chosen = named
        else:
            weighted = [(n, w) for n, w in self.endpoints[endpoint]["properties"]["traffic"].items() if w > 0]
            if not weighted:
                return _error(424, "NoTraffic", "no deployment takes traffic")
            chosen = max(weighted, key=lambda item: item[1])[0]
        if request.header("Authorization") != f"Bearer {self.endpoint_key}":
            return _error(401, "Unauthorized", "key required")
        self.scored_by.append(chosen)
        rows = len(request.json()["input_data"]["data"])
        return Reply(200, [self.prediction] * rows, {"azureml-model-deployment": chosen})


# --- Blob storage ---------------------------------------------------------------------------------------------


@dataclass
class _Blob:
    data: bytes
    etag: str
    modified: datetime
    content_type: str


class FakeBlobService:
    """Block blobs in containers, with the conditional writes and error codes of the Blob service."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, _Blob]] = {}
        self._etags = itertools.count(1)

    def put(self, container: str, name: str, data: bytes) -> None:
        self.containers.setdefault(container, {})[name] = self._blob(data, "application/octet-stream")

    def get(self, container: str, name: str) -> bytes | None:
        blob = self.containers.get(container, {}).get(name)
        return None if blob is None else blob.data

    def __call__(self, request: Recorded) -> Reply:
        container, _, name = request.path.lstrip("/").partition("/")
        if not name:
            if request.query.get("restype") == "container" and request.method == "PUT":
                if container in self.containers:
                    return self._error(409, "ContainerAlreadyExists")
                self.containers[container] = {}
                return Reply(201, b"", {"ETag": '"0x1"'})
            if request.query.get("comp") == "list" and request.method == "GET":
                return self._list(container, request.query.get("prefix", ""))
            return self._error(400, "UnsupportedHttpVerb")
        blobs = self.containers.get(container)
        if blobs is None:
            return self._error(404, "ContainerNotFound")
        existing = blobs.get(name)
        if_match = request.header("If-Match")
        if if_match and (existing is None or existing.etag != if_match):
            return self._error(412, "ConditionNotMet")
        if request.method == "PUT":
            if request.header("If-None-Match") == "*" and existing is not None:
                return self._error(409, "BlobAlreadyExists")
            blobs[name] = self._blob(request.body, request.header("x-ms-blob-content-type") or "")
            return Reply(201, b"", self._headers(blobs[name], with_type=False))
        if existing is None:
            return self._error(404, "BlobNotFound")
        if request.method == "DELETE":
            del blobs[name]
            return Reply(202)
        if request.method == "HEAD":
            return Reply(200, b"", {**self._headers(existing), "Content-Length": str(len(existing.data))})
        if request.method == "GET":
            headers = self._headers(existing)
            size = len(existing.data)
            if request.header("x-ms-range") and size:
                headers["Content-Range"] = f"bytes 0-{size - 1}/{size}"
                return Reply(206, existing.data, headers)
            return Reply(200, existing.data, headers)
        return self._error(405, "UnsupportedHttpVerb")

    def _list(self, container: str, prefix: str) -> Reply:
        """List Blobs in the service's XML (EnumerationResults), all in one page."""
        from xml.sax.saxutils import escape

        blobs = self.containers.get(container)
        if blobs is None:
            return self._error(404, "ContainerNotFound")
        items = "".join(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Last-Modified>{format_datetime(blob.modified, usegmt=True)}</Last-Modified>"
            f"<Etag>{escape(blob.etag)}</Etag><Content-Length>{len(blob.data)}</Content-Length>"
            f"<Content-Type>{escape(blob.content_type or 'application/octet-stream')}</Content-Type>"
            "<BlobType>BlockBlob</BlobType></Properties></Blob>"
            for name, blob in sorted(blobs.items())
            if name.startswith(prefix)
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="{STORAGE_URL}/" ContainerName="{escape(container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{items}</Blobs><NextMarker /></EnumerationResults>"
        )
        return Reply(200, body.encode(), {"Content-Type": "application/xml"})

    def _blob(self, data: bytes, content_type: str) -> _Blob:
        return _Blob(data, f'"0x8D{next(self._etags):012X}"', datetime.now(UTC), content_type)

    @staticmethod
    def _headers(blob: _Blob, with_type: bool = True) -> dict[str, str]:
        headers = {"ETag": blob.etag, "Last-Modified": format_datetime(blob.modified, usegmt=True)}
        if with_type:
            headers.update(
                {
                    "x-ms-blob-type": "BlockBlob",
                    "Content-Type": blob.content_type or "application/octet-stream",
                }
            )
        return headers

    @staticmethod
    def _error(status: int, code: str) -> Reply:
        body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{code}</Message></Error>'
        return Reply(status, body.encode(), {"x-ms-error-code": code, "Content-Type": "application/xml"})


# --- Event Grid -----------------------------------------------------------------------------------------------


class FakeEventGrid:
    """A custom topic: accepts a JSON array of events at /api/events."""

    def __init__(self) -> None:
        self.events: list[Json] = []

    def __call__(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != "/api/events":
            return _error(404, "NotFound", request.path)
        if not (request.header("Authorization") or "").startswith("Bearer "):
            return _error(401, "Unauthorized", "a bearer token is required")
        self.events.extend(request.json())
        return Reply(200)


# --- everything together --------------------------------------------------------------------------------------


AZURE_SETTINGS = {
    "MLOPS_BACKEND": "azure",
    "MLOPS_AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "MLOPS_AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
    "MLOPS_AZURE_WORKSPACE": WORKSPACE,
    "MLOPS_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "MLOPS_AZURE_COMPUTE": "cpu-cluster",
    "MLOPS_AZURE_DATASTORE": "mlopsdatasets",
    "MLOPS_AZURE_INFERENCE_DATASTORE": "mlopsinference",
    "MLOPS_AZURE_ENDPOINT": "mlops-endpoint",
    "MLOPS_STORAGE_ACCOUNT_URL": STORAGE_URL,
    "MLOPS_EVENTS_ENDPOINT": TOPIC_ENDPOINT,
    "MLOPS_STORAGE_TOPIC": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
    "MLOPS_WORKSPACE_TOPIC": WORKSPACE_ID,
    "MLOPS_CUSTOM_TOPIC": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.EventGrid/topics/evgt-mlops",
    "MLOPS_MODEL_NAME": "mlops-model",
}


class AzureWorld:
    """Fake Azure services behind one stub transport, and the real SDK clients and our adapters on it."""

    def __init__(self, **settings: str) -> None:
        from shared.config import Settings

        self.ml = FakeAzureML()
        self.storage = FakeBlobService()
        self.eventgrid = FakeEventGrid()
        self.transport = StubTransport(
            {
                "inference.ml.azure.com": self.ml,
                ARM: self.ml,
                STORAGE_HOST: self.storage,
                TOPIC_HOST: self.eventgrid,
            }
        )
        self.credential = FakeCredential()
        self.settings = Settings.from_env({**AZURE_SETTINGS, **settings})
        assert self.settings.azure is not None
        self.azure = self.settings.azure
        self.ml.add_endpoint(self.azure.endpoint)
        self.storage.containers.update({name: {} for name in self.settings.containers.all()})

    def ml_client(self) -> Any:
        from shared.adapters.azure.ml_client import MLClientProvider

        return MLClientProvider(self.azure, self.credential, transport=self.transport)

    def blob_store(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        from shared.adapters.azure.storage import AzureBlobStore

        service = BlobServiceClient(STORAGE_URL, credential=self.credential, transport=self.transport)
        return AzureBlobStore(service)

    def publisher(self) -> Any:
        # azure-eventgrid 4.22's public EventGridPublisherClient builds this very client for a basic topic
        # (same policies, same bearer-token auth) but drops its keyword arguments, `transport` among them.
        from azure.eventgrid._legacy import EventGridPublisherClient

        from shared.adapters.azure.events import EventGridPublisher

        return EventGridPublisher(
            EventGridPublisherClient(TOPIC_ENDPOINT, self.credential, transport=self.transport)
        )

    def jobs(self) -> Any:
        from shared.adapters.azure.jobs import AzureMLTrainingJobs

        return AzureMLTrainingJobs(self.ml_client(), self.blob_store(), self.settings)

    def registry(self) -> Any:
        from shared.adapters.azure.registry import AzureMLRegistry

        return AzureMLRegistry(self.ml_client(), self.blob_store(), self.settings.containers.datasets)

    def metrics(self) -> Any:
        from shared.adapters.azure.metrics import EndpointMetrics

        endpoint_id = f"{self.azure.workspace_id}/onlineEndpoints/{self.azure.endpoint}"
        return EndpointMetrics(self.credential, endpoint_id, transport=self.transport)

    def endpoints(self) -> Any:
        from shared.adapters.azure.endpoints import AzureMLEndpoints

        azure = self.azure
        return AzureMLEndpoints(
            self.ml_client(),
            azure.endpoint,
            azure.instance_type,
            azure.instance_count,
            metrics=self.metrics(),
            capture_datastore=azure.inference_datastore,
            transport=self.transport,
        )
