"""The local stand-in for an Azure ML managed online endpoint.

Each deployment is a `shared.host.endpoint.scoring` process on its own loopback port. The endpoint's state
(deployments, traffic, mirror traffic) is a JSON file under `home`, so every process of the local host sees
the same endpoint. `EndpointServer` is the endpoint's one scoring URL: it routes each request as Azure does,
by the `azureml-model-deployment` header or else by traffic weights, and copies a share of the weight-routed
requests to the mirror deployment, whose answers nobody sees.

Routing never picks a deployment that failed its health check (process gone, or `/health` not answering): a
weighted pick that lands on one is drawn again among the healthy deployments with traffic, and with none
left the answer is 503. Every answer a deployment gives is counted (requests, errors, latency) in per-second
buckets that each process persists to `<endpoint>.stats.json` every second, so `stats()` works from any
process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from shared.adapters.endpoint_rules import validate_traffic
from shared.ports import Deployment, ModelVersion

try:
    import fcntl
except ImportError:  # Windows: the in-process lock still serializes threads; processes rely on os.replace.
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEPLOYMENT_HEADER = "azureml-model-deployment"
LOG_TAIL_LINES = 20
TERMINATE_GRACE_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 1.0
# The router's monitor re-checks every deployment this often; a routing decision trusts a result this old, so
# with the monitor running requests never wait for a health check, and without it (a CLI process calling
# `invoke`) one request in this many seconds pays a loopback round trip.
HEALTH_INTERVAL_SECONDS = 1.0
HEALTH_CACHE_SECONDS = 2.0
SCORE_TIMEOUT_SECONDS = 60.0
# Azure's limit: mirroring costs endpoint bandwidth, so at most half the traffic is copied, to one deployment.
MAX_MIRROR_PERCENT = 50
# Mirror copies are fire-and-forget; a slow mirror deployment fills this queue and further copies are dropped
# rather than piling up threads or delaying live answers.
MIRROR_WORKERS = 4
MIRROR_QUEUE_SIZE = 64
STATS_FLUSH_SECONDS = 1.0
STATS_RETENTION_SECONDS = 3600
# Latencies are kept as log-spaced histogram bins (2 % wide): buckets from several processes merge exactly,
# the file stays small under load, and a reported p95 is at most 2 % above the true one, never below.
_LATENCY_BASE_MS = 0.01
_LATENCY_RATIO = 1.02
# Azure's rule for endpoint and deployment names; enforcing it here keeps names that Azure would refuse from
# working locally, and keeps them safe as file names.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")

# Children spawned by this process, kept so their exit is reaped (no zombies that look alive) and read.
_children: dict[int, subprocess.Popen[bytes]] = {}

State = dict[str, Any]
# deployment -> "live" | "mirror" -> epoch second (a str, as in JSON) -> [requests, errors, {bin: count}]
StatsData = dict[str, dict[str, dict[str, list[Any]]]]


class EndpointError(Exception):
    """A scoring request could not be answered: no (healthy) deployment takes traffic, or the deployment
    failed it. `status` is the HTTP status the endpoint answers with, `deployment` the one that failed it."""

    def __init__(
        self, message: str, status: int | None = None, body: str = "", deployment: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.deployment = deployment


@dataclass(frozen=True)
class Scored:
    """A deployment's answer to one request, passed through unchanged (status, body and content type)."""

    deployment: str
    status: int
    body: bytes
    content_type: str


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
        return state not in ("Z", "X") and b"shared.host.endpoint.scoring" in cmdline
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


def _validate_mirror(mirror: dict[str, int], state: State) -> dict[str, int]:
    """Azure's rules: one deployment at most, 0-50 %, and never one that takes live traffic."""
    unknown = sorted(set(mirror) - set(state["deployments"]))
    if unknown:
        raise ValueError(f"mirror traffic names unknown deployments: {unknown}")
    for name, pct in mirror.items():
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= MAX_MIRROR_PERCENT:
            raise ValueError(
                f"mirror traffic for {name!r} must be an int from 0 to {MAX_MIRROR_PERCENT}, got {pct!r}"
            )
    mirrored = {name: pct for name, pct in mirror.items() if pct > 0}
    if len(mirrored) > 1:
        raise ValueError(f"mirror traffic can go to one deployment only, got {mirrored}")
    for name in mirrored:
        if state["traffic"].get(name, 0) > 0:
            raise ValueError(
                f"deployment {name!r} takes {state['traffic'][name]} % of the live traffic; a deployment "
                "takes live or mirror traffic, not both"
            )
    return mirrored


