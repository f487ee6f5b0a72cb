"""The interfaces handlers depend on. Each has an Azure adapter and a local adapter; tests use fakes.

Everything slow in Azure (jobs, deployments) is asynchronous here too: `submit` / `begin_deployment` return at
once, completion arrives as an event or is observed by the `reconcile` tick. No port method may block for long.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class PreconditionFailed(Exception):
    """A conditional write lost: the blob exists (if-none-match) or changed since it was read (if-match)."""


@dataclass(frozen=True)
class BlobInfo:
    container: str
    name: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class Blob:
    info: BlobInfo
    data: bytes


@dataclass(frozen=True)
class BlobStream:
    """One version of a blob, read a chunk at a time: memory stays bounded whatever its size. If the blob
    changes while its chunks are read, iterating raises PreconditionFailed (the chunks are of one version)."""

    info: BlobInfo
    chunks: Iterator[bytes]


class CopyPending(Exception):
    """A server-side copy was accepted but has not finished; asking again later finds it done."""


class BlobStore(Protocol):
    def ensure_containers(self, names: Sequence[str]) -> None: ...

    def read(self, container: str, name: str) -> Blob | None: ...

    def info(self, container: str, name: str) -> BlobInfo | None: ...

    def open(self, container: str, name: str) -> BlobStream | None:
        """The blob's current version as a stream of chunks, or None if absent."""
        ...

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
        """Copy a blob within the account on the server side: no byte passes through this process. With
        `source_etag`, only that version of the source; PreconditionFailed if the source changed or is gone,
        or (`if_none_match`) the target exists. CopyPending if the service has not finished the copy yet."""
        ...

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
        """Write a block blob and return its new ETag; raise PreconditionFailed if a condition fails. `tags`
        are the blob's index tags, in the same request; a write without them leaves the blob untagged."""
        ...

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]: ...

    def list_page(
        self, container: str, prefix: str = "", *, marker: str | None = None, limit: int = 5000
    ) -> tuple[list[BlobInfo], str | None]:
        """One page of a listing in name order, from `marker` (None: the start): at most `limit` blobs, and the
        marker of the next page (None after the last). A marker is opaque and stays valid across calls."""
        ...

    def find(self, container: str, tag: str, value: str) -> Iterator[str]:
        """The names of the blobs whose index tag `tag` is `value`. The index trails the writes (in Azure by
        under a second, minutes under heavy load): a blob written a moment ago may be missing, or found with
        the tags it had before."""
        ...

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        """Delete if present; with `if_match`, only if unchanged (else PreconditionFailed)."""
        ...

    def url(self, container: str, name: str) -> str: ...

    def close(self) -> None:
        """Close the connections."""
        ...


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    tags: dict[str, str]
    source: str

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class TrainingJob:
    """Everything a training run needs; the run id is the job's name and its idempotency key."""

    run_id: str
    dataset_version: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    champion: ModelVersion | None = None
    tags: dict[str, str] = field(default_factory=dict)
    trace: str | None = None  # the run's W3C traceparent, passed into the job as TRACEPARENT


@dataclass(frozen=True)
class RunResults:
    run_id: str
    evaluation: dict[str, Any]
    model_uri: str


class TrainingJobs(Protocol):
    def submit(self, job: TrainingJob) -> None:
        """Start the run (idempotent by run id). Completion is announced by a RunCompleted event."""
        ...

    def status(self, run_id: str) -> str:
        """One of Queued, Running, Completed, Failed, Canceled, NotFound."""
        ...

    def results(self, run_id: str) -> RunResults: ...

    def failure(self, run_id: str) -> dict[str, Any] | None:
        """Why a failed run failed, when the backend knows: `stage` (environment, command, model, evaluation,
        inputs), `reason`, and the tail of the log (`log_tail`); None otherwise."""
        ...


@dataclass(frozen=True)
class DriftJob:
    """One run of the drift check, as a job in the training environment: what it compares is fixed here (the
    champion in production, its deployment's captured traffic, its dataset version); the job's id is its name."""

    check_id: str
    model: ModelVersion
    deployment: str
    dataset_version: str
    trace: str | None = None


