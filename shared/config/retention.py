"""How long what the app writes is kept (`shared.handlers.retention` applies it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import number, setting


@dataclass(frozen=True)
class RetentionSettings:
    title: ClassVar[str] = (
        "Retention (days after a blob was last written; 0 keeps it for ever; the audit log is never deleted)"
    )

    traffic_days: float = setting(
        "MLOPS_RETAIN_TRAFFIC_DAYS",
        "90",
        number(0.0),
        "Captured traffic (the inference container). Keep it longer than the drift window and than labels take to arrive.",
    )
    reports_days: float = setting(
        "MLOPS_RETAIN_REPORTS_DAYS", "365", number(0.0), "Drift and quality reports."
    )
    deadletter_days: float = setting(
        "MLOPS_RETAIN_DEADLETTER_DAYS", "30", number(0.0), "Events that could not be delivered."
    )
    quarantine_days: float = setting(
        "MLOPS_RETAIN_QUARANTINE_DAYS", "90", number(0.0), "Quarantined files and their `.reason.json`."
    )
    state_days: float = setting(
        "MLOPS_RETAIN_STATE_DAYS",
        "365",
        number(0.0),
        "Settled records of landed file versions no longer in landing (quarantined, overwritten or deleted), "
        "and of drift checks closed past their deadline whose job's end never came.",
    )
