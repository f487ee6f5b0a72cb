"""Notifications to a real HTTP receiver on loopback, through the real handler and the `requests` adapter: it
answers 500 first and 200 after, checks the signature as a receiver would, and a slow one times out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.webhooks import RequestsWebhooks
from shared.domain.messages import Envelope
from shared.domain.notifications import SIGNATURE_HEADER, verify
from shared.handlers.notify import on_notify
from shared.state import keys
from shared.state.records import DeliveryStatus
from tests.builders import actions
from tests.fakes import make_deps

pytestmark = pytest.mark.integration
SECRET = "receiver-shares-this"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[int] = []
        self.delay = 0.0
        self.got: list[tuple[bytes, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.got.append((body, {k.lower(): v for k, v in self.headers.items()}))
        time.sleep(self.server.delay)
        status = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _notify(receiver: Receiver, **settings: str):
    deps = make_deps(
        MLOPS_NOTIFY_URLS=receiver.url,
        MLOPS_NOTIFY_SECRET=SECRET,
        MLOPS_NOTIFY_PAUSE_SECONDS="0.05",
        **settings,
    )
    deps.webhooks = RequestsWebhooks()  # type: ignore[assignment]  # the real adapter over real HTTP
    envelope = Envelope(
        id="mlops-model-v2:promoted",
        event_type="MLOps.ModelPromoted",
        topic=deps.settings.topics.custom,
        subject="releases/mlops-model-v2",
        time=deps.clock(),
        data={"releaseId": "mlops-model-v2", "modelName": "mlops-model", "modelVersion": "2"},
    )
    on_notify(envelope, deps)
    return deps


def test_a_receiver_that_fails_first_gets_one_signed_notification(receiver: Receiver) -> None:
    receiver.answers = [500]
    deps = _notify(receiver)

    assert len(receiver.got) == 2  # the 500, then the one it took
    body, headers = receiver.got[-1]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert json.loads(body)["kind"] == "promoted"
    [stored] = deps.state.list(keys.DELIVERIES)
    assert stored.record.status is DeliveryStatus.DELIVERED and stored.record.calls == 2
    assert len(actions(deps, "notify.delivered")) == 1


def test_a_slow_receiver_is_left_to_the_tick_within_the_timeout(receiver: Receiver) -> None:
    receiver.delay = 1.5
    started = time.monotonic()
    deps = _notify(receiver, MLOPS_NOTIFY_TIMEOUT_SECONDS="0.3", MLOPS_NOTIFY_ATTEMPTS="2")
    took = time.monotonic() - started

    assert took < 1.5  # two calls of 0.3 s and a pause, not the receiver's 1.5 s each
    [stored] = deps.state.list(keys.DELIVERIES)
    assert stored.record.status is DeliveryStatus.PENDING
    assert "Timeout" in stored.record.last_error
