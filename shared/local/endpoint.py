"""The local stand-in for an Azure ML managed online endpoint.

Each deployment is a `shared.local.scoring` process on its own loopback port. The endpoint's state
(deployments, traffic) is a JSON file under `home`, so every process of the local host sees the same endpoint.
`EndpointServer` is the endpoint's one scoring URL: it routes each request as Azure does, by the
`azureml-model-deployment` header or else by traffic weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from shared.ports import Deployment, ModelVersion

try:
    import fcntl
except ImportError:  # Windows: the in-process lock still serializes threads; processes rely on os.replace.
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT_HEADER = "azureml-model-deployment"
LOG_TAIL_LINES = 20
TERMINATE_GRACE_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 1.0
SCORE_TIMEOUT_SECONDS = 60.0
# Azure's rule for endpoint and deployment names; enforcing it here keeps names that Azure would refuse from
# working locally, and keeps them safe as file names.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")

# One lock per state file for every LocalEndpoint object in this process; fcntl covers other processes.
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()
# Children spawned by this process, kept so their exit is reaped (no zombies that look alive) and read.
_children: dict[int, subprocess.Popen[bytes]] = {}

State = dict[str, Any]


class EndpointError(Exception):
    """A scoring request could not be answered: no deployment takes traffic, or the deployment failed it."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _validate_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: 3-32 characters, letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )


def _local_model_dir(source: str) -> Path:
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    # A one-letter "scheme" is a Windows drive (C:\...), not a URI.
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"local deployments need a folder or file:// URI for the model, not {source!r}")
    return Path(source)


def _free_port(taken: set[int]) -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in taken:
            return port
    raise RuntimeError("no free loopback port")


