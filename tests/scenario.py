"""One pass through the whole loop on fakes, step by step, so tests can break any step and compare outcomes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from shared.deps import Deps
from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.handlers.release import on_model_registered
from shared.handlers.training import on_run_completed
from shared.state import lease as workflow
from tests.builders import blob_created, run_completed
from tests.fakes import FakeDeps

MODEL = "mlops-model"

GOOD = b"x1,x2,target\n" + b"".join(f"{i},{(i * 7) % 5},{2.0 * i + 1}\n".encode() for i in range(30))
BAD = b"x1,x2\n1,2\n"
PASSING = {
    "primary_metric": "rmse",
    "greater_is_better": False,
    "challenger": {"r2": 0.9, "rmse": 3.0, "mae": 1.5},
    "champion": None,
}


Step = Callable[[Deps], Any]


def steps(base: FakeDeps) -> list[tuple[str, Step]]:
    """The loop as (name, handler invocation) pairs; each reads what it needs from the state so far."""

    def land_good(deps: Deps) -> None:
        on_blob_created(blob_created(base, "good.csv", "evt-good"), deps)

    def land_bad(deps: Deps) -> None:
        if base.blobs.info("landing", "bad.csv") is not None:
            on_blob_created(blob_created(base, "bad.csv", "evt-bad"), deps)

    def start_run(deps: Deps) -> None:
        reconciliation.reconcile(deps)

    def complete_run(deps: Deps) -> None:
        for run_id in list(base.jobs.submitted):
            if base.jobs.statuses[run_id] != "Completed":
                base.jobs.complete(run_id, PASSING)
            on_run_completed(run_completed(base, run_id), deps)

    def register(deps: Deps) -> None:
        for model in base.registry.models.get(MODEL, []):
            on_model_registered(base.registry.announcement(model), deps)

    def promote(deps: Deps) -> None:
        for deployment in base.endpoints.deployments():
            base.endpoints.set_state(deployment.name, "Succeeded")
        reconciliation.reconcile(deps)

    return [
        ("on_data_landed good", land_good),
        ("on_data_landed bad", land_bad),
        ("reconcile start", start_run),
        ("on_run_completed", complete_run),
        ("on_model_registered", register),
        ("reconcile promote", promote),
    ]


def prepare(deps: FakeDeps) -> None:
    deps.blobs.write("landing", "good.csv", GOOD)
    deps.blobs.write("landing", "bad.csv", BAD)


def recover(deps: FakeDeps, step: Step) -> None:
    """What the platform does after a failure: leases expire, Event Grid redelivers, reconcile ticks."""
    deps.clock.advance(workflow.LEASE_SECONDS + 1)
    step(deps)
    for _ in range(2):
        deps.clock.advance(deps.settings.runs.quiet_period_seconds + 1)
        reconciliation.reconcile(deps)


VOLATILE = {
    "lease",
    "at",
    "opened_at",
    "updated_at",
    "submitted_at",
    "finished_at",
    "since",
    "quarantined_at",
    "event_id",
    "completion_event",
    "mlops.run_completed_event",
    "history",
}


def snapshot(deps: FakeDeps) -> dict[str, Any]:
    """Everything a user could observe, minus times, random ids and who-did-it (a tick or a redelivery)."""
    return _normal(
        {
            "state": {
                info.name: json.loads(deps.blobs.read(info.container, info.name).data)
                for info in deps.blobs.list(deps.settings.containers.state)
            },
            "blobs": {
                c: sorted(deps.blobs.names(c)) for c in ("landing", "quarantine", "datasets", "reports")
            },
            "registry": [(m.version, m.tags) for m in deps.registry.models.get(MODEL, [])],
            "jobs": sorted(deps.jobs.submitted),
            "deployments": sorted((d.name, d.model) for d in deps.endpoints.deployments()),
            "traffic": deps.endpoints.traffic(),
            "audit": sorted(Counter((e.action, e.subject) for e in deps.audit.entries()).items()),
        }
    )


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"req-[0-9a-f]{12}", "req-*", value)
    return value
