"""Every state key, built here and nowhere else. A key knows the record kind stored under it.

    files/<hash of blob name and ETag>   LandedFile        runs/<run id>             Run
    catalog/<sha256>                     CatalogEntry      releases/<release id>     Release
    training/requests/<hash of event>    TrainingCause     production/<model name>   Production
    training/waiting                     WaitingNote       drift/cooldown/<model>    Cooldown
    datasets/schema                      FrozenSchema      quality/cooldown/<model>  Cooldown
    labels/files/<hash of name and ETag> LabelFile         quality/checks/<model>    QualityCheck
    sweeps/<pass>                        SweepCursor
    drift/checks/<model>                 DriftCheck
    drift/monitor-runs/<hash of run id>  MonitorRun        release-owner/<model>     ReleaseOwner
    notify/deliveries/<hash of event, url> Delivery        notify/cooldown/<kind>    NotifyCooldown
    notify/quarantined/<hash of file key> QuarantineNote

Prefixes never nest: listing one kind never returns another.

Open work is indexed: a file, label file, run or release that a tick may have to act on carries the index tag
`open` (its prefix) in the very write that opens or changes it, and loses it in the write that settles it. A
tick asks the index for what is open instead of listing the history (`StateStore.open`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.state.records import (
    CatalogEntry,
    Cooldown,
    Delivery,
    DeliveryStatus,
    DriftCheck,
    FrozenSchema,
    LabelFile,
    LandedFile,
    MonitorRun,
    NotifyCooldown,
    Production,
    QualityCheck,
    QuarantineNote,
    Release,
    ReleaseOwner,
    Run,
    RunStatus,
    SweepCursor,
    TrainingCause,
    WaitingNote,
)

R = TypeVar("R")


@dataclass(frozen=True)
class Key(Generic[R]):
    path: str
    kind: type[R]

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class Prefix(Generic[R]):
    path: str
    kind: type[R]
    # for indexed kinds: whether a record (without lease, outbox or failures) is still open work
    open_when: Callable[[Any], bool] | None = None

    @property
    def tag(self) -> str:
        """The value of the `open` index tag its open records carry."""
        return self.path.rstrip("/")

    def key(self, name: str) -> Key[R]:
        return Key(f"{self.path}{name}", self.kind)


def _run_open(run: Run) -> bool:
    """In flight, a failure waiting for its retry, or a registered model whose release was not yet seen."""
    registered = run.status is RunStatus.REGISTERED and run.model_version and not run.released
    return (
        run.status.in_flight
        or (run.status is RunStatus.FAILED and run.retry_at is not None)
        or bool(registered)
    )


FILES = Prefix("files/", LandedFile, lambda file: not file.status.final)
CATALOG = Prefix("catalog/", CatalogEntry)
CAUSES = Prefix("training/requests/", TrainingCause)
RUNS = Prefix("runs/", Run, _run_open)
RELEASES = Prefix("releases/", Release, lambda release: release.status.active)
PRODUCTIONS = Prefix("production/", Production)
RELEASE_OWNERS = Prefix("release-owner/", ReleaseOwner)
COOLDOWNS = Prefix("drift/cooldown/", Cooldown)
MONITOR_RUNS = Prefix("drift/monitor-runs/", MonitorRun)
DRIFT_CHECKS = Prefix("drift/checks/", DriftCheck)
OVERDUE_DRIFT_CHECKS = Prefix("drift/overdue/", DriftCheck)  # closed past the deadline, their end not seen
QUALITY_COOLDOWNS = Prefix("quality/cooldown/", Cooldown)
LABEL_FILES = Prefix("labels/files/", LabelFile, lambda file: not file.status.final)
QUALITY_CHECKS = Prefix("quality/checks/", QualityCheck)

DELIVERIES = Prefix(
    "notify/deliveries/", Delivery, lambda delivery: delivery.status is DeliveryStatus.PENDING
)
NOTIFY_COOLDOWNS = Prefix("notify/cooldown/", NotifyCooldown)
QUARANTINE_NOTES = Prefix("notify/quarantined/", QuarantineNote)

INDEXED = {prefix.kind: prefix for prefix in (FILES, LABEL_FILES, RUNS, RELEASES, DELIVERIES)}

SWEEPS = Prefix("sweeps/", SweepCursor)

WAITING = Key("training/waiting", WaitingNote)
SCHEMA = Key("datasets/schema", FrozenSchema)


def sweep(name: str) -> Key[SweepCursor]:
    return SWEEPS.key(name)


def landed_file(blob_name: str, etag: str) -> Key[LandedFile]:
    """One record per blob version: a file overwritten in landing is a new file."""
    return FILES.key(_digest(f"{blob_name}\n{etag}"))


def catalog_entry(sha256: str) -> Key[CatalogEntry]:
    return CATALOG.key(sha256)


def training_cause(event_id: str) -> Key[TrainingCause]:
    return CAUSES.key(_digest(event_id))


def run(run_id: str) -> Key[Run]:
    return RUNS.key(run_id)


def release(release_id: str) -> Key[Release]:
    return RELEASES.key(release_id)


def production(model_name: str) -> Key[Production]:
    return PRODUCTIONS.key(model_name)


def release_owner(model_name: str) -> Key[ReleaseOwner]:
    return RELEASE_OWNERS.key(model_name)


def drift_cooldown(model_name: str) -> Key[Cooldown]:
    return COOLDOWNS.key(model_name)


def drift_check(model_name: str) -> Key[DriftCheck]:
    return DRIFT_CHECKS.key(model_name)


def overdue_drift_check(check_id: str) -> Key[DriftCheck]:
    return OVERDUE_DRIFT_CHECKS.key(check_id)


def monitor_run(run_id: str) -> Key[MonitorRun]:
    return MONITOR_RUNS.key(_digest(run_id))


def quality_cooldown(model_name: str) -> Key[Cooldown]:
    return QUALITY_COOLDOWNS.key(model_name)


def label_file(blob_name: str, etag: str) -> Key[LabelFile]:
    """One record per version of a label file, as for landed data files."""
    return LABEL_FILES.key(_digest(f"{blob_name}\n{etag}"))


def quality_check(model_name: str) -> Key[QualityCheck]:
    return QUALITY_CHECKS.key(model_name)


def delivery(event_id: str, target: str) -> Key[Delivery]:
    """One record per notification and webhook (`target`: the URL's digest, `url_digest`)."""
    return DELIVERIES.key(_digest(f"{event_id}\n{target}"))


def url_digest(url: str) -> str:
    return _digest(url)


def notify_cooldown(kind: str) -> Key[NotifyCooldown]:
    return NOTIFY_COOLDOWNS.key(kind)


def quarantine_note(file_key: Key[LandedFile] | Key[LabelFile]) -> Key[QuarantineNote]:
    return QUARANTINE_NOTES.key(_digest(file_key.path))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
