"""The clock and safety net: start due training, chase runs whose events never came, advance releases."""

from __future__ import annotations

import logging
from typing import Any

from shared.bootstrap import Deps
from shared.handlers import release, training
from shared.handlers.requests import request_training
from shared.messages import RequestTraining

log = logging.getLogger(__name__)
ACTOR = "reconcile"


def reconcile(deps: Deps) -> dict[str, Any]:
    training.time_out_stuck_runs(deps, ACTOR)
    started = training.start_training_if_due(deps, ACTOR)
    releases = {rid: release.advance(rid, deps, ACTOR) for rid in release.active_releases(deps)}
    return {"started": started, "releases": releases}


def scheduled_retrain(deps: Deps, tick_id: str) -> None:
    """A schedule asks for training; it runs only if there is data no model has been trained on yet."""
    request_training(RequestTraining("schedule", tick_id), deps, "scheduled_retrain")