def _is_scoring_process(pid: int) -> bool:
    """Whether `pid` is still one of our scoring processes (not exited, not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            # The state letter follows the parenthesized command name, which may itself contain spaces.
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X") and b"shared.local.scoring" in cmdline
    if sys.platform.startswith("linux"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_code(pid: int) -> int | None:
    child = _children.get(pid)
    return child.poll() if child is not None else None


def _terminate(*pids: int) -> None:
    """SIGTERM, then SIGKILL after the grace period, to each scorer's whole session (it leads its own).

    All are signalled first and then awaited together, so stopping n deployments takes one grace period.
    """
    running = [pid for pid in pids if _is_scoring_process(pid)]
    for pid in running:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
    while time.monotonic() < deadline and any(_is_scoring_process(pid) for pid in running):
        time.sleep(0.05)
    for pid in running:
        if _is_scoring_process(pid):
            logger.warning("scoring process ignored SIGTERM, killing it", extra={"pid": pid})
            _signal_group(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            child = _children.get(pid)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=TERMINATE_GRACE_SECONDS)
    for pid in pids:
        _children.pop(pid, None)


def _signal_group(pid: int, sig: int) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _http(method: str, url: str, timeout: float, **kwargs: Any) -> Any:
    import requests

    # Loopback only: proxy settings from the environment must not capture these calls.
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, timeout=timeout, **kwargs)


def _health_pid(response: Any) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("pid") if isinstance(body, dict) else None


def _validate_traffic(traffic: dict[str, int], deployments: set[str]) -> dict[str, int]:
    unknown = sorted(set(traffic) - deployments)
    if unknown:
        raise ValueError(f"traffic names unknown deployments: {unknown}")
    for name, pct in traffic.items():
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise ValueError(f"traffic for {name!r} must be an int from 0 to 100, got {pct!r}")
    total = sum(traffic.values())
    if total not in (0, 100):
        raise ValueError(f"traffic must sum to 0 or 100, got {total}: {traffic}")
    return {name: traffic.get(name, 0) for name in sorted(deployments)}


class LocalEndpoint:
    """An `Endpoints` port whose deployments are local scoring processes."""

    def __init__(self, name: str, home: Path) -> None:
        _validate_name("endpoint", name)
        self.name = name
        self.home = Path(home)
        self._dir = self.home / "endpoints"
        self._state_path = self._dir / f"{name}.json"
        self._lock_path = self._dir / f"{name}.lock"
        self._log_dir = self._dir / "logs"
        with _locks_guard:
            self._lock = _locks.setdefault(self._state_path.resolve(), threading.Lock())

    # ----- state -----

    def _read(self) -> State:
        try:
            state = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            state = {}
        state.setdefault("deployments", {})
        state.setdefault("traffic", {})
        return state

    def _write(self, state: State) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=f".{self.name}.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._state_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[State]:
        """Read-modify-write of the state; the changes made to the yielded dict are saved on exit."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self._lock_path, "a") as lock_file:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            state = self._read()
            yield state
            self._write(state)

    # ----- the Endpoints port -----

    def begin_deployment(self, name: str, model: ModelVersion) -> None:
        _validate_name("deployment", name)
        model_dir = _local_model_dir(model.source)
        with self._locked() as state:
            existing = state["deployments"].get(name)
            if existing is not None and _is_scoring_process(existing["pid"]):
                if existing["model"] != model.id:
                    logger.warning(
                        "deployment exists with another model; keeping it",
                        extra={"deployment": name, "model": existing["model"], "requested": model.id},
                    )
                return
            taken = {d["port"] for d in state["deployments"].values()}
            port = _free_port(taken)
            pid = self._spawn(name, model_dir, port)
            state["deployments"][name] = {
                "model": model.id,
                "model_dir": str(model_dir),
                "port": port,
                "pid": pid,
            }
            state["traffic"].setdefault(name, 0)
        logger.info(
            "deployment starting",
            extra={"endpoint": self.name, "deployment": name, "model": model.id, "port": port, "pid": pid},
        )

    def deployment(self, name: str) -> Deployment | None:
        entry = self._read()["deployments"].get(name)
        return None if entry is None else self._observe(name, entry)

    def deployments(self) -> list[Deployment]:
        return [self._observe(name, entry) for name, entry in sorted(self._read()["deployments"].items())]

    def traffic(self) -> dict[str, int]:
        state = self._read()
        return {name: int(state["traffic"].get(name, 0)) for name in sorted(state["deployments"])}

    def set_traffic(self, traffic: dict[str, int]) -> None:
        with self._locked() as state:
            state["traffic"] = _validate_traffic(dict(traffic), set(state["deployments"]))
        logger.info("traffic set", extra={"endpoint": self.name, "traffic": traffic})

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any:
        name, port = self.route(deployment)
        try:
            response = _http("POST", f"http://127.0.0.1:{port}/score", SCORE_TIMEOUT_SECONDS, json=payload)
        except OSError as exc:  # requests' ConnectionError and Timeout derive from OSError
            raise EndpointError(f"deployment {name!r} is not answering: {exc}") from exc
        if response.status_code != 200:
            raise EndpointError(
                f"deployment {name!r} answered {response.status_code}: {response.text[:500]}",
                status=response.status_code,
                body=response.text,
            )
        return response.json()

    def route(self, deployment: str | None = None) -> tuple[str, int]:
        """The deployment (name, port) to score with: the one named, else one drawn by traffic weight."""
        state = self._read()
        if deployment is not None:
            entry = state["deployments"].get(deployment)
            if entry is None:
                raise EndpointError(f"endpoint {self.name!r} has no deployment {deployment!r}", status=404)
            return deployment, entry["port"]
        weighted = [(n, w) for n, w in state["traffic"].items() if w > 0 and n in state["deployments"]]
        if not weighted:
            raise EndpointError(
                f"endpoint {self.name!r} has no deployment with traffic; set traffic or name a deployment "
                f"with the {DEPLOYMENT_HEADER} header",
                status=404,
            )
        names, weights = zip(*weighted, strict=True)
        chosen = random.choices(names, weights=weights)[0]
        return chosen, state["deployments"][chosen]["port"]

    def delete_deployment(self, name: str) -> None:
        with self._locked() as state:
            entry = state["deployments"].get(name)
            if entry is None:
                return
            # Azure refuses too: deleting a deployment that takes traffic would break the traffic invariant.
            if state["traffic"].get(name, 0) > 0:
                raise ValueError(
                    f"deployment {name!r} takes {state['traffic'][name]} % of the traffic; move it first"
                )
            _terminate(entry["pid"])
            del state["deployments"][name]
            state["traffic"].pop(name, None)
        logger.info("deployment deleted", extra={"endpoint": self.name, "deployment": name})

    # ----- local lifecycle -----

    def stop_all(self) -> None:
        """Stop every scoring process; deployments and traffic stay (reported Failed) until `resume`."""
        with self._locked() as state:
            entries = state["deployments"].values()
            _terminate(*(entry["pid"] for entry in entries))
            for entry in entries:
                entry["stopped"] = True
        logger.info("endpoint stopped", extra={"endpoint": self.name})

    def resume(self) -> None:
        """Restart the scoring process of every deployment whose process is gone (after `stop_all`)."""
        with self._locked() as state:
            for name, entry in state["deployments"].items():
                if _is_scoring_process(entry["pid"]):
                    continue
                entry["port"] = _free_port({d["port"] for d in state["deployments"].values()})
                entry["pid"] = self._spawn(name, Path(entry["model_dir"]), entry["port"])
                entry.pop("stopped", None)

    def scoring_uri(self, deployment: str) -> str | None:
        entry = self._read()["deployments"].get(deployment)
        return None if entry is None else f"http://127.0.0.1:{entry['port']}/score"

    def log_path(self, deployment: str) -> Path:
        return self._log_dir / f"{self.name}-{deployment}.log"

    # ----- internals -----

    def _spawn(self, name: str, model_dir: Path, port: int) -> int:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "wb") as log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.local.scoring",
                    "--model",
                    str(model_dir),
                    "--port",
                    str(port),
                ],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: the host's Ctrl-C does not reach it, and killpg stops all it started.
                start_new_session=True,
            )
        _children[child.pid] = child
        return child.pid

    def _observe(self, name: str, entry: dict[str, Any]) -> Deployment:
        pid, port, model = entry["pid"], entry["port"], entry["model"]
        if not _is_scoring_process(pid):
            if entry.get("stopped"):
                return Deployment(
                    name, model, "Failed", "scoring process stopped by stop_all; resume() restarts it"
                )
            code = _exit_code(pid)
            reason = "scoring process exited" + (f" with code {code}" if code is not None else "")
            tail = self._log_tail(name)
            last = tail.rsplit("\n", 1)[-1]
            detail = f"{reason}: {last}\n--- last lines of {self.log_path(name)} ---\n{tail}"
            return Deployment(name, model, "Failed", detail)
        try:
            response = _http("GET", f"http://127.0.0.1:{port}/health", HEALTH_TIMEOUT_SECONDS)
        except OSError:
            return Deployment(name, model, "Creating", f"loading the model (pid {pid})")
        # Another program answering on the port must not pass for our scorer.
        if response.status_code == 200 and _health_pid(response) == pid:
            return Deployment(name, model, "Succeeded", f"http://127.0.0.1:{port}/score")
        return Deployment(name, model, "Creating", f"/health answered {response.status_code} (pid {pid})")

    def _log_tail(self, name: str) -> str:
        try:
            lines = [
                line for line in self.log_path(name).read_text(errors="replace").splitlines() if line.strip()
            ]
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