def _atomic_write(path: Path, data: Any, durable: bool = True) -> None:
    """Replace `path` whole, so readers (which take no lock) never see half a file. `durable=False` skips
    the fsync and the indentation, for files rewritten every second whose loss costs a second of records."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2 if durable else None, sort_keys=durable)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ----- request statistics -----------------------------------------------------------------------------------


def _latency_bin(ms: float) -> int:
    if ms <= _LATENCY_BASE_MS:
        return 0
    # The small epsilon keeps a latency exactly on a bin edge in that bin despite rounding in log().
    return math.ceil(math.log(ms / _LATENCY_BASE_MS) / math.log(_LATENCY_RATIO) - 1e-9)


def _bin_upper_ms(index: int) -> float:
    return _LATENCY_BASE_MS * _LATENCY_RATIO**index


def _merge_stats(into: StatsData, other: StatsData) -> None:
    for deployment, kinds in other.items():
        for kind, seconds in kinds.items():
            target = into.setdefault(deployment, {}).setdefault(kind, {})
            for second, (requests, errors, histogram) in seconds.items():
                bucket = target.setdefault(second, [0, 0, {}])
                bucket[0] += requests
                bucket[1] += errors
                for index, count in histogram.items():
                    bucket[2][index] = bucket[2].get(index, 0) + count


def _summarize(seconds: dict[str, list[Any]], since_epoch: float) -> dict[str, Any]:
    cutoff = math.floor(since_epoch)
    requests = errors = 0
    histogram: dict[int, int] = {}
    for second, (bucket_requests, bucket_errors, bucket_histogram) in seconds.items():
        if int(second) < cutoff:
            continue
        requests += bucket_requests
        errors += bucket_errors
        for index, count in bucket_histogram.items():
            histogram[int(index)] = histogram.get(int(index), 0) + count
    p95_ms: float | None = None
    if histogram:
        rank = math.ceil(0.95 * sum(histogram.values()))  # nearest-rank percentile
        seen = 0
        for index in sorted(histogram):
            seen += histogram[index]
            if seen >= rank:
                p95_ms = round(_bin_upper_ms(index), 2)
                break
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "p95_ms": p95_ms,
    }


class _StatsRecorder:
    """One endpoint's request counts in this process, merged into the shared stats file every second.

    Records go to `_pending` under a short lock, so scoring threads never wait for file I/O. `_flush_lock` is
    held across a flush and across a read, so a reader sees each record exactly once: in the file or pending.
    """

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self.lock_path = lock_path
        self._pending: StatsData = {}
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def record(self, deployment: str, kind: str, ok: bool, latency_ms: float) -> None:
        second = str(int(time.time()))
        index = str(_latency_bin(latency_ms))
        with self._pending_lock:
            bucket = (
                self._pending.setdefault(deployment, {}).setdefault(kind, {}).setdefault(second, [0, 0, {}])
            )
            bucket[0] += 1
            bucket[1] += 0 if ok else 1
            bucket[2][index] = bucket[2].get(index, 0) + 1
        _start_stats_flusher()

    def summary(self, deployment: str, since_seconds: float) -> dict[str, Any]:
        since_epoch = time.time() - since_seconds
        with self._flush_lock:
            data = self._load()
            with self._pending_lock:
                _merge_stats(data, {deployment: self._pending.get(deployment, {})})
        kinds = data.get(deployment, {})
        summary = _summarize(kinds.get("live", {}), since_epoch)
        summary["mirror"] = _summarize(kinds.get("mirror", {}), since_epoch)
        return summary

    def flush(self) -> None:
        with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                self._update(lambda data: _merge_stats(data, batch))
            except OSError as exc:
                # Stats are evidence, not state: losing a second of them must not break scoring.
                logger.warning(
                    "could not persist endpoint stats", extra={"path": str(self.path), "error": str(exc)}
                )

    def forget(self, deployment: str) -> None:
        """Drop a deployment's history, so a deployment re-created under the same name starts clean."""
        with self._flush_lock:
            with self._pending_lock:
                self._pending.pop(deployment, None)
            with contextlib.suppress(OSError):
                self._update(lambda data: data.pop(deployment, None))

    def _update(self, change: Callable[[StatsData], Any]) -> None:
        with open(self.lock_path, "a") as lock_file:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            data = self._load()
            change(data)
            oldest = int(time.time()) - STATS_RETENTION_SECONDS
            for kinds in data.values():
                for seconds in kinds.values():
                    for second in [s for s in seconds if int(s) < oldest]:
                        del seconds[second]
            _atomic_write(self.path, {"deployments": data}, durable=False)

    def _load(self) -> StatsData:
        try:
            return json.loads(self.path.read_text()).get("deployments", {})
        except (FileNotFoundError, json.JSONDecodeError):
            return {}


