"""The local host's HTTP face, with the URLs `func start` and Event Grid use:

- POST /runtime/webhooks/eventgrid?functionName=NAME   Event Grid webhook (aeg-event-type header)
- POST /runtime/topics/{storage|workspace|mlops}/api/events   topic ingress (aeg-sas-key header)
- POST /admin/functions/NAME   run a non-HTTP function now (as the Functions admin API)
- GET  /admin/host/status, /admin/invocations   host state and the invocation log
- GET  /admin/deadletters, POST /admin/deadletters/{id}/replay   events that exhausted their attempts
- ANY  /api/...   HTTP triggers
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import azure.functions as func

from shared.host.delivery import Dispatcher
from shared.host.functions_host import FunctionHost, UndecodableEvent, decode_event
from shared.host.timers import TimerScheduler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's default maxRequestBodySize

# Told of each event the host refuses before any function runs: (where it was sent, event id, reason).
RefusedEvent = Callable[[str, str, str], None]


class HostServer:
    def __init__(
        self,
        host: FunctionHost,
        dispatcher: Dispatcher,
        timers: TimerScheduler,
        topics: dict[str, str],
        key: str,
        address: tuple[str, int],
        function_key: str = "",
        on_refused: Callable[[str, str], None] | None = None,
        on_refused_event: RefusedEvent | None = None,
    ) -> None:
        self.host = host
        self.function_key = function_key
        self.on_refused = on_refused
        self.on_refused_event = on_refused_event
        self.dispatcher = dispatcher
        self.timers = timers
        self.topics = topics
        self.key = key
        self._routes = [
            (_route_pattern(str(f.binding.get("route") or f.name)), f) for f in host.of_trigger("httpTrigger")
        ]
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._server = ThreadingHTTPServer(address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="host-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def match_http(self, path: str, method: str) -> tuple[Any, dict[str, str]] | None:
        for pattern, function in self._routes:
            match = pattern.fullmatch(path)
            if match:
                methods = [str(getattr(m, "value", m)).upper() for m in function.binding.get("methods") or []]
                if methods and method not in methods:
                    continue
                return function, match.groupdict()
        return None


def _route_pattern(route: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", route.strip("/"))
    regex = "".join(
        f"(?P<{p[1:-1].split(':')[0]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(regex, re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    server_state: HostServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        state = self.server_state
        body = self._body()
        if body is None:
            return
        try:
            if url.path == "/runtime/webhooks/eventgrid" and method == "POST":
                self._webhook(parse_qs(url.query).get("functionName", [""])[0], body)
            elif (
                topic := re.fullmatch(r"/runtime/topics/([^/]+)/api/events", url.path)
            ) and method == "POST":
                self._topic(topic[1], body)
            elif (admin := re.fullmatch(r"/admin/functions/([^/]+)", url.path)) and method == "POST":
                self._admin_invoke(admin[1], parse_qs(url.query))
            elif url.path == "/admin/host/status":
                self._json(
                    200,
                    {
                        "state": "Running",
                        "functions": sorted(state.host.functions),
                        "timers": state.timers.schedules,
                        "pending_deliveries": state.dispatcher.pending(),
                    },
                )
            elif url.path == "/admin/deadletters" and method == "GET":
                self._json(200, state.dispatcher.dead_letters())
            elif (letter := re.fullmatch(r"/admin/deadletters/(.+)/replay", url.path)) and method == "POST":
                found = state.dispatcher.replay(letter[1])
                self._json(202 if found else 404, {"replayed": found, "id": letter[1]})
            elif url.path == "/admin/invocations":
                self._json(200, [vars(i) for i in list(state.host.invocations)])
            elif url.path.startswith("/api/"):
                self._http_trigger(method, url, body)
            else:
                self._json(404, {"error": f"no route for {method} {url.path}"})
        except Exception as error:
            log.exception("request failed")
            self._json(500, {"error": f"{type(error).__name__}: {error}"})

    def _body(self) -> bytes | None:
        """The request's body; None after answering 400 or 413 for a length that is no length or too long."""
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            self.close_connection = True  # the body's end is unknown: the connection cannot be reused
            self._json(400, {"error": f"Content-Length {length[:40]!r} is not a number of bytes"})
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": f"the body is over {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(int(length))

    def _webhook(self, function: str, body: bytes) -> None:
        """Event Grid's webhook contract: validation handshake, then an array of events to run one by one."""
        state = self.server_state
        if function not in state.host.functions:
            self._json(404, {"error": f"no function {function!r}"})
            return
        events = self._events(body)
        if events is None:
            return
        kind = self.headers.get("aeg-event-type", "Notification")
        if kind == "SubscriptionValidation":
            data = events[0].get("data")
            code = data.get("validationCode") if isinstance(data, dict) else None
            if not isinstance(code, str) or not code:
                self._json(400, {"error": "a validation event carries data.validationCode, a string"})
                return
            self._json(200, {"validationResponse": code})
            return
        if not self._decodable(function, events):
            return
        failures = []
        for event in events:
            try:
                state.host.invoke_event(function, event)
            except Exception as error:
                failures.append(f"{event.get('id')}: {type(error).__name__}: {error}")
        if failures:
            self._json(500, {"error": "function failed", "failures": failures})
        else:
            self._empty(200)

    def _topic(self, name: str, body: bytes) -> None:
        state = self.server_state
        if name not in state.topics:
            self._json(404, {"error": f"no topic {name!r}"})
            return
        if not hmac.compare_digest(self.headers.get("aeg-sas-key", ""), state.key):
            self._json(401, {"error": "missing or wrong aeg-sas-key"})
            return
        events = self._events(body)
        if events is None or not self._decodable(f"topic {name}", events):
            return
        for event in events:
            # Event Grid stamps the topic of a custom topic; system topics (here, local services) set their own.
            if "specversion" not in event:
                event["topic"] = event.get("topic") or state.topics[name]
        state.dispatcher.publish(name, events)
        self._empty(200)

    def _events(self, body: bytes) -> list[dict[str, Any]] | None:
        """The events of a request body; None after answering 400, which Event Grid does not retry."""
        try:
            events = json.loads(body)
        except ValueError as error:  # not JSON, not UTF-8, or a number past Python's limit on digits
            self._json(400, {"error": f"body is not JSON: {str(error)[:200]}"})
            return None
        except RecursionError:
            self._json(400, {"error": "body is nested too deeply to be events"})
            return None
        events = events if isinstance(events, list) else [events]
        if not events or not all(isinstance(event, dict) for event in events):
            self._json(
                400, {"error": "the body must be one event or a non-empty array of events (JSON objects)"}
            )
            return None
        return events

    def _decodable(self, where: str, events: list[dict[str, Any]]) -> bool:
        """Whether the worker can build every event's argument; if not, answer 400 (Event Grid does not retry it)
        and have each refusal recorded. Any other value in any field is the function's to accept or reject."""
        refused = []
        for event in events:
            try:
                decode_event(event)
            except UndecodableEvent as error:
                event_id = event.get("id")
                refused.append({"id": event_id, "reason": str(error)})
                if self.server_state.on_refused_event is not None:
                    self.server_state.on_refused_event(
                        where, event_id if isinstance(event_id, str) else "", str(error)
                    )
        if refused:
            self._json(400, {"error": "events the Functions worker cannot read", "refused": refused})
        return not refused

    def _admin_invoke(self, name: str, query: dict[str, list[str]]) -> None:
        state = self.server_state
        function = state.host.functions.get(name)
        if function is None or function.trigger != "timerTrigger":
            self._json(404, {"error": f"no timer function {name!r}"})
            return
        if query.get("wait", ["false"])[0].lower() == "true":
            state.timers.fire(name, wait=True)
            self._json(200, {"function": name, "invocation": vars(state.host.invocations[-1])})
            return
        threading.Thread(target=state.timers.fire, args=(name,), daemon=True).start()
        self._empty(202)

    def _http_trigger(self, method: str, url: Any, body: bytes) -> None:
        state = self.server_state
        found = state.match_http(url.path.removeprefix("/api/"), method)
        if found is None:
            self._json(404, {"error": f"no HTTP function for {method} {url.path}"})
            return
        function, route_params = found
        level = str(
            getattr(function.binding.get("authLevel"), "value", function.binding.get("authLevel") or "")
        )
        if level.lower() in ("function", "admin") and state.function_key:
            given = self.headers.get("x-functions-key") or parse_qs(url.query).get("code", [""])[0]
            if not hmac.compare_digest(given, state.function_key):
                # The Functions host refuses before the function runs; the refusal is still recorded.
                if state.on_refused is not None:
                    state.on_refused(function.name, url.path)
                self._json(401, {"error": "a function key is required (x-functions-key header or code)"})
                return
        request = func.HttpRequest(
            method=method,
            url=f"{state.url}{self.path}",
            headers=dict(self.headers.items()),
            params={k: v[0] for k, v in parse_qs(url.query).items()},
            route_params=route_params,
            body=body,
        )
        response = state.host.invoke_http(function.name, request)
        payload = response.get_body()
        self.send_response(response.status_code)
        content_type = response.mimetype or "application/json"
        if response.charset and content_type.startswith("text/"):
            content_type = f"{content_type}; charset={response.charset}"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        # the function's own headers (a Content-Security-Policy, a Retry-After), as the Functions host sends them
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, body: Any) -> None:
        payload = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