class EndpointServer:
    """The endpoint's scoring URL (`POST /score`), routing like Azure's endpoint front end."""

    def __init__(self, endpoint: LocalEndpoint, host: str = "127.0.0.1", port: int = 7072) -> None:
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer((self.host, self.port), _router_handler(self.endpoint))
        # Port 0 asks the OS for one; report the one we got.
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"endpoint-{self.endpoint.name}", daemon=True
        )
        self._thread.start()
        logger.info("endpoint serving", extra={"endpoint": self.endpoint.name, "url": f"{self.url}/score"})

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None


def _router_handler(endpoint: LocalEndpoint) -> type[BaseHTTPRequestHandler]:
    class RouterHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/":
                self._send_json(404, {"error": f"no route for GET {self.path}"})
                return
            self._send_json(
                200,
                {
                    "name": endpoint.name,
                    "traffic": endpoint.traffic(),
                    "deployments": [asdict(d) for d in endpoint.deployments()],
                },
            )

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/score":
                self._send_json(404, {"error": f"no route for POST {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send_json(400, {"error": "invalid Content-Length"})
                return
            body = self.rfile.read(length) if length > 0 else b""
            try:
                name, port = endpoint.route(self.headers.get(DEPLOYMENT_HEADER) or None)
            except EndpointError as exc:
                self._send_json(exc.status or 404, {"error": str(exc)})
                return
            try:
                response = _http(
                    "POST",
                    f"http://127.0.0.1:{port}/score",
                    SCORE_TIMEOUT_SECONDS,
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
            except OSError as exc:
                self._send_json(502, {"error": f"deployment {name!r} is not answering: {exc}"}, name)
                return
            self._send(
                response.status_code,
                response.content,
                response.headers.get("Content-Type", "application/json"),
                name,
            )

        def _send_json(self, status: int, payload: Any, deployment: str | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", deployment)

        def _send(self, status: int, body: bytes, content_type: str, deployment: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if deployment is not None:
                self.send_header(DEPLOYMENT_HEADER, deployment)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return RouterHandler


__all__ = ["EndpointError", "EndpointServer", "LocalEndpoint"]