class DriftJobs(Protocol):
    def submit(self, job: DriftJob) -> None:
        """Start the check (idempotent by check id). Completion is announced by a RunCompleted event, as a
        training run's is."""
        ...

    def status(self, check_id: str) -> str:
        """One of Queued, Running, Completed, Failed, Canceled, NotFound."""
        ...

    def outcome(self, check_id: str) -> dict[str, Any]:
        """What the finished check wrote (`shared.drift_job.check`); LookupError when there is nothing."""
        ...

    def failure(self, check_id: str) -> dict[str, Any] | None:
        """Why a failed check failed (`reason`, `log_tail`), when the backend knows; None otherwise."""
        ...

    def cancel(self, check_id: str) -> None:
        """Ask the backend to stop the check's job (its status becomes Canceled); nothing when the job has ended
        or is unknown."""
        ...


class ModelRegistry(Protocol):
    def register(self, name: str, results: RunResults, tags: dict[str, str]) -> ModelVersion:
        """Register the run's model; the registry announces ModelRegistered. A run registered already keeps its
        version, but the look-up and the create are two calls: two registrations of one run at once can make
        two versions (the lowest is the run's, `find_by_run`)."""
        ...

    def find_by_run(self, name: str, run_id: str) -> ModelVersion | None:
        """The run's version: the lowest registered from it, None if none is."""
        ...

    def run_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        """Every version registered from the run, lowest first (more than one only if registrations raced)."""
        ...

    def get(self, name: str, version: str) -> ModelVersion | None: ...

    def artifact_sha256(self, model: ModelVersion) -> str | None:
        """The content hash of the registered model's files, as the training job hashed the model it evaluated
        (`shared.training.provenance.folder_sha256`); None when this backend cannot read them."""
        ...


@dataclass(frozen=True)
class Deployment:
    name: str
    model: str
    state: str  # Creating, Succeeded, Failed
    detail: str = ""


class Endpoints(Protocol):
    def begin_deployment(self, name: str, model: ModelVersion) -> None:
        """Create a deployment with 0 % traffic (idempotent by name); progress is read with `deployment`."""
        ...

    def deployment(self, name: str) -> Deployment | None: ...

    def deployments(self) -> list[Deployment]: ...

    def traffic(self) -> dict[str, int]: ...

    def set_traffic(self, traffic: dict[str, int]) -> None: ...

    def invoke(self, payload: dict[str, Any], deployment: str | None = None) -> Any: ...

    def delete_deployment(self, name: str) -> None: ...

    def set_mirror_traffic(self, mirror: dict[str, int]) -> None:
        """Copy a share of the requests routed by traffic weight to one deployment and discard its answers
        (shadow testing). Replaces the whole setting; `{}` or 0 % ends it. ValueError, as Azure refuses, for
        more than one deployment, a share outside 0-50 %, an unknown deployment, or one with live traffic.
        Giving the mirrored deployment live traffic later (`set_traffic`) ends its mirroring."""
        ...

    def mirror_traffic(self) -> dict[str, int]:
        """The mirrored deployment and its share, e.g. {"green": 10}; {} when nothing is mirrored."""
        ...

    def stats(self, name: str, since_seconds: float) -> dict[str, Any]:
        """What deployment `name` answered in the last `since_seconds`:
        {"requests": int, "errors": int (answers other than 200), "error_rate": float (0.0 without requests),
        "p95_ms": float | None (None without requests), "mirror": {the same keys, for mirrored copies}}.
        An unknown deployment has zero requests."""
        ...


@dataclass(frozen=True)
class OutgoingEvent:
    event_type: str
    subject: str
    data: dict[str, Any]
    id: str = ""


class EventPublisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent]) -> None: ...


class TokenRefused(Exception):
    """A bearer token that does not prove who sent it: expired, for another audience, badly signed. The message
    says which, for the caller and the audit log."""


class TokenKeysUnavailable(Exception):
    """The tenant's signing keys could not be fetched: no token can be checked until they can."""


class TokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token that is valid now (issuer, audience, signature, lifetime), else TokenRefused;
        TokenKeysUnavailable when the keys to check it with cannot be had."""
        ...


class WebhookError(Exception):
    """A webhook could not be called: unreachable, too slow, or the request could not be made."""


class Webhooks(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """POST `body` to `url`, waiting at most `timeout` seconds: the HTTP status of the answer, or
        WebhookError when there was none."""
        ...
