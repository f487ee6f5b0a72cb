"""Health of the scoring processes: one `/health` probe, and the router's monitor thread that repeats it.

A routing decision trusts a result up to `CACHE_SECONDS` old. The monitor refreshes every result each
`INTERVAL_SECONDS` (plus up to `TIMEOUT_SECONDS` for a probe that hangs), so while it runs requests never
wait for a check; a result older than that (the monitor is behind) is probed again on the spot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0
INTERVAL_SECONDS = 1.0
CACHE_SECONDS = INTERVAL_SECONDS + TIMEOUT_SECONDS + 1.0


@dataclass(frozen=True)
class Health:
    pid: int
    port: int
    error: str | None  # None: healthy
    checked: float  # time.monotonic()

    def fresh(self, pid: int, port: int) -> bool:
        return self.pid == pid and self.port == port and time.monotonic() - self.checked < CACHE_SECONDS


def loopback(method: str, url: str, timeout: float, **kwargs: Any) -> Any:
    """One HTTP request on loopback (to a scoring process); proxy settings from the environment must not
    capture it."""
    import requests

    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, timeout=timeout, **kwargs)


def probe(pid: int, port: int) -> Health:
    """GET /health on the port now: healthy only if it answers 200 with the pid we started there."""
    try:
        response = loopback("GET", f"http://127.0.0.1:{port}/health", TIMEOUT_SECONDS)
    except OSError as exc:  # requests' ConnectionError and Timeout derive from OSError
        error: str | None = f"/health on port {port} not answering: {type(exc).__name__}"
    else:
        # Another program answering on the port must not pass for our scorer.
        if response.status_code != 200:
            error = f"/health answered {response.status_code}"
        elif _pid_of(response) != pid:
            error = f"port {port} is answered by another process, not pid {pid}"
        else:
            error = None
    return Health(pid, port, error, time.monotonic())


def _pid_of(response: Any) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("pid") if isinstance(body, dict) else None


class HealthMonitor:
    """Calls `check` every `interval` seconds on its own thread, from `start` until `stop`."""

    def __init__(self, name: str, check: Callable[[], None], interval: float = INTERVAL_SECONDS) -> None:
        self._name = name
        self._check = check
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-health", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self._check()
            except Exception:  # one failed round must not end the monitor
                logger.exception("endpoint health check failed", extra={"endpoint": self._name})