_recorders: list[_StatsRecorder] = []
_flusher: threading.Thread | None = None
_flusher_guard = threading.Lock()


def _flush_all_stats() -> None:
    for recorder in list(_recorders):
        recorder.flush()


def _flush_stats_forever() -> None:
    while True:
        time.sleep(STATS_FLUSH_SECONDS)
        try:
            _flush_all_stats()
        except Exception:  # a flusher that dies silently would freeze every other process's view
            logger.exception("flushing endpoint stats failed")


def _start_stats_flusher() -> None:
    global _flusher
    if _flusher is not None:
        return
    with _flusher_guard:
        if _flusher is None:
            _flusher = threading.Thread(target=_flush_stats_forever, name="endpoint-stats", daemon=True)
            _flusher.start()
            # The last second of records would otherwise die with the process.
            atexit.register(_flush_all_stats)


# ----- mirror copies ----------------------------------------------------------------------------------------


class _MirrorPool:
    """A few daemon threads sending mirror copies; a full queue drops copies instead of delaying anyone."""

    def __init__(self, workers: int, size: int) -> None:
        self._workers = workers
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(size)
        self._started = False
        self._guard = threading.Lock()
        self.dropped = 0

    def submit(self, job: Callable[[], None]) -> bool:
        self._start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _start(self) -> None:
        with self._guard:
            if self._started:
                return
            for i in range(self._workers):
                threading.Thread(target=self._run, name=f"endpoint-mirror-{i}", daemon=True).start()
            self._started = True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:
                logger.exception("mirror copy failed")


_mirror_pool = _MirrorPool(MIRROR_WORKERS, MIRROR_QUEUE_SIZE)


# ----- what all LocalEndpoint objects of one endpoint share in this process ---------------------------------


@dataclass(frozen=True)
class _Health:
    pid: int
    port: int
    error: str | None  # None: healthy
    checked: float  # time.monotonic()


class _Runtime:
    def __init__(self, directory: Path, name: str) -> None:
        # fcntl covers other processes; this lock covers the threads of this one.
        self.lock = threading.Lock()
        self.health: dict[str, _Health] = {}
        self.stats = _StatsRecorder(directory / f"{name}.stats.json", directory / f"{name}.stats.lock")
        _recorders.append(self.stats)


