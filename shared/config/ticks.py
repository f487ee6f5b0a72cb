"""How much of the history a `reconcile` tick looks at: its cost stays flat however much has landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import integer, setting


@dataclass(frozen=True)
class TickSettings:
    title: ClassVar[str] = "Reconcile ticks (the safety net for lost events)"

    sweep_page: int = setting(
        "MLOPS_SWEEP_PAGE",
        "5000",
        integer(1, 5000),
        "Blobs of landing (and of labels) a tick lists, continuing where the last one stopped (5,000 is one "
        "request in Azure). A pass over all of landing takes landed blobs / this many ticks; it looks only at "
        "blobs changed since the pass before began, so a file whose event was lost is handled within two passes.",
    )
    retraction_checks: int = setting(
        "MLOPS_RETRACTION_CHECKS",
        "500",
        integer(0),
        "Catalog entries a tick checks against landing, continuing where the last one stopped: a content deleted "
        "or overwritten whose event was lost is retracted within entries / this many ticks (every start of "
        "training checks them all anyway). 0: only events and training starts retract.",
    )
