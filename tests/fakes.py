"""In-memory fakes for every port in `shared.ports`, for fast unit tests.

In the cosmicpython style, each fake subclasses the interface it stands for and keeps state that tests assert
on (what is stored, submitted, registered, deployed, published), never a log of calls. Failures are injected
by telling a fake what to do, e.g. `endpoints.fail_once("begin_deployment", RuntimeError(...))`.
"""

from __future__ import annotations

import bisect
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import Settings
from shared.deps import Deps
from shared.domain import endpoint_rules as rules
from shared.domain.messages import MODEL_REGISTERED, Envelope, ModelRegistered
from shared.ports import (
    Blob,
    BlobInfo,
    BlobStore,
    BlobStream,
    Deployment,
    DriftJob,
    DriftJobs,
    Endpoints,
    EventPublisher,
    ModelRegistry,
    ModelVersion,
    OutgoingEvent,
    PreconditionFailed,
    RunResults,
    TrainingJob,
    TrainingJobs,
    WebhookError,
    Webhooks,
)
from shared.state.audit import AuditLog
from shared.state.store import StateStore

START = datetime(2024, 5, 6, 12, 0, 0, tzinfo=UTC)
WORKSPACE_TOPIC = "/subscriptions/test/providers/Microsoft.MachineLearningServices/workspaces/unit"
STORAGE_TOPIC = "/subscriptions/test/providers/Microsoft.Storage/storageAccounts/unit"
CUSTOM_TOPIC = "/subscriptions/test/providers/Microsoft.EventGrid/topics/unit"


