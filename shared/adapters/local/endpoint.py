"""The `Endpoints` port over the local endpoint's router (`shared.host.endpoint`), as the Azure adapter is
over ARM: every call is one HTTP request to the router's admin API, and `invoke` posts to its scoring URL
as any client of the endpoint does. The router owns the deployments, the traffic and the statistics, so
every process that builds this client (the local host, a CLI, a test) sees the same endpoint.

What the router refuses as Azure would (invalid traffic or mirror setting, a deployment name Azure does not
accept, deleting a deployment that takes traffic) comes back as 400 or 409 and is raised as the ValueError
the port documents; a failed scoring request raises EndpointError with the status the endpoint answered.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from shared.domain import capture
from shared.ports import Deployment, ModelVersion

log = logging.getLogger(__name__)

DEPLOYMENT_HEADER = "azureml-model-deployment"
ADMIN_TIMEOUT_SECONDS = 30.0  # a delete waits for the scoring process to stop (a grace period at most)
SCORE_TIMEOUT_SECONDS = 90.0  # longer than the router's own wait for a deployment, so it answers first


class EndpointError(Exception):
    """The local endpoint could not do what was asked: a scoring request was not answered with 200 (`status`
    is what the endpoint answered, `body` its text, `deployment` the one that answered), or the router
    itself did not answer (`status` None)."""

    def __init__(
        self, message: str, status: int | None = None, body: str = "", deployment: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.deployment = deployment


class LocalEndpoint:
    def __init__(self, url: str) -> None:
        """`url` is the router's, `settings.local.endpoint_url` (e.g. http://127.0.0.1:7072)."""
        self.url = url.rstrip("/")

    def begin_deployment(self, name: str, model: ModelVersion) -> None:
        self._admin("PUT", f"/deployments/{_segment(name)}", {"model": model.id, "source": model.source})

    def deployment(self, name: str) -> Deployment | None:
        response = self._request(
            "GET", f"{self.url}/admin/deployments/{_segment(name)}", ADMIN_TIMEOUT_SECONDS
        )
        if response.status_code == 404:
            return None
        return _deployment(self._ok(response))

    def deployments(self) -> list[Deployment]:
        return [_deployment(d) for d in self._admin("GET", "/deployments")["deployments"]]

    def traffic(self) -> dict[str, int]:
        return dict(self._admin("GET", "/traffic")["traffic"])

    def set_traffic(self, traffic: dict[str, int]) -> None:
        self._admin("PUT", "/traffic", {"traffic": traffic})

    def mirror_traffic(self) -> dict[str, int]:
        return dict(self._admin("GET", "/mirror-traffic")["mirror_traffic"])

    def set_mirror_traffic(self, mirror: dict[str, int]) -> None:
        self._admin("PUT", "/mirror-traffic", {"mirror_traffic": mirror})

    def delete_deployment(self, name: str) -> None:
        self._admin("DELETE", f"/deployments/{_segment(name)}")

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        """What the router counted for `name` (answers clients saw; "mirror": copies whose answers were
        discarded), to the second and at most an hour back; a router restart starts the count again."""
        return dict(self._admin("GET", f"/stats/{_segment(name)}?since_seconds={float(since_seconds)!r}"))

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any:
        try:
            # NaN is not JSON; Azure's front end would refuse it, so refuse it here rather than pass it on.
            body = json.dumps(payload, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise EndpointError(f"the payload is not valid JSON: {exc}", status=400) from exc
        headers = {"Content-Type": "application/json"}
        # the platform's own request: its capture is never counted as production traffic
        headers[capture.PROBE_HEADER] = capture.probe_id()
        if deployment is not None:
            headers[DEPLOYMENT_HEADER] = deployment
        response = self._request(
            "POST", f"{self.url}/score", SCORE_TIMEOUT_SECONDS, data=body, headers=headers
        )
        if response.status_code != 200:
            answered_by = response.headers.get(DEPLOYMENT_HEADER)
            text = response.text
            who = f"deployment {answered_by!r}" if answered_by else f"endpoint {self.url}"
            raise EndpointError(
                f"{who} answered {response.status_code}: {_error_text(text)[:500]}",
                status=response.status_code,
                body=text,
                deployment=answered_by,
            )
        return response.json()

    # ----- internals -----

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None
        if body is not None:
            try:
                data = json.dumps(body, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:  # a share that is not even JSON is refused like a bad one
                raise ValueError(f"not a valid request for the endpoint: {exc}") from exc
        response = self._request(
            method,
            f"{self.url}/admin{path}",
            ADMIN_TIMEOUT_SECONDS,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        return self._ok(response)

    def _ok(self, response: Any) -> Any:
        if response.status_code in (400, 409):
            raise ValueError(_error_text(response.text))
        if not 200 <= response.status_code < 300:
            raise EndpointError(
                f"the endpoint's router answered {response.status_code}: {_error_text(response.text)[:500]}",
                status=response.status_code,
                body=response.text,
            )
        return response.json()

    def _request(self, method: str, url: str, timeout: float, **kwargs: Any) -> Any:
        import requests

        # Loopback only: proxy settings from the environment must not capture these calls.
        with requests.Session() as session:
            session.trust_env = False
            try:
                return session.request(method, url, timeout=timeout, **kwargs)
            except requests.RequestException as exc:
                raise EndpointError(
                    f"the local endpoint's router at {self.url} did not answer ({type(exc).__name__}: {exc}); "
                    "it runs with `mlops up`"
                ) from exc


def _segment(name: str) -> str:
    return quote(name, safe="")


def _deployment(data: dict[str, Any]) -> Deployment:
    return Deployment(data["name"], data["model"], data["state"], data.get("detail", ""))


def _error_text(text: str) -> str:
    """The router's `{"error": ...}` message, or the text as it came."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return str(body["error"]) if isinstance(body, dict) and "error" in body else text
