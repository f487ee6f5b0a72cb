"""The router's HTTP interface, shared by the router and its request handler: the routes, the header, the
errors and the statuses they become.

    GET    /                               the endpoint: name, traffic, mirror traffic, deployments
    POST   /score                          score, routed by the azureml-model-deployment header or by weight;
                                           the answer's x-request-id is the id its capture records
    GET    /admin/deployments              every deployment (with its process's pid and port)
    GET    /admin/deployments/<name>       one; 404 if unknown
    PUT    /admin/deployments/<name>       begin it: {"model": "<name>:<version>", "source": "<folder>"}
    DELETE /admin/deployments/<name>       stop and forget it; 409 while it takes traffic
    GET    /admin/traffic                  {"traffic": {...}}
    PUT    /admin/traffic                  {"traffic": {...}}; 400 if Azure would refuse it
    GET    /admin/mirror-traffic           {"mirror_traffic": {...}}
    PUT    /admin/mirror-traffic           {"mirror_traffic": {...}}; 400 if Azure would refuse it
    GET    /admin/stats/<name>?since_seconds=N   what the deployment answered in the last N seconds

Errors answer `{"error": "<message>"}`: 400 a request Azure refuses (ValueError), 409 one the endpoint's
state refuses (Conflict), 404 unknown, 502/503/404 from routing (RouteError), 500 anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

DEPLOYMENT_HEADER = "azureml-model-deployment"
REQUEST_ID_HEADER = "x-request-id"  # every scoring answer carries the id its capture records
CLIENT_REQUEST_ID_HEADER = "x-ms-client-request-id"  # a caller's own id for the request, kept if sane
MAX_REQUEST_ID = 100  # Azure ML's inference server refuses longer request ids
ADMIN = "/admin"


class RouteError(Exception):
    """A scoring request cannot be answered: no (healthy) deployment takes it, or the deployment did not
    answer. `status` is what the endpoint answers (404, 503, 502), `deployment` the one that failed it."""

    def __init__(self, message: str, status: int, deployment: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.deployment = deployment


class Conflict(ValueError):
    """Refused because of the endpoint's current state (a deployment that takes traffic), not the request's
    form: HTTP 409 rather than 400. Still a ValueError, as the port documents."""


@dataclass(frozen=True)
class Scored:
    """A deployment's answer to one request, passed through unchanged (status, body and content type)."""

    deployment: str
    status: int
    body: bytes
    content_type: str


class EndpointService(Protocol):
    """What the handler serves; the router implements it."""

    def describe(self) -> dict[str, Any]: ...

    def forward(
        self, body: bytes, content_type: str, deployment: str | None = None, request_id: str = ""
    ) -> Scored: ...

    def begin_deployment(self, name: str, model: str, source: str) -> None: ...

    def deployment(self, name: str) -> dict[str, Any] | None: ...

    def deployments(self) -> list[dict[str, Any]]: ...

    def delete_deployment(self, name: str) -> bool: ...

    def traffic(self) -> dict[str, int]: ...

    def set_traffic(self, traffic: dict[str, int]) -> dict[str, int]: ...

    def mirror_traffic(self) -> dict[str, int]: ...

    def set_mirror_traffic(self, mirror: dict[str, int]) -> dict[str, int]: ...

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]: ...
