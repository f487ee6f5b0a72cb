"""Everything `mlops up` runs on one machine: Azurite, the function host and its Event Grid, the timers, the
watcher of the landing and labels containers and the scoring endpoint. Started together, stopped together,
nothing left behind."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlparse

from shared import bootstrap
from shared.config import Settings, experiment_name
from shared.host import routing
from shared.host.azurite import Azurite
from shared.host.delivery import Dispatcher
from shared.host.endpoint.recorder import TrafficRecorder
from shared.host.endpoint.router import Router
from shared.host.functions_host import FunctionHost, InvocationHook
from shared.host.server import HostServer
from shared.host.timers import TimerScheduler
from shared.host.watcher import BlobWatcher

log = logging.getLogger(__name__)


class LocalServices:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        start_azurite: bool = True,
        in_memory_storage: bool = False,
        timers: bool = True,
        watch: bool = True,
        watch_interval: float = 0.5,
    ) -> None:
        """`env` overrides settings for this process and its children; `start_azurite=False` uses the
        storage already configured instead of starting Azurite on MLOPS_AZURITE_PORT."""
        self._env = dict(env or {})
        self._start_azurite = start_azurite
        self._in_memory = in_memory_storage
        self._timers_enabled = timers
        self._watch = watch
        self._watch_interval = watch_interval
        self._saved_env: dict[str, str | None] = {}
        self._stack: list = []
        self.azurite: Azurite | None = None

    def start(self) -> LocalServices:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        started = time.perf_counter()
        self._apply_env(self._env)
        settings = Settings.from_env()
        settings.home.mkdir(parents=True, exist_ok=True)
        if self._start_azurite:
            self.azurite = Azurite(settings.home, settings.local.azurite_port, self._in_memory).start()
            self._stack.append(self.azurite.stop)
            self._apply_env({"MLOPS_STORAGE_CONNECTION_STRING": self.azurite.connection_string})
            settings = Settings.from_env()
        # The endpoint's router first: `deps.endpoints` is its client, and it resumes the deployments the
        # last `mlops up` served. It stops after everything that uses it, stopping its scoring processes.
        endpoint_address = urlparse(settings.local.endpoint_url)
        self.router = Router(
            settings.model_name,
            settings.home,
            endpoint_address.hostname or "127.0.0.1",
            endpoint_address.port or 7072,
            recorder=_recorder(settings),
        ).start()
        self._stack.append(self.router.stop)
        bootstrap.reset()
        self.deps = bootstrap.deps()
        self._stack.append(self._stop_processes)

        import function_app

        self.host = FunctionHost(function_app.app, settings.raw, around=_fault_from_env())
        subscriptions = routing.load(settings.containers, experiment=experiment_name(settings.raw))
        self.dispatcher = Dispatcher(
            subscriptions,
            self.host.invoke_event,
            self.deps.blobs,
            settings.containers.deadletter,
            settings.local.retry_seconds,
        )
        self.dispatcher.start()
        self._stack.append(self.dispatcher.stop)
        self.timers = TimerScheduler(self.host)
        if self._timers_enabled:
            self.timers.start()
            self._stack.append(self.timers.stop)
        topics = {
            "storage": settings.topics.storage,
            "workspace": settings.topics.workspace,
            "mlops": settings.topics.custom,
        }
        address = urlparse(settings.local.host_url)
        self.server = HostServer(
            self.host,
            self.dispatcher,
            self.timers,
            topics,
            settings.events.key,
            (address.hostname or "127.0.0.1", address.port or 7071),
            function_key=settings.local.function_key,
            on_refused=self._refused,
            on_refused_event=self._refused_event,
        )
        self.server.start()
        self._stack.append(self.server.stop)
        self.watcher = BlobWatcher(
            self.deps.blobs,
            (settings.containers.landing, settings.containers.labels),
            settings.topics.storage,
            lambda events: self.dispatcher.publish("storage", events),
            self._watch_interval,
        )
        if self._watch:
            self.watcher.start()
            self._stack.append(self.watcher.stop)
        self.settings = settings
        log.info("local services up", extra={"seconds": round(time.perf_counter() - started, 2)})

    def stop(self) -> None:
        while self._stack:
            step = self._stack.pop()
            try:
                step()
            except Exception:
                log.exception("stopping a local service failed; stopping the rest")
        self._apply_env({k: v for k, v in self._saved_env.items()}, restore=True)
        bootstrap.reset()

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> bool:
        """Wait until no event is queued or being delivered (and none appeared for `settle` seconds)."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            if self.dispatcher.idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return True
            else:
                quiet_since = None
            time.sleep(0.05)
        return False

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refused(self, function: str, path: str) -> None:
        self.deps.audit.record(
            "host", "http.unauthorized", function, path=path, reason="no valid function key"
        )

    def _refused_event(self, where: str, event_id: str, reason: str) -> None:
        self.deps.audit.record("host", "event.rejected", event_id or "(no id)", to=where, reason=reason)

    def _stop_processes(self) -> None:
        self.deps.jobs.stop_all()
        self.deps.blobs.close()

    def _apply_env(self, values: Mapping[str, str | None], restore: bool = False) -> None:
        for key, value in values.items():
            if not restore and key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fault_from_env() -> InvocationHook | None:
    """`MLOPS_FAULT_FUNCTION=name` with `MLOPS_FAULT_AFTER_EFFECTS=k`: that function's first invocation dies
    right after its k-th side effect, as a worker process would (crash tests through the real host)."""
    function = os.environ.get("MLOPS_FAULT_FUNCTION", "")
    after = int(os.environ.get("MLOPS_FAULT_AFTER_EFFECTS") or 0)
    if not function or after <= 0:
        return None
    from shared.testing import faults

    armed = threading.Lock()

    @contextmanager
    def around(name: str) -> Iterator[None]:
        if name != function or not armed.acquire(blocking=False):  # once: the lock is never released
            yield
            return
        fault = faults.Fault(after)
        with bootstrap.intercepted(lambda deps: faults.wrap(deps, fault)):
            yield

    return around


def _recorder(settings: Settings) -> TrafficRecorder:
    """The endpoint's data collector: captured traffic goes where the drift and quality checks read it."""
    from shared.adapters.azure.storage import AzureBlobStore

    blobs = AzureBlobStore.from_connection_string(settings.storage.connection_string)
    container = settings.containers.inference
    blobs.ensure_containers([container])

    def write(name: str, data: bytes) -> None:
        blobs.write(container, name, data, content_type="application/x-ndjson")

    return TrafficRecorder(settings.endpoint_name, write)
