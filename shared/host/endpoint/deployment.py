"""One deployment of the router: its scoring process, port and last health check, and the state it reports."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.host.endpoint.health import Health, probe
from shared.host.endpoint.processes import ScoringProcess, log_tail
from shared.ports import Deployment


@dataclass
class LocalDeployment:
    name: str
    model: str
    model_dir: Path
    port: int
    process: ScoringProcess
    ready: bool = False  # passed a health check once: failing one later means Failed, not still Creating
    health: Health | None = None

    def unhealthy(self, probe_now: bool = False) -> str | None:
        """Why the deployment must not get traffic now, or None. A process check on every call (cheap), and
        its `/health` answer from the cache when fresh (else, or with `probe_now`, a probe now)."""
        process = self.process
        if not process.running():
            return self._exited()
        cached = self.health
        if not probe_now and cached is not None and cached.fresh(process.pid, self.port):
            return cached.error
        checked = probe(process.pid, self.port)
        self.health = checked
        if checked.error is None:
            self.ready = True
        return checked.error

    def mark(self, error: str) -> None:
        """Record a failure seen by a request: unhealthy until the next check says otherwise."""
        self.health = Health(self.process.pid, self.port, error, time.monotonic())

    def observe(self) -> Deployment:
        """Creating while the model loads, Succeeded once `/health` answers, Failed when the process exited
        (with its exit code and last log lines) or stopped answering after it was ready."""
        name, model, process = self.name, self.model, self.process
        if not process.running():
            tail = log_tail(process.log_path)
            last = tail.rsplit("\n", 1)[-1]
            detail = f"{self._exited()}: {last}\n--- last lines of {process.log_path} ---\n{tail}"
            return Deployment(name, model, "Failed", detail)
        # While it loads, a failed check is stale as soon as the model is up: look again rather than wait.
        error = self.unhealthy(probe_now=not self.ready)
        if error is None:
            return Deployment(name, model, "Succeeded", f"http://127.0.0.1:{self.port}/score")
        if self.ready:
            detail = f"scoring process (pid {process.pid}) runs but fails its health check: {error}"
            return Deployment(name, model, "Failed", detail)
        return Deployment(name, model, "Creating", f"loading the model (pid {process.pid}): {error}")

    def describe(self) -> dict[str, Any]:
        """What the admin API answers: the port's view of the deployment, plus its process's pid and port."""
        return {**asdict(self.observe()), "pid": self.process.pid, "port": self.port}

    def persisted(self, running: bool) -> dict[str, Any]:
        """Its entry in the state file; the pid and start time only while its process runs (for a router
        that has to clean up after one that died)."""
        entry: dict[str, Any] = {"model": self.model, "model_dir": str(self.model_dir), "port": self.port}
        if running:
            entry |= {"pid": self.process.pid, "create_time": self.process.create_time}
        return entry

    def _exited(self) -> str:
        code = self.process.exit_code()
        return "scoring process exited" + (f" with code {code}" if code is not None else "")
