"""Azure ML monitor runs whose breach was acted on: one record `drift/monitor-runs/<run>` per run, created by
its first alert, so that the run's later status changes (each tagged alike) ask for nothing more."""

from __future__ import annotations

from shared.state import keys
from shared.state.records import MonitorRun
from shared.state.store import StateStore


def first_alert(state: StateStore, alert: MonitorRun) -> MonitorRun:
    """The run's first alert: `alert` if it is the first (or a redelivery of the first), else the earlier one."""
    key = keys.monitor_run(alert.run_id)
    if state.create(key, alert) is not None:
        return alert
    stored = state.get(key)
    return stored.record if stored is not None else alert  # never deleted: get finds what create found
