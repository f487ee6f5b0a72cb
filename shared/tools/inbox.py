"""A webhook receiver on loopback for the demo: it records every notification and checks its signature.

It answers 200 to a POST whose `x-mlops-signature` is the HMAC of the body with the shared secret, and 401 to
anything else (as a receiver should), so the demo shows what a team's endpoint would get.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.domain.notifications import SIGNATURE_HEADER, verify

MAX_BODY = 1_000_000


@dataclass
class Inbox:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-inbox", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/mlops"

    def __enter__(self) -> Inbox:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def kinds(self) -> Counter[str]:
        with self._lock:
            return Counter(str(note.get("kind")) for note in self.received)

    def accept(self, body: bytes, signature: str) -> bool:
        if not verify(self.secret, body, signature):
            with self._lock:
                self.refused += 1
            return False
        try:
            note = json.loads(body)
        except ValueError:
            note = {"kind": "(not JSON)"}
        with self._lock:
            self.received.append(note if isinstance(note, dict) else {"kind": "(not an object)"})
        return True


def _handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(length)
            ok = inbox.accept(body, self.headers.get(SIGNATURE_HEADER, ""))
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # the demo prints its own summary
            return

    return Handler