_runtimes: dict[Path, _Runtime] = {}
_runtimes_guard = threading.Lock()


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
        with _runtimes_guard:
            key = self._state_path.resolve()
            if key not in _runtimes:
                _runtimes[key] = _Runtime(self._dir, name)
            self._runtime = _runtimes[key]

    # ----- state -----

    def _read(self) -> State:
        try:
            state = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            state = {}
        state.setdefault("deployments", {})
        state.setdefault("traffic", {})
        state.setdefault("mirror", {})
        return state

    @contextlib.contextmanager
    def _locked(self) -> Iterator[State]:
        """Read-modify-write of the state; the changes made to the yielded dict are saved on exit."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._runtime.lock, open(self._lock_path, "a") as lock_file:
            if fcntl is not None:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            state = self._read()
            yield state
            _atomic_write(self._state_path, state)

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
        # A new deployment under an old name must not inherit the old one's errors and latencies.
        self._runtime.stats.forget(name)
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
            validated = validate_traffic(dict(traffic), set(state["deployments"]))
            # A deployment takes live or mirror traffic, not both (Azure's rule). Giving live traffic to the
            # mirrored deployment ends its mirroring, as the Azure adapter's set_traffic does, so a release
            # can go from shadow to canary in one call on either backend.
            ended = {name: pct for name, pct in state["mirror"].items() if validated.get(name, 0) > 0}
            state["mirror"] = {name: pct for name, pct in state["mirror"].items() if name not in ended}
            state["traffic"] = validated
        logger.info("traffic set", extra={"endpoint": self.name, "traffic": traffic, "mirror_ended": ended})

    def mirror_traffic(self) -> dict[str, int]:
        """The deployment that receives copies of the weight-routed requests, and its share: {} when none."""
        state = self._read()
        return {
            name: int(pct)
            for name, pct in state["mirror"].items()
            if pct > 0 and name in state["deployments"]
        }

    def set_mirror_traffic(self, mirror: dict[str, int]) -> None:
        """Copy `pct` % of the requests routed by traffic weight to one deployment; its answers are discarded.

        Replaces the whole mirror setting: `{}` or `{name: 0}` stops mirroring. Raises ValueError, as Azure
        refuses, for more than one deployment, a share outside 0-50 %, an unknown deployment, or one that
        takes live traffic.
        """
        with self._locked() as state:
            state["mirror"] = _validate_mirror(dict(mirror), state)
        logger.info("mirror traffic set", extra={"endpoint": self.name, "mirror": mirror})

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        """What deployment `name` answered in the last `since_seconds` (to the second, at most an hour back).

        `{"requests", "errors", "error_rate", "p95_ms", "mirror": {same keys}}`: the top-level counts are
        the answers clients saw (routed by weight or by the header, and `invoke`); "mirror" counts the copies
        whose answers were discarded. Errors are answers other than 200, a deployment that did not answer
        included. `p95_ms` is None without requests. This process's records are seen at once, other
        processes' (the host serving the router) within about a second.
        """
        if since_seconds < 0:
            raise ValueError(f"since_seconds must not be negative, got {since_seconds!r}")
        return self._runtime.stats.summary(name, since_seconds)

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any:
        try:
            # NaN is not JSON; Azure's front end would refuse it, so refuse it here rather than pass it on.
            body = json.dumps(payload, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise EndpointError(f"the payload is not valid JSON: {exc}", status=400) from exc
        scored = self.forward(body, "application/json", deployment)
        if scored.status != 200:
            text = scored.body.decode(errors="replace")
            raise EndpointError(
                f"deployment {scored.deployment!r} answered {scored.status}: {text[:500]}",
                status=scored.status,
                body=text,
                deployment=scored.deployment,
            )
        return json.loads(scored.body)

    def forward(self, body: bytes, content_type: str, deployment: str | None = None) -> Scored:
        """Score one request as the endpoint's front end does: route, mirror, count, and pass the answer back.

        A deployment that cannot be reached is marked unhealthy and, for a weight-routed request, the request
        goes to another healthy deployment with traffic (scoring has no side effects, so a retry is safe).
        Raises EndpointError when no deployment can answer: 404 none takes traffic (or no such deployment),
        503 none of them is healthy, 502 the named deployment did not answer.
        """
        import requests

        excluded: set[str] = set()
        mirrored = False
        while True:
            state = self._read()
            name, entry = self._route(state, deployment, excluded)
            if deployment is None and not mirrored:
                # Azure mirrors only requests routed by weight; one copy per request, retries included.
                self._maybe_mirror(state, body, content_type)
                mirrored = True
            started = time.perf_counter()
            try:
                response = _http(
                    "POST",
                    f"http://127.0.0.1:{entry['port']}/score",
                    SCORE_TIMEOUT_SECONDS,
                    data=body,
                    headers={"Content-Type": content_type},
                )
            except OSError as exc:  # requests' ConnectionError and Timeout derive from OSError
                self._runtime.stats.record(name, "live", False, (time.perf_counter() - started) * 1000)
                self._set_health(name, entry, f"did not answer a request: {exc}")
                # Refused, reset or never connected; a read timeout (a slow model) is no ConnectionError and
                # is not tried again elsewhere.
                if deployment is None and isinstance(exc, requests.ConnectionError):
                    logger.warning(
                        "deployment not answering; routing the request to another",
                        extra={"endpoint": self.name, "deployment": name, "error": str(exc)},
                    )
                    excluded.add(name)
                    continue
                raise EndpointError(
                    f"deployment {name!r} is not answering: {exc}", status=502, deployment=name
                ) from exc
            latency_ms = (time.perf_counter() - started) * 1000
            self._runtime.stats.record(name, "live", response.status_code == 200, latency_ms)
            return Scored(
                name,
                response.status_code,
                response.content,
                response.headers.get("Content-Type", "application/json"),
            )

    def route(self, deployment: str | None = None) -> tuple[str, int]:
        """The deployment (name, port) to score with: the one named, else a healthy one drawn by traffic."""
        name, entry = self._route(self._read(), deployment, set())
        return name, entry["port"]

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
            # A mirror serves no client, so deleting its deployment only ends the mirroring.
            _terminate(entry["pid"])
            del state["deployments"][name]
            state["traffic"].pop(name, None)
            state["mirror"].pop(name, None)
        self._runtime.health.pop(name, None)
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
                # Loading again: "Creating" until its health check passes, not "Failed".
                entry.pop("ready", None)

    def check_health(self) -> dict[str, bool]:
        """Check every deployment now (the router's monitor calls this every second); name -> healthy."""
        healthy = {}
        for name, entry in self._read()["deployments"].items():
            if _is_scoring_process(entry["pid"]):
                healthy[name] = self._probe(name, entry) is None
                if healthy[name]:
                    self._mark_ready(name, entry)
            else:
                healthy[name] = False
        return healthy

    def scoring_uri(self, deployment: str) -> str | None:
        entry = self._read()["deployments"].get(deployment)
        return None if entry is None else f"http://127.0.0.1:{entry['port']}/score"

    def log_path(self, deployment: str) -> Path:
        return self._log_dir / f"{self.name}-{deployment}.log"

    # ----- routing and health -----

    def _route(self, state: State, deployment: str | None, excluded: set[str]) -> tuple[str, dict[str, Any]]:
        if deployment is not None:
            entry = state["deployments"].get(deployment)
            if entry is None:
                raise EndpointError(f"endpoint {self.name!r} has no deployment {deployment!r}", status=404)
            error = self._unhealthy(deployment, entry)
            if error is not None:
                raise EndpointError(
                    f"deployment {deployment!r} of endpoint {self.name!r} is not healthy: {error}",
                    status=503,
                    deployment=deployment,
                )
            return deployment, entry
        weighted = [(n, w) for n, w in state["traffic"].items() if w > 0 and n in state["deployments"]]
        if not weighted:
            raise EndpointError(
                f"endpoint {self.name!r} has no deployment with traffic; set traffic or name a deployment "
                f"with the {DEPLOYMENT_HEADER} header",
                status=404,
            )
        reasons = {name: "did not answer this request" for name in excluded}
        candidates = [(n, w) for n, w in weighted if n not in excluded]
        # Draw by weight; a draw that lands on an unhealthy deployment is drawn again among the rest, which
        # spreads its share over the healthy ones in proportion to their weights.
        while candidates:
            names, weights = zip(*candidates, strict=True)
            chosen = random.choices(names, weights=weights)[0]
            error = self._unhealthy(chosen, state["deployments"][chosen])
            if error is None:
                return chosen, state["deployments"][chosen]
            reasons[chosen] = error
            candidates = [(n, w) for n, w in candidates if n != chosen]
        raise EndpointError(
            f"endpoint {self.name!r} has no healthy deployment with traffic: "
            + "; ".join(f"{n}: {reasons[n]}" for n in sorted(reasons)),
            status=503,
        )

    def _unhealthy(self, name: str, entry: dict[str, Any]) -> str | None:
        """Why the deployment must not get traffic now, or None. A process check on every call (cheap), and
        its `/health` answer from the cache when fresh."""
        pid = entry["pid"]
        if not _is_scoring_process(pid):
            code = _exit_code(pid)
            return "scoring process exited" + (f" with code {code}" if code is not None else "")
        cached = self._runtime.health.get(name)
        if (
            cached is not None
            and cached.pid == pid
            and cached.port == entry["port"]
            and time.monotonic() - cached.checked < HEALTH_CACHE_SECONDS
        ):
            return cached.error
        return self._probe(name, entry)

    def _probe(self, name: str, entry: dict[str, Any]) -> str | None:
        """GET /health now and cache the result; None if healthy, else what is wrong."""
        pid, port = entry["pid"], entry["port"]
        try:
            response = _http("GET", f"http://127.0.0.1:{port}/health", HEALTH_TIMEOUT_SECONDS)
        except OSError as exc:
            error: str | None = f"/health on port {port} not answering: {type(exc).__name__}"
        else:
            # Another program answering on the port must not pass for our scorer.
            if response.status_code != 200:
                error = f"/health answered {response.status_code}"
            elif _health_pid(response) != pid:
                error = f"port {port} is answered by another process, not pid {pid}"
            else:
                error = None
        self._set_health(name, entry, error)
        return error

    def _set_health(self, name: str, entry: dict[str, Any], error: str | None) -> None:
        self._runtime.health[name] = _Health(entry["pid"], entry["port"], error, time.monotonic())

    def _mark_ready(self, name: str, entry: dict[str, Any]) -> None:
        """Remember that the deployment once passed its health check: failing it later means Failed, not
        still Creating. Stored in the state so that every process reports the same."""
        if entry.get("ready"):
            return
        with self._locked() as state:
            current = state["deployments"].get(name)
            if current is not None and current["pid"] == entry["pid"]:
                current["ready"] = True
        entry["ready"] = True

    def _maybe_mirror(self, state: State, body: bytes, content_type: str) -> None:
        for name, pct in state["mirror"].items():
            entry = state["deployments"].get(name)
            if entry is None or pct <= 0 or random.random() * 100 >= pct:
                continue
            if not _mirror_pool.submit(lambda n=name, e=entry: self._send_mirror(n, e, body, content_type)):
                logger.warning(
                    "mirror queue full; copy dropped", extra={"endpoint": self.name, "deployment": name}
                )

    def _send_mirror(self, name: str, entry: dict[str, Any], body: bytes, content_type: str) -> None:
        # Mirror traffic is traffic too: a deployment that failed its health check gets none.
        if self._unhealthy(name, entry) is not None:
            return
        started = time.perf_counter()
        try:
            response = _http(
                "POST",
                f"http://127.0.0.1:{entry['port']}/score",
                SCORE_TIMEOUT_SECONDS,
                data=body,
                headers={"Content-Type": content_type},
            )
        except OSError as exc:
            self._runtime.stats.record(name, "mirror", False, (time.perf_counter() - started) * 1000)
            self._set_health(name, entry, f"did not answer a mirrored request: {exc}")
            return
        # The answer is discarded, as on Azure; only its status and latency are kept.
        self._runtime.stats.record(
            name, "mirror", response.status_code == 200, (time.perf_counter() - started) * 1000
        )

    # ----- internals -----

    def _spawn(self, name: str, model_dir: Path, port: int) -> int:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "wb") as log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.host.endpoint.scoring",
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
        error = self._probe(name, entry)
        if error is None:
            self._mark_ready(name, entry)
            return Deployment(name, model, "Succeeded", f"http://127.0.0.1:{port}/score")
        if entry.get("ready"):
            return Deployment(
                name, model, "Failed", f"scoring process (pid {pid}) runs but fails its health check: {error}"
            )
        return Deployment(name, model, "Creating", f"loading the model (pid {pid}): {error}")

    def _log_tail(self, name: str) -> str:
        try:
            lines = [
                line for line in self.log_path(name).read_text(errors="replace").splitlines() if line.strip()
            ]
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


