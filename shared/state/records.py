"""The state records: one frozen dataclass per kind, one `StrEnum` per state machine.

A record says what is true of one flow (a landed file, a run, a release); the store adds its ETag, the lease and
the outbox around it (`shared.state.store.Stored`). Payloads that come whole from elsewhere (a manifest, an
evaluation written by the training job, validation problems, gate verdicts) stay plain JSON objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Json = dict[str, Any]


# --- landed files -------------------------------------------------------------------------------------------------


class FileStatus(StrEnum):
    ACCEPTING = "accepting"
    QUARANTINING = "quarantining"
    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"

    @property
    def final(self) -> bool:
        return self in (FileStatus.ACCEPTED, FileStatus.QUARANTINED)


@dataclass(frozen=True)
class LandedFile:
    """One version of one landed blob, from validation to a dataset version or quarantine."""

    blob: str
    etag: str
    event_id: str
    sha256: str
    rows: int
    at: str
    status: FileStatus
    reasons: tuple[str, ...] = ()
    problems: tuple[Json, ...] = ()
    path: str | None = None  # where the accepted file is stored, by content hash


@dataclass(frozen=True)
class FrozenSchema:
    """The data schema every file is validated against: declared, or learned from the first good file."""

    columns: dict[str, str]
    spec: Json
    source: str  # declared | learned
    learned_from: str
    at: str


@dataclass(frozen=True)
class FileVersion:
    """One version of one landed blob: its name and ETag."""

    name: str
    etag: str


@dataclass(frozen=True)
class Retraction:
    """Why a content left the catalog: every landed version holding it was overwritten or deleted.
    `reason` is `overwritten` or `deleted`; `why` says it for people ("overwritten by etag X", "deleted at T")."""

    reason: str
    why: str
    at: str
    event_id: str
    by_etag: str | None = None  # the version that overwrote it


@dataclass(frozen=True)
class CatalogEntry:
    """An accepted file's content, which every later dataset version includes while a landed version holds it:
    the newest version of a name wins, and a content no version holds any more is retracted."""

    sha256: str
    name: str
    rows: int
    path: str
    event_id: str
    dataset_version: str | None = None  # the first version it joined
    etag: str = ""  # the version of `name` it came from ("" in entries older than retractions)
    holders: tuple[FileVersion, ...] = ()  # other accepted versions with the same content
    retracted: Retraction | None = None

    def versions(self) -> tuple[FileVersion, ...]:
        return (FileVersion(self.name, self.etag), *self.holders)


@dataclass(frozen=True)
class SweepCursor:
    """Where a tick's pass over a container stands. A pass reads one page per tick from `marker`; blobs last
    changed before `since` were looked at by an earlier pass and are skipped. `started` is when this pass began
    (the next pass's `since`)."""

    marker: str | None = None
    started: str | None = None
    since: str | None = None


# --- training -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingCause:
    """One reason to train (a file, a drift, a schedule, degraded quality, a person, new code), open until a run
    answers it. `cause` is `data`, `drift`, `monitor:<signal>`, `schedule`, `performance`, `manual` or `code`."""

    cause: str
    event: str
    at: str
    detail: Json = field(default_factory=dict)


@dataclass(frozen=True)
class WaitingNote:
    """Why the open training request cannot start yet (recorded once per reason)."""

    reason: str


@dataclass(frozen=True)
class TrainingRequest:
    """The open causes seen as one request; its id derives from its first event. Derived, never stored alone."""

    id: str
    opened_at: str
    updated_at: str
    causes: tuple[str, ...]
    events: tuple[str, ...]
    details: tuple[TrainingCause, ...] = ()
    waiting: str | None = None


@dataclass(frozen=True)
class RunRequest:
    """What a run answers: the request's id, its causes and their events."""

    id: str
    causes: tuple[str, ...]
    events: tuple[str, ...]


class RunStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    COMPLETING = "completing"
    REGISTERED = "registered"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def in_flight(self) -> bool:
        return self in (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.COMPLETING)


@dataclass(frozen=True)
class Run:
    """A training run on one dataset version: starting -> running -> completing -> registered|rejected|failed."""

    run_id: str
    status: RunStatus
    dataset_version: str
    manifest: Json
    request: RunRequest
    champion: str | None
    submitted_at: str
    finished_at: str | None = None
    completion_event: str | None = None
    backend_status: str | None = None
    gates: Json | None = None
    evaluation: Json | None = None
    model_version: str | None = None
    code: Json | None = None  # the content hashes of the training code and environment (the run's key)
    failure: Json | None = None  # why a failed run failed (stage, reason, the log's tail), when the job says
    attempt: int = 1  # which try at answering its request (a retry after a failure is the next)
    retry_at: str | None = (
        None  # a failed run with tries left is tried again from then, unless a later run came
    )
    released: bool = False  # a registered model whose release was seen to exist
    trace: str | None = None  # the W3C traceparent of its start: its completion and release join that trace


# --- releases -----------------------------------------------------------------------------------------------------


class ReleaseStatus(StrEnum):
    DEPLOYING = "deploying"
    SMOKE_TESTING = "smoke_testing"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    SHADOW = (
        "shadow"  # mirrored copies of production's requests, answers discarded, compared with production's
    )
    CANARY = "canary"
    PROMOTING = "promoting"
    ROLLING_BACK = "rolling_back"
    PRODUCTION = "production"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STUCK = "stuck"  # its rollback did not finish in time: a person has to look (its audit entry says what)

    @property
    def active(self) -> bool:
        """On its way: it holds a deployment that may still reach production."""
        return self in _ACTIVE_RELEASES


_ACTIVE_RELEASES = frozenset(
    {
        ReleaseStatus.DEPLOYING,
        ReleaseStatus.SMOKE_TESTING,
        ReleaseStatus.AWAITING_APPROVAL,
        ReleaseStatus.APPROVED,
        ReleaseStatus.SHADOW,
        ReleaseStatus.CANARY,
        ReleaseStatus.PROMOTING,
        ReleaseStatus.ROLLING_BACK,
    }
)


@dataclass(frozen=True)
class ReleaseStep:
    """One status a release entered, when, and the evidence or reason that moved it there."""

    status: ReleaseStatus
    at: str
    detail: Json = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """One model version's way from registry to production (see shared.handlers.release)."""

    id: str
    model: str
    version: str
    deployment: str
    status: ReleaseStatus
    event_id: str
    history: tuple[ReleaseStep, ...] = ()
    trace: str | None = None  # the trace of the run that trained its model (shared.telemetry)

    @property
    def entered_at(self) -> str:
        return self.history[-1].at

    def last_reason(self) -> str:
        return next((str(s.detail["reason"]) for s in reversed(self.history) if s.detail.get("reason")), "")


@dataclass(frozen=True)
class Production:
    """What serves production, since when, and what served before it (the rollback target)."""

    model: str
    version: str
    deployment: str
    release: str
    since: str
    previous: Production | None = None

    @property
    def model_id(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass(frozen=True)
class ReleaseOwner:
    """The one release that may change a model's endpoint traffic and production pointer: the newest admitted.
    Ownership only moves to newer versions, so a release that lost it never gets it back."""

    model: str
    release: str
    version: str
    since: str


# --- cooldowns ----------------------------------------------------------------------------------------------------


class DriftCheckStatus(StrEnum):
    RUNNING = "running"  # submitted: its job's completion (or the next timer) settles it
    FINISHED = "finished"  # its verdict recorded (and published when it drifted)
    FAILED = "failed"  # the job failed, or its outcome could not be recorded
    TIMED_OUT = "timed_out"  # past its deadline: its job cancelled, its late end recorded only


@dataclass(frozen=True)
class DriftCheck:
    """The latest drift check of a model: the job that computes it and what it compares, kept while it runs so
    its completion, or the next timer when the event was lost, records the verdict once."""

    check_id: str
    model: str  # name:version of the champion compared
    deployment: str
    dataset_version: str
    status: DriftCheckStatus
    submitted_at: str
    finished_at: str | None = None
    trace: str | None = None
    reason: str | None = None  # why it failed or timed out


@dataclass(frozen=True)
class MonitorRun:
    """An Azure ML monitor run whose breach alert was acted on, by its first event: every later status change of
    the same run carries the same tag and asks for nothing more."""

    run_id: str
    event: str
    signal: str
    at: str


@dataclass(frozen=True)
class Cooldown:
    """The event whose retraining request covers later events of the same cause (drift, degraded quality) for
    the same model version until `until`."""

    event: str
    model_version: str
    requested_at: str
    until: str


# --- ground truth and quality -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelFile:
    """One version of one label file, from validation and matching to the labels store or quarantine (the same
    state machine as a landed data file)."""

    blob: str
    etag: str
    event_id: str
    sha256: str
    rows: int
    at: str
    status: FileStatus
    column: str = ""  # the column holding the true values
    matched: int = 0  # labels whose correlation id names a row served in the quality window
    unmatched: int = 0
    reasons: tuple[str, ...] = ()
    problems: tuple[Json, ...] = ()
    stored: tuple[str, ...] = ()  # the labels store's blobs it wrote


class CheckStatus(StrEnum):
    MEASURING = "measuring"
    DECIDED = "decided"  # verdicts recorded; the effects they call for may still be under way
    DONE = "done"


@dataclass(frozen=True)
class QualityCheck:
    """The latest quality check of a model: its id and window, kept while it runs so a retry repeats the same
    check (same id, same window, same effects), and after it as the start of the next one's feedback."""

    id: str
    model: str
    since: str
    until: str
    feedback_since: str  # labels accepted after this (the previous check's end) are new to the landing flow
    status: CheckStatus
    versions: tuple[Json, ...] = ()  # per model version: the live metric, interval, offline metric, verdict


# --- notifications ------------------------------------------------------------------------------------------------


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not yet answered with a 2xx: the reconcile tick calls again from `next_at`
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"


@dataclass(frozen=True)
class Delivery:
    """One notification to one webhook (named by `target`, a digest of its URL: the URL itself is a secret).
    The event's fields are kept so a retry renders the same message."""

    event_id: str
    event_type: str
    subject: str
    time: str
    data: Json
    target: str
    host: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    suppressed: int = 0
    calls: int = 0  # calls made while the event was handled and by the tick
    retries: int = 0  # the tick's calls
    next_at: str | None = None
    last_error: str = ""


@dataclass(frozen=True)
class NotifyCooldown:
    """The last notification of a kind sent, until when others of the kind are held back, and how many were.
    `carried` is what the holder was told of (so a redelivery of it says the same)."""

    event: str
    until: str
    carried: int = 0
    suppressed: int = 0
    first_suppressed: str = ""


@dataclass(frozen=True)
class QuarantineNote:
    """A file quarantined and not yet summarised in a `MLOps.FilesQuarantined` notification."""

    blob: str
    at: str
    reasons: tuple[str, ...] = ()
