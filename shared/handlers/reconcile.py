"""The clock and the safety net. Each tick repairs what events did not:

- a landed data or label file whose BlobCreated never came is validated now;
- a content no landed version holds any more (overwritten or deleted, its event lost) is retracted;
- a file, run or release a crashed worker left half-done is finished (its lease has expired);
- the open training request starts once due; runs whose completion event never came are asked about, and
  stuck ones time out, and so is a drift check's job;
- a registered model whose ModelRegistered never came gets its release; releases move on;
- the endpoint's traffic is brought back to what the production record says (a stalled worker's late call);
- a burst of quarantined files, once over, is announced in one event; failed notifications are sent again.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from shared.deps import Deps
from shared.domain.messages import BlobCreated, Envelope, RequestTraining
from shared.handlers import drift_check, labels, notify, release, training
from shared.handlers.data import on_blob_created, resume_file
from shared.handlers.isolation import ItemsFailed, each
from shared.handlers.retractions import check_retractions
from shared.handlers.sweeps import sweep_changed
from shared.handlers.training_requests import request_training
from shared.ports import BlobInfo
from shared.state import keys
from shared.state.lease import lease, needs_attention
from shared.state.records import LandedFile, Run, RunStatus, SweepCursor
from shared.state.store import Stored

log = logging.getLogger(__name__)
ACTOR = "reconcile"
SWEEP_THREADS = 4  # existence checks of a sweep page in flight at once (the storage SDK's own parallelism)


def reconcile(deps: Deps) -> dict[str, Any]:
    steps = {
        "index": lambda: index_open_work(deps),
        "landing": lambda: sweep_landing(deps),
        "files": lambda: resume_files(deps),
        "retractions": lambda: len(check_retractions(deps, ACTOR)),
        "labels": lambda: labels.sweep(deps, ACTOR),
        "label_files": lambda: labels.resume_files(deps),
        "outboxes": lambda: flush_outboxes(deps),
        "runs": lambda: training.chase_runs(deps, ACTOR),
        "drift_check": lambda: drift_check.settle_drift_check(deps, ACTOR) is not None,
        "started": lambda: training.start_training_if_due(deps, ACTOR),
        "missing_releases": lambda: ensure_releases(deps),
        "releases": lambda: advance_releases(deps),
        "traffic": lambda: release.converge_traffic(deps, ACTOR),
        "quarantined": lambda: notify.summarise_quarantined(deps, ACTOR),
        "notifications": lambda: notify.retry_deliveries(deps, ACTOR),
    }
    outcome: dict[str, Any] = {}
    failures = []
    for name, step in steps.items():
        try:
            outcome[name] = step()
        except ItemsFailed as failed:  # the step handled every other item; these are counted on their records
            outcome[name] = failed.handled
            failures += [f"{name}: {failure}" for failure in failed.failures]
        except Exception as error:
            # One stuck part must not stop the others; the failure is raised after the rest has run.
            log.exception("reconcile step failed", extra={"step": name})
            failures.append(f"{name}: {type(error).__name__}: {error}")
    if failures:
        raise RuntimeError("reconcile: " + "; ".join(failures))
    return outcome


def index_open_work(deps: Deps) -> int:
    """Once: tag the open records written before the index of open work existed (the ticks read only it)."""
    marker = keys.sweep("index")
    if deps.state.exists(marker):
        return 0
    tagged = sum(deps.state.reindex(prefix) for prefix in keys.INDEXED.values())
    deps.state.create(marker, SweepCursor())
    return tagged


def sweep_landing(deps: Deps) -> int:
    """Handle landed blob versions that have no record: their BlobCreated was lost or has not come yet."""
    settings = deps.settings

    def handle(info: BlobInfo) -> bool:
        if deps.state.exists(keys.landed_file(info.name, info.etag)):
            return False
        envelope = Envelope(
            id=f"reconcile:{uuid.uuid4()}",
            event_type="reconcile",
            topic=settings.topics.storage,
            subject=f"/blobServices/default/containers/{info.container}/blobs/{info.name}",
            time=datetime.now(UTC),
            data={},
        )
        message = BlobCreated(
            envelope,
            info.container,
            info.name,
            deps.blobs.url(info.container, info.name),
            info.etag,
            info.size,
            "",
        )
        on_blob_created(message, deps, ACTOR)
        return True

    def handle_page(changed: list[BlobInfo]) -> int:
        unknown = [info for info, known in zip(changed, _recorded(deps, changed), strict=True) if not known]
        return each(unknown, handle, lambda info: f"{info.container}/{info.name}")

    return sweep_changed(deps, "landing", settings.containers.landing, handle_page)


def _recorded(deps: Deps, changed: list[BlobInfo]) -> list[bool]:
    """Whether each blob version has its record, asked SWEEP_THREADS at a time: a page is mostly known files, and
    one existence check after another is the storage's latency times the page. A check that fails counts as no
    record: `handle` looks again, and reports the failure with the item."""

    def known(info: BlobInfo) -> bool:
        try:
            return deps.state.exists(keys.landed_file(info.name, info.etag))
        except Exception:  # `handle` looks again, and reports the failure with the item
            return False

    if len(changed) < 2:
        return [known(info) for info in changed]
    with ThreadPoolExecutor(max_workers=SWEEP_THREADS, thread_name_prefix="sweep") as pool:
        return list(pool.map(known, changed))


def resume_files(deps: Deps) -> int:
    def resume(stored: Stored[LandedFile]) -> bool:
        with lease(deps, stored.key) as held:
            if held is not None:
                resume_file(held, deps, ACTOR)
        return held is not None

    waiting = (stored for stored in deps.state.open(keys.FILES) if needs_attention(stored, deps.clock()))
    return each(waiting, resume, lambda stored: stored.key.path)


def flush_outboxes(deps: Deps) -> int:
    """Decisions a crashed worker committed but did not get into the audit log (leaving the lease records them)."""

    def flush(stored: Stored[Any]) -> bool:
        with lease(deps, stored.key) as held:
            return held is not None

    waiting = (
        stored
        for prefix in (keys.RUNS, keys.RELEASES)
        for stored in deps.state.open(prefix)
        if stored.outbox and needs_attention(stored, deps.clock())
    )
    return each(waiting, flush, lambda stored: stored.key.path)


def ensure_releases(deps: Deps) -> int:
    """A registered model whose ModelRegistered event was lost still gets its release."""

    def ensure(run: Run) -> bool:
        started = False
        if not deps.state.exists(
            keys.release(release.release_id(deps.settings.model_name, run.model_version))
        ):
            model = deps.registry.get(deps.settings.model_name, run.model_version)
            if model is None:
                return False  # asked again next tick
            release.start_release(model, f"reconcile:{run.run_id}", deps, ACTOR)
            started = True
        with lease(deps, keys.run(run.run_id)) as held:  # its release exists: the run is settled
            if held is not None and not held.record.released:
                held.change(dataclasses.replace(held.record, released=True))
        return started

    registered = (
        stored.record
        for stored in deps.state.open(keys.RUNS)
        if stored.record.status is RunStatus.REGISTERED and stored.record.model_version
    )
    return each(registered, ensure, lambda run: f"runs/{run.run_id}")


def advance_releases(deps: Deps) -> dict[str, str]:
    moved: dict[str, str] = {}

    def advance(rid: str) -> bool:
        moved[rid] = release.advance(rid, deps, ACTOR)
        return True

    each(release.active_releases(deps), advance, lambda rid: f"releases/{rid}")
    return moved


def scheduled_retrain(deps: Deps, tick_id: str) -> None:
    """A schedule asks for training; it runs only if there is data no model has been trained on yet."""
    request_training(RequestTraining("schedule", tick_id), deps, "scheduled_retrain")
