"""The local stand-in for an Azure ML managed online endpoint: its front end and its control plane, in one.

One router per endpoint, and the router alone holds the endpoint: its deployments (one
`shared.host.endpoint.scoring` process each, on its own loopback port), traffic, mirror traffic, health
and live statistics, in memory. It serves them over HTTP (`handler.py`): the scoring URL (`POST /score`,
routed as Azure's front end routes) and an admin API (`/admin/...`), through which `LocalEndpoint` (the
`Endpoints` port, `shared.adapters.local.endpoint`) does what the Azure adapter does through ARM.

Routing: by the `azureml-model-deployment` header, or else by traffic weights. A weighted pick that lands on
a deployment that failed its health check (process gone, or `/health` not answering) is drawn again among
the healthy ones with traffic; with none left the answer is 503. A share of the weight-routed requests is
copied to the mirror deployment, whose answers nobody sees. Every answer is counted (`stats.py`).

The deployments, traffic and mirror setting are also written to `<home>/endpoints/<name>.json`, by the
router only (atomic replace), so that `start` resumes what a previous router served; `stop` stops every
scoring process and keeps the file.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from shared.domain import endpoint_rules as rules
from shared.host.endpoint.api import DEPLOYMENT_HEADER, Conflict, EndpointService, RouteError, Scored
from shared.host.endpoint.deployment import LocalDeployment
from shared.host.endpoint.handler import make_handler
from shared.host.endpoint.health import INTERVAL_SECONDS, HealthMonitor, loopback
from shared.host.endpoint.mirror import MirrorPool
from shared.host.endpoint.processes import find_ours, free_port, spawn, terminate
from shared.host.endpoint.recorder import Exchange, TrafficRecorder, now
from shared.host.endpoint.stats import LIVE, MIRROR, LiveStats
from shared.host.endpoint.store import StateFile

logger = logging.getLogger(__name__)

SCORE_TIMEOUT_SECONDS = 60.0


class Router(EndpointService):
    """One endpoint: its deployments and their scoring processes, its settings and its counts, served over
    HTTP from `start` to `stop`. Its health monitor and mirror workers are its own and stop with it."""

    def __init__(
        self,
        name: str,
        home: Path,
        host: str = "127.0.0.1",
        port: int = 7072,
        health_interval: float = INTERVAL_SECONDS,
        recorder: TrafficRecorder | None = None,
    ) -> None:
        """Port 0 asks the OS for a free port when the router starts; `url` then tells which. With a
        `recorder`, every answered request is captured (the data collector's part)."""
        rules.validate_name("endpoint", name)
        self.name = name
        self.home = Path(home)
        self._state = StateFile(self.home / "endpoints" / f"{name}.json")
        self.log_dir = self.home / "endpoints" / "logs"
        self.host = host
        self.port = port
        self._stats = LiveStats()
        # One lock for the deployments, traffic and mirror setting; never held across a network call.
        self._lock = threading.RLock()
        self._deployments: dict[str, LocalDeployment] = {}
        self._traffic: dict[str, int] = {}
        self._mirror: dict[str, int] = {}
        self._mirrors = MirrorPool(name)
        self._monitor = HealthMonitor(name, self.check_health, health_interval)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.recorder = recorder

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_path(self) -> Path:
        return self._state.path

    # ----- lifecycle -----

    def start(self) -> Router:
        """Listen, then start a scoring process for every deployment the state file lists."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self.port), make_handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        try:
            self._resume()
        except BaseException:
            server.server_close()
            self._stop_processes()  # those started before the failure
            raise
        self._server = server
        if self.recorder is not None:
            self.recorder.start()
        self._mirrors.start()
        self._monitor.start()
        # shutdown() waits for the loop to look at its flag: every 0.1 s, so `stop` is quick.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name=f"endpoint-{self.name}", daemon=True
        )
        self._thread.start()
        logger.info("endpoint serving", extra={"endpoint": self.name, "url": f"{self.url}/score"})
        return self

    def stop(self) -> None:
        """Stop serving and stop every scoring process; the deployments stay in the file for `start`."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self._monitor.stop()
        self._mirrors.stop()
        if self.recorder is not None:
            self.recorder.stop()
        self._stop_processes()
        with self._lock:
            self._save(running=False)
        logger.info("endpoint stopped", extra={"endpoint": self.name})

    def _stop_processes(self) -> None:
        with self._lock:
            deployments = list(self._deployments.values())
        terminate([d.process.popen for d in deployments])

    def __enter__(self) -> Router:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- the admin API -----

    def begin_deployment(self, name: str, model: str, source: str) -> None:
        """Start a scoring process for the model (a folder or file:// URI); idempotent while it runs."""
        rules.validate_name("deployment", name)
        model_dir = _local_model_dir(source)
        with self._lock:
            existing = self._deployments.get(name)
            if existing is not None and existing.process.running():
                if existing.model != model:
                    logger.warning(
                        "deployment exists with another model; keeping it",
                        extra={"deployment": name, "model": existing.model, "requested": model},
                    )
                return
            deployment = self._spawn(name, model, model_dir)
            self._traffic.setdefault(name, 0)
            # A new deployment under an old name must not inherit the old one's errors and latencies.
            self._stats.forget(name)
            self._save()
        logger.info(
            "deployment starting",
            extra={
                "endpoint": self.name,
                "deployment": name,
                "model": model,
                "port": deployment.port,
                "pid": deployment.process.pid,
            },
        )

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The deployment as the port reports it, plus its process's pid and port; None if unknown."""
        with self._lock:
            found = self._deployments.get(name)
        if found is None:
            return None
        return found.describe()

    def deployments(self) -> list[dict[str, Any]]:
        with self._lock:
            names = sorted(self._deployments)
        return [d for d in (self.deployment(name) for name in names) if d is not None]

    def traffic(self) -> dict[str, int]:
        with self._lock:
            return {name: self._traffic.get(name, 0) for name in sorted(self._deployments)}

    def set_traffic(self, traffic: dict[str, int]) -> dict[str, int]:
        with self._lock:
            validated = rules.validate_traffic(dict(traffic), set(self._deployments))
            before = self._mirror
            # Live traffic ends a deployment's mirroring, as on Azure: shadow to canary in one call.
            self._mirror = rules.mirror_after_traffic(self._mirror, validated)
            self._traffic = validated
            self._save()
        ended = sorted(set(before) - set(self._mirror))
        logger.info("traffic set", extra={"endpoint": self.name, "traffic": validated, "mirror_ended": ended})
        return validated

    def mirror_traffic(self) -> dict[str, int]:
        with self._lock:
            return {n: pct for n, pct in self._mirror.items() if pct > 0 and n in self._deployments}

    def set_mirror_traffic(self, mirror: dict[str, int]) -> dict[str, int]:
        with self._lock:
            self._mirror = rules.validate_mirror(dict(mirror), self.traffic())
            self._save()
            mirrored = dict(self._mirror)
        logger.info("mirror traffic set", extra={"endpoint": self.name, "mirror": mirrored})
        return mirrored

    def delete_deployment(self, name: str) -> bool:
        """Stop the deployment's scoring process and forget it; False if there was none. A mirrored
        deployment serves no client, so deleting it only ends the mirroring."""
        with self._lock:
            found = self._deployments.get(name)
            if found is None:
                return False
            try:
                rules.check_deletable(name, self._traffic)
            except ValueError as refused:
                raise Conflict(str(refused)) from None
            del self._deployments[name]
            self._traffic.pop(name, None)
            self._mirror.pop(name, None)
            self._save()
        terminate([found.process.popen])
        logger.info("deployment deleted", extra={"endpoint": self.name, "deployment": name})
        return True

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        """What the deployment answered in the last `since_seconds` (whole seconds, at most an hour back):
        the top-level counts are the answers clients saw, "mirror" the copies whose answers were dropped."""
        return self._stats.summary(name, since_seconds)

    def describe(self) -> dict[str, Any]:
        """What `GET /` answers: the endpoint's name, traffic, mirror traffic and deployments."""
        with self._lock:
            found = [self._deployments[name] for name in sorted(self._deployments)]
        return {
            "name": self.name,
            "traffic": self.traffic(),
            "mirror_traffic": self.mirror_traffic(),
            "deployments": [asdict(d.observe()) for d in found],
            "capture": self.recorder.counts.as_dict() if self.recorder is not None else None,
        }

    # ----- scoring -----

    def forward(
        self, body: bytes, content_type: str, deployment: str | None = None, request_id: str = ""
    ) -> Scored:
        """Score one request as the endpoint's front end does: route, mirror, count, and pass the answer back.

        A deployment that cannot be reached is marked unhealthy and, for a weight-routed request, the request
        goes to another healthy deployment with traffic (scoring has no side effects, so a retry is safe).
        Raises RouteError when no deployment can answer: 404 none takes traffic (or no such deployment),
        503 none of them is healthy, 502 the named deployment did not answer.
        """
        import requests

        excluded: set[str] = set()
        mirrored = False
        while True:
            chosen = self._route(deployment, excluded)
            if deployment is None and not mirrored:
                # Azure mirrors only requests routed by weight; one copy per request, retries included.
                self._maybe_mirror(body, content_type, request_id)
                mirrored = True
            started = time.perf_counter()
            try:
                response = self._post(chosen, body, content_type)
            except OSError as exc:  # requests' ConnectionError and Timeout derive from OSError
                self._stats.record(chosen.name, LIVE, False, (time.perf_counter() - started) * 1000)
                chosen.mark(f"did not answer a request: {exc}")
                # Refused, reset or never connected; a read timeout (a slow model) is no ConnectionError and
                # is not tried again elsewhere.
                if deployment is None and isinstance(exc, requests.ConnectionError):
                    logger.warning(
                        "deployment not answering; routing the request to another",
                        extra={"endpoint": self.name, "deployment": chosen.name, "error": str(exc)},
                    )
                    excluded.add(chosen.name)
                    continue
                raise RouteError(
                    f"deployment {chosen.name!r} is not answering: {exc}", 502, chosen.name
                ) from exc
            latency_ms = (time.perf_counter() - started) * 1000
            self._stats.record(chosen.name, LIVE, response.status_code == 200, latency_ms)
            if response.status_code == 200:
                self._capture(chosen, request_id, body, response.content, mirrored=False)
            return Scored(
                chosen.name,
                response.status_code,
                response.content,
                response.headers.get("Content-Type", "application/json"),
            )

    # ----- health -----

    def check_health(self) -> dict[str, bool]:
        """Check every deployment now (the monitor calls this every second); name -> healthy."""
        with self._lock:
            found = list(self._deployments.values())
        return {d.name: d.unhealthy(probe_now=True) is None for d in found}

    # ----- routing and mirroring -----

    def _route(self, deployment: str | None, excluded: set[str]) -> LocalDeployment:
        with self._lock:
            found = dict(self._deployments)
            weighted = [(n, w) for n, w in self._traffic.items() if w > 0 and n in found]
        if deployment is not None:
            named = found.get(deployment)
            if named is None:
                raise RouteError(f"endpoint {self.name!r} has no deployment {deployment!r}", 404)
            error = named.unhealthy()
            if error is not None:
                raise RouteError(
                    f"deployment {deployment!r} of endpoint {self.name!r} is not healthy: {error}",
                    503,
                    deployment,
                )
            return named
        if not weighted:
            raise RouteError(
                f"endpoint {self.name!r} has no deployment with traffic; set traffic or name a deployment "
                f"with the {DEPLOYMENT_HEADER} header",
                404,
            )
        reasons = {name: "did not answer this request" for name in excluded}
        candidates = [(n, w) for n, w in weighted if n not in excluded]
        # Draw by weight; a draw that lands on an unhealthy deployment is drawn again among the rest, which
        # spreads its share over the healthy ones in proportion to their weights.
        while candidates:
            names, weights = zip(*candidates, strict=True)
            chosen = random.choices(names, weights=weights)[0]
            error = found[chosen].unhealthy()
            if error is None:
                return found[chosen]
            reasons[chosen] = error
            candidates = [(n, w) for n, w in candidates if n != chosen]
        raise RouteError(
            f"endpoint {self.name!r} has no healthy deployment with traffic: "
            + "; ".join(f"{n}: {reasons[n]}" for n in sorted(reasons)),
            503,
        )

    def _capture(
        self, deployment: LocalDeployment, request_id: str, body: bytes, answer: bytes, mirrored: bool
    ) -> None:
        if self.recorder is None or not request_id:
            return
        version = deployment.model.rpartition(":")[2]
        self.recorder.record(Exchange(deployment.name, version, request_id, now(), body, answer, mirrored))

    def _maybe_mirror(self, body: bytes, content_type: str, request_id: str = "") -> None:
        with self._lock:
            targets = [
                (self._deployments[n], pct) for n, pct in self._mirror.items() if n in self._deployments
            ]
        for target, pct in targets:
            if pct <= 0 or random.random() * 100 >= pct:
                continue
            if not self._mirrors.submit(
                lambda d=target: self._send_mirror(d, body, content_type, request_id)
            ):
                logger.warning(
                    "mirror queue full; copy dropped",
                    extra={"endpoint": self.name, "deployment": target.name},
                )

    def _send_mirror(
        self, deployment: LocalDeployment, body: bytes, content_type: str, request_id: str = ""
    ) -> None:
        # Mirror traffic is traffic too: a deployment that failed its health check gets none.
        if deployment.unhealthy() is not None:
            return
        started = time.perf_counter()
        try:
            response = self._post(deployment, body, content_type)
        except OSError as exc:
            self._stats.record(deployment.name, MIRROR, False, (time.perf_counter() - started) * 1000)
            deployment.mark(f"did not answer a mirrored request: {exc}")
            return
        # The answer is discarded, as on Azure; only its status and latency are kept.
        latency_ms = (time.perf_counter() - started) * 1000
        self._stats.record(deployment.name, MIRROR, response.status_code == 200, latency_ms)
        if response.status_code == 200:
            self._capture(deployment, request_id, body, response.content, mirrored=True)

    def _post(self, deployment: LocalDeployment, body: bytes, content_type: str) -> Any:
        return loopback(
            "POST",
            f"http://127.0.0.1:{deployment.port}/score",
            SCORE_TIMEOUT_SECONDS,
            data=body,
            headers={"Content-Type": content_type},
        )

    # ----- processes and the state file -----

    def _spawn(self, name: str, model: str, model_dir: Path) -> LocalDeployment:
        taken = {d.port for d in self._deployments.values()} | {self.port}
        port = free_port(taken)
        process = spawn(model_dir, port, self.log_dir / f"{self.name}-{name}.log", self.home)
        self._deployments[name] = LocalDeployment(name, model, model_dir, port, process)
        return self._deployments[name]

    def _resume(self) -> None:
        saved = self._state.load()
        entries: dict[str, dict[str, Any]] = saved["deployments"]
        # A router that died without `stop` left its scoring processes running: stop those that are still
        # ours (same pid and start time) before starting new ones, so nothing is left behind.
        leftovers = [
            found
            for entry in entries.values()
            if (found := find_ours(int(entry.get("pid") or 0), float(entry.get("create_time") or 0.0)))
        ]
        if leftovers:
            logger.warning(
                "stopping scoring processes a previous router left running",
                extra={"endpoint": self.name, "pids": [p.pid for p in leftovers]},
            )
            terminate(leftovers)
        with self._lock:
            self._deployments = {}
            for name, entry in sorted(entries.items()):
                self._spawn(name, str(entry["model"]), Path(entry["model_dir"]))
            traffic = {n: int(p) for n, p in saved["traffic"].items() if n in self._deployments}
            self._traffic = {name: traffic.get(name, 0) for name in self._deployments}
            self._mirror = rules.mirror_after_traffic(
                {n: int(p) for n, p in saved["mirror"].items()}, self._traffic
            )
            self._save()
        if entries:
            logger.info("deployments resumed", extra={"endpoint": self.name, "deployments": sorted(entries)})

    def _save(self, running: bool = True) -> None:
        """Write the deployments, traffic and mirror setting; `running=False` (at `stop`) leaves out the
        pids, so the next router has no process to look for."""
        deployments = {d.name: d.persisted(running) for d in self._deployments.values()}
        self._state.save(deployments, self._traffic, self._mirror)


def _local_model_dir(source: str) -> Path:
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    # A one-letter "scheme" is a Windows drive (C:\...), not a URI.
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"local deployments need a folder or file:// URI for the model, not {source!r}")
    return Path(source)
