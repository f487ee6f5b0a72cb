"""Which registered version a run stands for: the one its run record names (the lowest registered from it).

Two registrations of one run can race (a worker whose lease expired mid-registration and the one that took
over) and leave two versions in the registry. Only the version the run record names is ever released.
"""

from __future__ import annotations

from shared.deps import Deps
from shared.ports import ModelVersion
from shared.state import keys

RUN_TAG = "mlops.run_id"


def not_the_runs_version(model: ModelVersion, deps: Deps) -> str | None:
    """Why `model` must not be released (it is not the version its run names), or None. A version no run of
    this system registered is not this check's concern."""
    run_id = model.tags.get(RUN_TAG)
    stored = deps.state.get(keys.run(run_id)) if run_id else None
    if stored is None or stored.record.model_version == model.version:
        return None
    run = stored.record
    if run.model_version is None:
        return (
            f"run {run_id} names no model version yet ({run.status}); the version it names is released "
            "once it does"
        )
    return f"run {run_id} names version {run.model_version}; version {model.version} is a second registration"
