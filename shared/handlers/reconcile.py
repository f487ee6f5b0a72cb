"""The clock and the safety net. Each tick repairs what events did not:

- a landed data or label file whose BlobCreated never came is validated now;
- a content no landed version holds any more (overwritten or deleted, its event lost) is retracted;
- a file, run or release a crashed worker left half-done is finished (its lease has expired);
- the open training request starts once due; runs whose completion event never came are asked about, and
  stuck ones time out;
- a registered model whose ModelRegistered never came gets its release; releases move on.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.deps import Deps
from shared.domain.messages import BlobCreated, Envelope, RequestTraining
from shared.handlers import labels, release, training
from shared.handlers.data import on_blob_created, resume_file
from shared.handlers.retractions import retract_stale
from shared.handlers.training_requests import request_training
from shared.state import keys
from shared.state.lease import lease, needs_attention
from shared.state.records import RunStatus

log = logging.getLogger(__name__)
ACTOR = "reconcile"


def reconcile(deps: Deps) -> dict[str, Any]:
    steps = {
        "landing": lambda: sweep_landing(deps),
        "files": lambda: resume_files(deps),
        "retractions": lambda: len(retract_stale(deps, ACTOR)),
        "labels": lambda: labels.sweep(deps, ACTOR),
        "label_files": lambda: labels.resume_files(deps),
        "outboxes": lambda: flush_outboxes(deps),
        "runs": lambda: training.chase_runs(deps, ACTOR),
        "started": lambda: training.start_training_if_due(deps, ACTOR),
        "missing_releases": lambda: ensure_releases(deps),
        "releases": lambda: {rid: release.advance(rid, deps, ACTOR) for rid in release.active_releases(deps)},
    }
    outcome: dict[str, Any] = {}
    failures = []
    for name, step in steps.items():
        try:
            outcome[name] = step()
        except Exception as error:
            # One stuck part must not stop the others; the failure is raised after the rest has run.
            log.exception("reconcile step failed", extra={"step": name})
            failures.append(f"{name}: {type(error).__name__}: {error}")
    if failures:
        raise RuntimeError("reconcile: " + "; ".join(failures))
    return outcome


def sweep_landing(deps: Deps) -> int:
    """Handle landed blob versions that have no record: their BlobCreated was lost or has not come yet."""
    settings = deps.settings
    handled = 0
    known = {stored.key.path for stored in deps.state.list(keys.FILES)}
    for info in deps.blobs.list(settings.containers.landing):
        if keys.landed_file(info.name, info.etag).path in known:
            continue
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
        handled += 1
    return handled


def resume_files(deps: Deps) -> int:
    resumed = 0
    for stored in deps.state.list(keys.FILES):
        if stored.record.status.final and not stored.outbox:
            continue
        if not needs_attention(stored, deps.clock()):
            continue
        with lease(deps, stored.key) as held:
            if held is not None:
                resume_file(held, deps, ACTOR)
                resumed += 1
    return resumed


def flush_outboxes(deps: Deps) -> int:
    """Decisions a crashed worker committed but did not get into the audit log (leaving the lease records them)."""
    flushed = 0
    for prefix in (keys.RUNS, keys.RELEASES):
        for stored in deps.state.list(prefix):
            if stored.outbox and needs_attention(stored, deps.clock()):
                with lease(deps, stored.key) as held:
                    flushed += held is not None
    return flushed


def ensure_releases(deps: Deps) -> int:
    """A registered model whose ModelRegistered event was lost still gets its release."""
    started = 0
    for stored in deps.state.list(keys.RUNS):
        run = stored.record
        if run.status is not RunStatus.REGISTERED or not run.model_version:
            continue
        if deps.state.exists(keys.release(release.release_id(deps.settings.model_name, run.model_version))):
            continue
        model = deps.registry.get(deps.settings.model_name, run.model_version)
        if model is not None:
            release.start_release(model, f"reconcile:{run.run_id}", deps, ACTOR)
            started += 1
    return started


def scheduled_retrain(deps: Deps, tick_id: str) -> None:
    """A schedule asks for training; it runs only if there is data no model has been trained on yet."""
    request_training(RequestTraining("schedule", tick_id), deps, "scheduled_retrain")