class EndpointServer:
    """The endpoint's scoring URL (`POST /score`), routing like Azure's endpoint front end.

    While it runs, a monitor thread checks every deployment's health each second, so routing decisions use a
    fresh result without waiting for a check.
    """

    def __init__(
        self,
        endpoint: LocalEndpoint,
        host: str = "127.0.0.1",
        port: int = 7072,
        health_interval: float = HEALTH_INTERVAL_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.health_interval = health_interval
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._stopping = threading.Event()

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
        self._stopping.clear()
        self._monitor = threading.Thread(
            target=self._watch_health, name=f"endpoint-{self.endpoint.name}-health", daemon=True
        )
        self._monitor.start()
        logger.info("endpoint serving", extra={"endpoint": self.endpoint.name, "url": f"{self.url}/score"})

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in (self._thread, self._monitor):
            if thread is not None:
                thread.join(timeout=5)
        self._server = None
        self._thread = None
        self._monitor = None

    def _watch_health(self) -> None:
        while not self._stopping.wait(self.health_interval):
            try:
                self.endpoint.check_health()
            except Exception:  # a transient failure (state file mid-replace, disk) must not end the monitor
                logger.exception("endpoint health check failed", extra={"endpoint": self.endpoint.name})


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
                    "mirror_traffic": endpoint.mirror_traffic(),
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
                scored = endpoint.forward(
                    body,
                    self.headers.get("Content-Type", "application/json"),
                    self.headers.get(DEPLOYMENT_HEADER) or None,
                )
            except EndpointError as exc:
                self._send_json(exc.status or 502, {"error": str(exc)}, exc.deployment)
                return
            self._send(scored.status, scored.body, scored.content_type, scored.deployment)

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


__all__ = ["EndpointError", "EndpointServer", "LocalEndpoint", "Scored"]