class FakeClock:
    """A clock that moves only when told to. Callable, so it can be used wherever a `clock()` is expected."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class _FailureInjection:
    """Lets a test make the next call of a named method raise, or let something else happen just before it
    (another writer winning a race), once; `after_once` makes a call take effect and then raise, as when its
    response is lost."""

    def __init__(self) -> None:
        self._failures: dict[str, list[Exception]] = {}
        self._interleaved: dict[str, list[Callable[[], None]]] = {}
        self._lost: dict[str, list[Exception]] = {}

    def fail_once(self, method: str, error: Exception) -> None:
        self._failures.setdefault(method, []).append(error)

    def before_once(self, method: str, action: Callable[[], None]) -> None:
        self._interleaved.setdefault(method, []).append(action)

    def after_once(self, method: str, error: Exception) -> None:
        """The next call of `method` does what it was asked, then raises `error` instead of answering."""
        self._lost.setdefault(method, []).append(error)

    def _maybe_lose(self, method: str) -> None:
        pending = self._lost.get(method)
        if pending:
            raise pending.pop(0)

    def _maybe_fail(self, method: str) -> None:
        interleaved = self._interleaved.get(method)
        if interleaved:
            interleaved.pop(0)()
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)


# --- blobs ----------------------------------------------------------------------------------------------------


@dataclass
class _StoredBlob:
    data: bytes
    etag: str
    last_modified: datetime
    kind: str  # "block" or "append"
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class InMemoryBlobStore(BlobStore, _FailureInjection):
    """Containers of blobs with ETags that change on every write, and the conditional writes of Azure Storage.

    Index tags are searched as Azure searches them, behind the writes: `find` sees a blob's tags as they were
    `index_delay` seconds (of the clock) before, so a test can show what a trailing index does."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        _FailureInjection.__init__(self)
        self._clock = clock or FakeClock()
        self._containers: dict[str, dict[str, _StoredBlob]] = {}
        self._etags = itertools.count(1)
        self._atomic = threading.RLock()  # a conditional write checks and stores as one step, as Azure does
        self.chunk_bytes = 4 * 1024 * 1024  # what `open` hands out at a time, as the Azure adapter does
        # bytes handed out by `read` and `open`, by container: what went through the app's memory
        self.bytes_read: dict[str, int] = {}
        self.index_delay = 0.0
        # the tag index: container -> name -> [(when, tags)], the tags each write gave, oldest first
        self._index: dict[str, dict[str, list[tuple[datetime, dict[str, str]]]]] = {}
        self._sorted: dict[str, list[str]] = {}  # names in order, per container, until it changes

    # test helpers
    def names(self, container: str) -> list[str]:
        return sorted(self._container(container))

    def text(self, container: str, name: str) -> str:
        return self._container(container)[name].data.decode()

    def tags(self, container: str, name: str) -> dict[str, str]:
        return dict(self._container(container)[name].tags)

    def content_type(self, container: str, name: str) -> str | None:
        return self._container(container)[name].content_type

    # the port
    def ensure_containers(self, names: Sequence[str]) -> None:
        for name in names:
            self._containers.setdefault(name, {})

    def read(self, container: str, name: str) -> Blob | None:
        self._maybe_fail("read")
        stored = self._container(container).get(name)
        if stored is None:
            return None
        self.bytes_read[container] = self.bytes_read.get(container, 0) + len(stored.data)
        return Blob(info=self._info(container, name, stored), data=bytes(stored.data))

    def open(self, container: str, name: str) -> BlobStream | None:
        self._maybe_fail("open")
        stored = self._container(container).get(name)
        if stored is None:
            return None
        return BlobStream(self._info(container, name, stored), self._chunks(container, name, stored))

    def _chunks(self, container: str, name: str, stored: _StoredBlob) -> Iterator[bytes]:
        for start in range(0, len(stored.data), self.chunk_bytes):
            current = self._container(container).get(name)
            if current is None or current.etag != stored.etag:  # Azure asks for each chunk if-match
                raise PreconditionFailed(f"{container}/{name} changed while it was read")
            chunk = stored.data[start : start + self.chunk_bytes]
            self.bytes_read[container] = self.bytes_read.get(container, 0) + len(chunk)
            yield chunk

    def copy(
        self,
        source_container: str,
        source_name: str,
        container: str,
        name: str,
        *,
        source_etag: str | None = None,
        if_none_match: bool = False,
    ) -> None:
        self._maybe_fail("copy")
        source = self._container(source_container).get(source_name)
        if source is None:
            raise PreconditionFailed(f"{source_container}/{source_name}: the source is gone")
        if source_etag is not None and source.etag != source_etag:
            raise PreconditionFailed(
                f"{source_container}/{source_name} changed: {source.etag} != {source_etag}"
            )
        self._check(container, name, if_none_match=if_none_match, if_match=None)
        copied = _StoredBlob(source.data, self._new_etag(), self._clock(), "block", source.content_type)
        self._changed(container, name, {}, new=name not in self._container(container))
        self._container(container)[name] = copied

    def info(self, container: str, name: str) -> BlobInfo | None:
        self._maybe_fail("info")
        stored = self._container(container).get(name)
        return None if stored is None else self._info(container, name, stored)

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        self._maybe_fail("write")
        with self._atomic:
            blobs = self._container(container)
            self._check(container, name, if_none_match=if_none_match, if_match=if_match)
            tagged = dict(tags or {})
            stored = _StoredBlob(bytes(data), self._new_etag(), self._clock(), "block", content_type, tagged)
            self._changed(container, name, tagged, new=name not in blobs)
            blobs[name] = stored
        self._maybe_lose("write")
        return stored.etag

    def append(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        self._maybe_fail("append")
        with self._atomic:
            blobs = self._container(container)
            self._check(container, name, if_none_match=if_none_match, if_match=if_match)
            existing = blobs.get(name)
            if existing is not None and existing.kind != "append":
                raise PreconditionFailed(f"{container}/{name} is a block blob, not an append blob")
            previous = existing.data if existing else b""
            stored = _StoredBlob(previous + bytes(data), self._new_etag(), self._clock(), "append")
            if existing is None:
                self._sorted.pop(container, None)
            blobs[name] = stored
        self._maybe_lose("append")
        return stored.etag

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        blobs = self._container(container)
        with self._atomic:
            names = self._names_in_order(container)
            start = bisect.bisect_left(names, prefix)
            snapshot = []
            for name in itertools.islice(names, start, None):
                if not name.startswith(prefix):
                    break
                snapshot.append((name, blobs[name]))
        for name, stored in snapshot:
            yield self._info(container, name, stored)

    def list_page(
        self, container: str, prefix: str = "", *, marker: str | None = None, limit: int = 5000
    ) -> tuple[list[BlobInfo], str | None]:
        blobs = self._container(container)
        with self._atomic:
            names = self._names_in_order(container)
            # the marker names the first blob of the next page
            index = bisect.bisect_left(names, max(prefix, marker or ""))
            page = []
            while index < len(names) and names[index].startswith(prefix) and len(page) < limit:
                page.append(self._info(container, names[index], blobs[names[index]]))
                index += 1
            more = index < len(names) and names[index].startswith(prefix)
        return page, names[index] if more else None

    def find(self, container: str, tag: str, value: str) -> Iterator[str]:
        self._maybe_fail("find")
        seen_by = self._clock() - timedelta(seconds=self.index_delay)
        with self._atomic:
            index = self._index.get(container, {})
            found = []
            for name, changes in index.items():
                indexed = [tags for when, tags in changes if when <= seen_by]
                if indexed and indexed[-1].get(tag) == value:
                    found.append(name)
        yield from sorted(found)

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        self._maybe_fail("delete")
        with self._atomic:
            blobs = self._container(container)
            if if_match is not None:
                self._check(container, name, if_none_match=False, if_match=if_match)
            if blobs.pop(name, None) is not None:
                self._changed(container, name, {}, new=True)

    def url(self, container: str, name: str) -> str:
        return f"memory://{container}/{name}"

    def close(self) -> None:
        self.closed = True

    # internals
    def _container(self, container: str) -> dict[str, _StoredBlob]:
        try:
            return self._containers[container]
        except KeyError:
            raise LookupError(f"container {container!r} does not exist") from None

    def _check(self, container: str, name: str, *, if_none_match: bool, if_match: str | None) -> None:
        existing = self._container(container).get(name)
        if if_none_match and existing is not None:
            raise PreconditionFailed(f"{container}/{name} already exists")
        if if_match is not None:
            if existing is None:
                raise PreconditionFailed(f"{container}/{name} no longer exists")
            if existing.etag != if_match:
                raise PreconditionFailed(f"{container}/{name} changed: {existing.etag} != {if_match}")

    def _names_in_order(self, container: str) -> list[str]:
        names = self._sorted.get(container)
        if names is None:
            names = self._sorted[container] = sorted(self._container(container))
        return names

    def _changed(self, container: str, name: str, tags: dict[str, str], *, new: bool) -> None:
        """Note a blob's new tags for the index (from now on), and a name come or gone for the listings."""
        if new:
            self._sorted.pop(container, None)
        index = self._index.setdefault(container, {})
        if name not in index and not tags:
            return  # never tagged: not in the index
        changes = index.setdefault(name, [])
        now = self._clock()
        changes.append((now, tags))
        shown = [
            i for i, (when, _) in enumerate(changes) if when <= now - timedelta(seconds=self.index_delay)
        ]
        del changes[: shown[-1] if shown else 0]  # older than what the index shows now: never seen again
        if not tags and len(changes) == 1:
            del index[name]  # untagged, and the index shows it so: nothing to find

    def _new_etag(self) -> str:
        return f'"0x8D{next(self._etags):012X}"'

    @staticmethod
    def _info(container: str, name: str, stored: _StoredBlob) -> BlobInfo:
        return BlobInfo(container, name, stored.etag, len(stored.data), stored.last_modified)


# --- training jobs --------------------------------------------------------------------------------------------


class FakeJobs(TrainingJobs, _FailureInjection):
    """Submitted jobs by run id; the test decides how each run ends with `complete` or `fail`."""

    def __init__(self) -> None:
        _FailureInjection.__init__(self)
        self.submitted: dict[str, TrainingJob] = {}
        self.statuses: dict[str, str] = {}
        self._results: dict[str, RunResults] = {}
        self._failures: dict[str, dict[str, Any]] = {}

    def submit(self, job: TrainingJob) -> None:
        self._maybe_fail("submit")
        if job.run_id in self.submitted:
            return  # idempotent by run id, as a job name is in Azure ML
        self.submitted[job.run_id] = job
        self.statuses[job.run_id] = "Queued"

    def status(self, run_id: str) -> str:
        return self.statuses.get(run_id, "NotFound")

    def results(self, run_id: str) -> RunResults:
        self._maybe_fail("results")
        try:
            return self._results[run_id]
        except KeyError:
            raise LookupError(f"run {run_id} has no results") from None

    def failure(self, run_id: str) -> dict[str, Any] | None:
        return self._failures.get(run_id) if self.statuses.get(run_id) == "Failed" else None

    # test controls
    def complete(self, run_id: str, evaluation: dict[str, Any], model_uri: str | None = None) -> RunResults:
        results = RunResults(run_id, evaluation, model_uri or f"memory://runs/{run_id}/model")
        self._results[run_id] = results
        self.statuses[run_id] = "Completed"
        return results

    def fail(self, run_id: str, status: str = "Failed", failure: dict[str, Any] | None = None) -> None:
        self.statuses[run_id] = status
        if failure is not None:
            self._failures[run_id] = failure


class FakeDriftJobs(DriftJobs, _FailureInjection):
    """Submitted drift checks by id; `run` executes the real check (`shared.drift_job.check`) in this process
    against the test's blob store, as the job would against the app's, and `fail` ends one as the backend
    would. `prediction` (or `scoring_error`) is what the champion model the job loads predicts."""

    def __init__(self) -> None:
        _FailureInjection.__init__(self)
        self.submitted: dict[str, DriftJob] = {}
        self.statuses: dict[str, str] = {}
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._job_failures: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.prediction: Any = 1.0
        self.scoring_error: Exception | None = None
        self.scored_rows = 0

    def submit(self, job: DriftJob) -> None:
        self._maybe_fail("submit")
        if job.check_id in self.submitted:
            return
        self.submitted[job.check_id] = job
        self.statuses[job.check_id] = "Queued"
        self._maybe_lose("submit")

    def status(self, check_id: str) -> str:
        return self.statuses.get(check_id, "NotFound")

    def cancel(self, check_id: str) -> None:
        self._maybe_fail("cancel")
        if self.statuses.get(check_id) in ("Queued", "Running"):
            self.statuses[check_id] = "Canceled"
            self.cancelled.append(check_id)

    def outcome(self, check_id: str) -> dict[str, Any]:
        self._maybe_fail("outcome")
        try:
            # as read back from the job's output file: JSON, not the objects the check built
            return json.loads(json.dumps(self._outcomes[check_id], default=str))
        except KeyError:
            raise LookupError(f"drift check {check_id} has no outcome") from None

    def failure(self, check_id: str) -> dict[str, Any] | None:
        return self._job_failures.get(check_id) if self.statuses.get(check_id) == "Failed" else None

    # test controls
    def run(self, check_id: str, blobs: BlobStore, settings: Settings, now: datetime) -> dict[str, Any]:
        from shared.drift_job import check
        from shared.drift_job.inputs import Context

        outcome = check.run(Context(blobs, settings, now, self._score), self.submitted[check_id])
        self._outcomes[check_id] = outcome
        self.statuses[check_id] = "Completed"
        return outcome

    def finished(self, check_id: str, outcome: Any) -> None:
        """The job ran elsewhere (its own process) and wrote `outcome`."""
        self._outcomes[check_id] = outcome
        self.statuses[check_id] = "Completed"

    def fail(self, check_id: str, status: str = "Failed", failure: dict[str, Any] | None = None) -> None:
        self.statuses[check_id] = status
        if failure is not None:
            self._job_failures[check_id] = failure

    def _score(self, frame: Any) -> list[Any]:
        if self.scoring_error is not None:
            raise self.scoring_error
        self.scored_rows += len(frame)
        return [self.prediction] * len(frame)


# --- model registry -------------------------------------------------------------------------------------------


RUN_TAG = "mlops.run_id"


class FakeRegistry(ModelRegistry, _FailureInjection):
    """Versions 1, 2, ... per model name. Registering looks the run up, then creates, in two steps as Azure ML
    does: a run registered again returns its version, announced once, but two registrations of one run that
    interleave (`before_once("create", ...)` runs between the look-up and the create) make two versions."""

    def __init__(self, clock: FakeClock | None = None, topic: str = WORKSPACE_TOPIC) -> None:
        _FailureInjection.__init__(self)
        self._clock = clock or FakeClock()
        self._topic = topic
        self.models: dict[str, list[ModelVersion]] = {}
        self.announced: list[ModelRegistered] = []
        self.artifacts: dict[tuple[str, str], str] = {}  # the hash of what was uploaded, by (name, version)

    def register(self, name: str, results: RunResults, tags: dict[str, str]) -> ModelVersion:
        existing = self.find_by_run(name, results.run_id)
        if existing is not None:
            return existing
        self._maybe_fail("create")
        versions = self.models.setdefault(name, [])
        model = ModelVersion(
            name=name,
            version=str(len(versions) + 1),
            tags={**tags, RUN_TAG: results.run_id},
            source=results.model_uri,
        )
        versions.append(model)
        uploaded = results.evaluation.get("model_sha256") if isinstance(results.evaluation, dict) else None
        if uploaded:
            self.artifacts[(name, model.version)] = str(uploaded)
        self.announced.append(self.announcement(model))
        return model

    def artifact_sha256(self, model: ModelVersion) -> str | None:
        return self.artifacts.get((model.name, model.version))

    def tamper(self, model: ModelVersion) -> None:
        """Test control: the registered files change after registration (what the integrity check is for)."""
        self.artifacts[(model.name, model.version)] = "0" * 64

    def find_by_run(self, name: str, run_id: str) -> ModelVersion | None:
        return next(iter(self.run_versions(name, run_id)), None)

    def run_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        found = [m for m in self.models.get(name, []) if m.tags.get(RUN_TAG) == run_id]
        return sorted(found, key=lambda m: int(m.version))

    def get(self, name: str, version: str) -> ModelVersion | None:
        return next((m for m in self.models.get(name, []) if m.version == str(version)), None)

    def announcement(self, model: ModelVersion) -> ModelRegistered:
        """The ModelRegistered event Azure ML would publish for `model`."""
        data = {"modelName": model.name, "modelVersion": model.version, "modelTags": dict(model.tags)}
        envelope = Envelope(
            id=str(uuid.uuid4()),
            event_type=MODEL_REGISTERED,
            topic=self._topic,
            subject=f"models/{model.id}",
            time=self._clock(),
            data=data,
        )
        return ModelRegistered(envelope, model.name, model.version, dict(model.tags), {})


# --- endpoints ------------------------------------------------------------------------------------------------


class FakeEndpoints(Endpoints, _FailureInjection):
    """One endpoint's deployments and traffic. New deployments start in `initial_state` ("Creating"); the
    test moves them on with `set_state`. Names, traffic and mirroring follow Azure's rules (`endpoint_rules`),
    as the local router and the Azure adapter do."""

    def __init__(self, initial_state: str = "Creating") -> None:
        _FailureInjection.__init__(self)
        self.initial_state = initial_state
        self._deployments: dict[str, Deployment] = {}
        self._traffic: dict[str, int] = {}
        self.scoring_error: Exception | None = None
        self.prediction: Any = 1.0
        self.payloads: list[dict[str, Any]] = []
        self._mirror: dict[str, int] = {}
        # What `stats` answers per deployment; tests set it with `set_stats`.
        self._stats: dict[str, dict[str, Any]] = {}
        self._cold: dict[str, list[float]] = {}  # seconds each of a deployment's next requests takes

    def begin_deployment(self, name: str, model: ModelVersion) -> None:
        self._maybe_fail("begin_deployment")
        rules.validate_name("deployment", name)
        if name in self._deployments:
            return
        self._deployments[name] = Deployment(name, model.id, self.initial_state)
        self._traffic.setdefault(name, 0)

    def deployment(self, name: str) -> Deployment | None:
        self._maybe_fail("deployment")
        return self._deployments.get(name)

    def deployments(self) -> list[Deployment]:
        self._maybe_fail("deployments")
        return [self._deployments[name] for name in sorted(self._deployments)]

    def traffic(self) -> dict[str, int]:
        return {name: self._traffic.get(name, 0) for name in sorted(self._deployments)}

    def set_traffic(self, traffic: dict[str, int]) -> None:
        self._maybe_fail("set_traffic")
        self._traffic = rules.validate_traffic(dict(traffic), set(self._deployments))
        self._mirror = rules.mirror_after_traffic(self._mirror, self._traffic)

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any:
        if deployment is not None and deployment not in self._deployments:
            raise LookupError(f"no deployment {deployment!r}")
        if deployment is None and not any(self._traffic.values()):
            raise LookupError("no deployment takes traffic")
        if self.scoring_error is not None:
            raise self.scoring_error
        if deployment is not None and self._cold.get(deployment):
            time.sleep(self._cold[deployment].pop(0))
        self.payloads.append(payload)
        rows = len(payload["input_data"]["data"])
        return [self.prediction] * rows

    def delete_deployment(self, name: str) -> None:
        self._maybe_fail("delete_deployment")
        if name not in self._deployments:
            return
        rules.check_deletable(name, self._traffic)
        if self._mirror.get(name):
            # As Azure: the endpoint is updated first, and the delete is asked for again later.
            self._mirror.pop(name)
            raise RuntimeError(
                f"deployment {name!r} was mirrored; mirroring is ending, delete it again after"
            )
        del self._deployments[name]
        self._traffic.pop(name, None)

    def set_mirror_traffic(self, mirror: dict[str, int]) -> None:
        self._maybe_fail("set_mirror_traffic")
        self._mirror = rules.validate_mirror(dict(mirror), self.traffic())

    def mirror_traffic(self) -> dict[str, int]:
        return dict(self._mirror)

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        self._maybe_fail("stats")
        empty = {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None}
        return self._stats.get(name, {**empty, "mirror": dict(empty)})

    # test controls
    def cold_start(self, name: str, requests: int, seconds: float) -> None:
        """The next `requests` requests to `name` take `seconds` each (a process loading its model)."""
        self._cold[name] = [seconds] * requests

    def set_state(self, name: str, state: str, detail: str = "") -> None:
        current = self._deployments[name]
        self._deployments[name] = Deployment(current.name, current.model, state, detail)

    def set_stats(self, name: str, requests: int = 0, errors: int = 0, p95_ms: float | None = None) -> None:
        """What `stats(name, ...)` answers from now on, whatever the window (live counts; no mirror)."""
        empty = {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None}
        self._stats[name] = {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "p95_ms": p95_ms if requests else None,
            "mirror": empty,
        }

    def set_mirror_stats(
        self, name: str, requests: int = 0, errors: int = 0, p95_ms: float | None = None
    ) -> None:
        """What `stats(name, ...)` answers for mirrored copies (as the local endpoint counts them apart)."""
        self.set_stats(name)
        self._stats[name]["mirror"] = {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "p95_ms": p95_ms if requests else None,
        }


# --- events ---------------------------------------------------------------------------------------------------


class FakePublisher(EventPublisher, _FailureInjection):
    def __init__(self) -> None:
        _FailureInjection.__init__(self)
        self.events: list[OutgoingEvent] = []

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        self._maybe_fail("publish")
        self.events.extend(events)


@dataclass(frozen=True)
class Posted:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float


class FakeWebhooks(Webhooks):
    """Webhooks that answer 200 unless told otherwise per URL (`answer(url, 500, WebhookError(...), ...)`, one
    answer per call, then 200), and take `slow[url]` seconds to answer: a call whose timeout is shorter fails
    as the real one does. Headers are checked as `requests` checks them (text without line breaks)."""

    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self._answers: dict[str, list[int | Exception]] = {}
        self.slow: dict[str, float] = {}

    def answer(self, url: str, *answers: int | Exception) -> None:
        self._answers.setdefault(url, []).extend(answers)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        if not isinstance(body, bytes):
            raise TypeError("the body must be bytes")
        for name, value in headers.items():
            if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                raise WebhookError(f"InvalidHeader: {name}")
        self.posted.append(Posted(url, body, dict(headers), timeout))
        if self.slow.get(url, 0.0) > timeout:
            raise WebhookError(f"ReadTimeout: no answer within {timeout} s")
        pending = self._answers.get(url)
        answer = pending.pop(0) if pending else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    def to(self, url: str) -> list[Posted]:
        return [post for post in self.posted if post.url == url]


# --- dependencies ---------------------------------------------------------------------------------------------


@dataclass
class FakeDeps(Deps):
    """`Deps` whose adapters are the fakes above, typed as such so tests can reach their state."""

    blobs: InMemoryBlobStore
    jobs: FakeJobs
    drift_jobs: FakeDriftJobs
    registry: FakeRegistry
    endpoints: FakeEndpoints
    publisher: FakePublisher
    webhooks: FakeWebhooks
    clock: FakeClock = field(default_factory=FakeClock)


TEST_SETTINGS = {
    "MLOPS_BACKEND": "local",
    "MLOPS_STORAGE_TOPIC": STORAGE_TOPIC,
    "MLOPS_WORKSPACE_TOPIC": WORKSPACE_TOPIC,
    "MLOPS_CUSTOM_TOPIC": CUSTOM_TOPIC,
    "MLOPS_MODEL_NAME": "mlops-model",
    "MLOPS_TASK": "regression",
    "MLOPS_TARGET_COLUMN": "target",
    "MLOPS_ABSOLUTE_GATES": "r2>=0.1",
    "MLOPS_MIN_ROWS": "10",
    "MLOPS_QUIET_PERIOD_SECONDS": "60",
    "MLOPS_MAX_WAIT_SECONDS": "900",
    "MLOPS_SMOKE_TEST_ROWS": "5",
    # release tests walk smoke test -> canary; the shadow stage has tests of its own
    "MLOPS_SHADOW_SECONDS": "0",
    # handler tests compare point estimates; the significance gate has tests of its own
    "MLOPS_REQUIRE_SIGNIFICANCE": "false",
}


def make_deps(
    blobs: BlobStore | None = None, *, clock: FakeClock | None = None, **settings_overrides: str
) -> FakeDeps:
    """Dependencies on fakes, with settings from `TEST_SETTINGS` and `MLOPS_*=value` overrides; `blobs`
    replaces the in-memory store (integration tests pass the real adapter on Azurite), `clock` the clock."""
    settings = Settings.from_env({**TEST_SETTINGS, **settings_overrides})
    clock = clock or FakeClock()
    blobs = blobs or InMemoryBlobStore(clock)
    blobs.ensure_containers(settings.containers.all())
    return FakeDeps(
        settings=settings,
        blobs=blobs,
        state=StateStore(blobs, settings.containers.state),
        audit=AuditLog(blobs, settings.containers.audit, clock),
        jobs=FakeJobs(),
        drift_jobs=FakeDriftJobs(),
        registry=FakeRegistry(clock, settings.topics.workspace),
        endpoints=FakeEndpoints(),
        publisher=FakePublisher(),
        webhooks=FakeWebhooks(),
        clock=clock,
    )
