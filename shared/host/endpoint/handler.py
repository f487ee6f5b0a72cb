"""The router's HTTP request handler: the scoring URL and the admin API (`api.py` lists the routes)."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shared.host.endpoint.api import (
    ADMIN,
    CLIENT_REQUEST_ID_HEADER,
    DEPLOYMENT_HEADER,
    MAX_REQUEST_ID,
    REQUEST_ID_HEADER,
    Conflict,
    EndpointService,
    RouteError,
)

logger = logging.getLogger(__name__)

# Admin requests are a few hundred bytes; scoring bodies are passed on whole and limited by the scorer.
MAX_ADMIN_BODY_BYTES = 1024 * 1024


class NotFound(LookupError):
    """No such route or deployment (HTTP 404)."""


class Forbidden(Exception):
    """Not for this client (HTTP 403)."""


Answer = tuple[int, Any]


def make_handler(service: EndpointService) -> type[BaseHTTPRequestHandler]:
    class EndpointHandler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps client connections alive; every response therefore sends Content-Length.
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            parts = [unquote(part) for part in url.path.split("/") if part]
            try:
                # Read the body before anything can fail, so a refused request leaves the connection usable.
                body = self._read_body()
                if method == "POST" and parts == ["score"]:
                    self._score(body)
                    return
                if method == "GET" and not parts:
                    status, payload = 200, service.describe()
                elif parts[:1] == [ADMIN.strip("/")]:
                    # No authentication here, unlike ARM: the admin API answers this machine only, even
                    # when the scoring URL listens on every interface.
                    if not admin_allowed(self.client_address[0]):
                        raise Forbidden("the admin API answers loopback clients only")
                    status, payload = _admin(service, method, parts[1:], parse_qs(url.query), body)
                else:
                    raise NotFound(f"no route for {method} {url.path}")
            except RouteError as exc:
                self._send_json(exc.status, {"error": str(exc)}, exc.deployment)
            except Conflict as exc:
                self._send_json(409, {"error": str(exc)})
            except ValueError as exc:
                self._send_json(400, {"error": str(exc)})
            except NotFound as exc:
                self._send_json(404, {"error": str(exc)})
            except Forbidden as exc:
                self._send_json(403, {"error": str(exc)})
            except Exception as exc:  # the router keeps serving; the caller learns what broke
                logger.exception("endpoint request failed", extra={"method": method, "path": url.path})
                self._send_json(500, {"error": f"{type(exc).__name__}: {exc}"})
            else:
                self._send_json(status, payload)

        def _score(self, body: bytes) -> None:
            self._request_id = correlation_id(self.headers)
            scored = service.forward(
                body,
                self.headers.get("Content-Type", "application/json"),
                self.headers.get(DEPLOYMENT_HEADER) or None,
                self._request_id,
            )
            self._send(scored.status, scored.body, scored.content_type, scored.deployment)

        def _read_body(self) -> bytes:
            self._request_id = ""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError as exc:
                raise ValueError("invalid Content-Length") from exc
            return self.rfile.read(length) if length > 0 else b""

        def _send_json(self, status: int, payload: Any, deployment: str | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", deployment)

        def _send(self, status: int, body: bytes, content_type: str, deployment: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if deployment is not None:
                self.send_header(DEPLOYMENT_HEADER, deployment)
            if self._request_id:  # what the capture records: the id late labels name this request by
                self.send_header(REQUEST_ID_HEADER, self._request_id)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return EndpointHandler


def correlation_id(headers: Any) -> str:
    """The caller's own id for the request (`x-ms-client-request-id`, or `x-request-id`) when it is a sane
    one, else a new one: Azure ML's inference server keeps and echoes the same headers."""
    for name in (CLIENT_REQUEST_ID_HEADER, REQUEST_ID_HEADER):
        given = (headers.get(name) or "").strip()
        if 0 < len(given) <= MAX_REQUEST_ID and given.isprintable():
            return given
    return uuid.uuid4().hex


def admin_allowed(client_host: str) -> bool:
    return ipaddress.ip_address(client_host).is_loopback


def _admin(
    service: EndpointService, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
) -> Answer:
    match method, parts:
        case "GET", ["deployments"]:
            return 200, {"deployments": service.deployments()}
        case "GET", ["deployments", name]:
            found = service.deployment(name)
            if found is None:
                raise NotFound(f"no deployment {name!r}")
            return 200, found
        case "PUT", ["deployments", name]:
            request = _json_object(body)
            model, source = request.get("model"), request.get("source")
            if not isinstance(model, str) or not isinstance(source, str):
                raise ValueError('a deployment needs "model" and "source", both strings')
            service.begin_deployment(name, model, source)
            return 202, service.deployment(name)
        case "DELETE", ["deployments", name]:
            return 200, {"deleted": service.delete_deployment(name)}
        case "GET", ["traffic"]:
            return 200, {"traffic": service.traffic()}
        case "PUT", ["traffic"]:
            return 200, {"traffic": service.set_traffic(_mapping(body, "traffic"))}
        case "GET", ["mirror-traffic"]:
            return 200, {"mirror_traffic": service.mirror_traffic()}
        case "PUT", ["mirror-traffic"]:
            return 200, {"mirror_traffic": service.set_mirror_traffic(_mapping(body, "mirror_traffic"))}
        case "GET", ["stats", name]:
            return 200, service.stats(name, _since_seconds(query))
    raise NotFound(f"no route for {method} {ADMIN}/{'/'.join(parts)}")


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_ADMIN_BODY_BYTES:
        raise ValueError(f"body larger than {MAX_ADMIN_BODY_BYTES} bytes")
    try:
        request = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise ValueError("body must be a JSON object")
    return request


def _mapping(body: bytes, key: str) -> dict[str, Any]:
    value = _json_object(body).get(key)
    if not isinstance(value, dict):
        raise ValueError(f'body must be {{"{key}": {{"<deployment>": <percent>, ...}}}}')
    return value


def _since_seconds(query: dict[str, list[str]]) -> float:
    try:
        since = float(query["since_seconds"][0])
    except (KeyError, IndexError, ValueError):
        raise ValueError("since_seconds (a number of seconds) is required") from None
    if not math.isfinite(since):
        raise ValueError(f"since_seconds must be finite, got {since!r}")
    return since
