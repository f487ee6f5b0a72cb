"""When an open training request becomes a run: pure timing rules over its timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Timing:
    quiet_period_seconds: float
    max_wait_seconds: float


def ready_to_start(opened_at: datetime, updated_at: datetime, now: datetime, timing: Timing) -> bool:
    """Start once nothing has arrived for the quiet period, or the request has waited the maximum."""
    quiet = (now - updated_at).total_seconds() >= timing.quiet_period_seconds
    starved = (now - opened_at).total_seconds() >= timing.max_wait_seconds
    return quiet or starved
