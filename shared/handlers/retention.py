"""Retention: how long what the app writes is kept, applied by the daily `retention` timer.

Blobs are kept for a number of days after they were last written (`MLOPS_RETAIN_*_DAYS`, 0 for ever): captured
traffic, reports, dead letters and quarantined files by their container; of the state, only the records of
landed file versions that left landing (quarantined, overwritten or deleted) and settled long ago, which no
event can bring back, and of drift checks closed past their deadline whose job's end was never announced.
Everything else stays: the records of files still in landing (they are what stops a file from being validated
twice), runs, releases, the catalog and dataset manifests (lineage), and the audit log, which is never deleted. Each deletion is conditional on the ETag listed, so a blob written again meanwhile is
kept; each run is one audit entry `retention.applied` with what it removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.deps import Deps
from shared.ports import PreconditionFailed
from shared.state import keys

log = logging.getLogger(__name__)
ACTOR = "retention"


@dataclass(frozen=True)
class Rule:
    """Blobs of `container` under `prefix` older than `days` go (0: kept for ever)."""

    what: str
    container: str
    days: float
    prefix: str = ""


def rules(deps: Deps) -> list[Rule]:
    kept, containers = deps.settings.retention, deps.settings.containers
    return [
        Rule("traffic", containers.inference, kept.traffic_days),
        Rule("reports", containers.reports, kept.reports_days),
        Rule("deadletter", containers.deadletter, kept.deadletter_days),
        Rule("quarantine", containers.quarantine, kept.quarantine_days),
        # a drift check closed past its deadline waits for its job's end; one never announced is let go
        Rule("overdue_drift_checks", containers.state, kept.state_days, keys.OVERDUE_DRIFT_CHECKS.path),
    ]


def apply_retention(deps: Deps, actor: str = ACTOR) -> dict[str, int]:
    """Delete what is past its retention; how many blobs went, by kind."""
    now = deps.clock()
    removed = {rule.what: _expire(deps, rule, now) for rule in rules(deps) if rule.days > 0}
    if deps.settings.retention.state_days > 0:
        removed["file_records"] = _expire_file_records(
            deps, now - timedelta(days=deps.settings.retention.state_days)
        )
    deps.audit.record(actor, "retention.applied", "retention", at=now.isoformat(), removed=removed)
    return removed


def _expire(deps: Deps, rule: Rule, now: datetime) -> int:
    cutoff = now - timedelta(days=rule.days)
    removed = 0
    for info in deps.blobs.list(rule.container, rule.prefix):
        if info.last_modified >= cutoff:
            continue
        try:
            deps.blobs.delete(rule.container, info.name, if_match=info.etag)
        except PreconditionFailed:
            continue  # written again since it was listed: it is new, not expired
        removed += 1
    log.info("retention", extra={"what": rule.what, "removed": removed})
    return removed


def _expire_file_records(deps: Deps, cutoff: datetime) -> int:
    """Records of file versions no longer in landing, settled before `cutoff`: no event can bring them back."""
    landing = {(info.name, info.etag) for info in deps.blobs.list(deps.settings.containers.landing)}
    removed = 0
    for stored in deps.state.list(keys.FILES):
        record = stored.record
        settled = record.status.final and not stored.outbox and stored.lease is None and stored.stuck is None
        if (
            not settled
            or (record.blob, record.etag) in landing
            or datetime.fromisoformat(record.at) >= cutoff
        ):
            continue
        try:
            deps.state.delete(stored.key, stored)
        except PreconditionFailed:
            continue
        removed += 1
    return removed
