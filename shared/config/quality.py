"""Ground truth and the live quality check: how late labels are joined to what production served, and when
a live metric counts as degraded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import BOOLEAN, integer, number, setting


@dataclass(frozen=True)
class QualitySettings:
    title: ClassVar[str] = "Quality (late labels and the live metric)"

    window_hours: float = setting(
        "MLOPS_QUALITY_WINDOW_HOURS",
        "168",
        number(1.0),
        "Rows served in the last this many hours are joined to their labels; a label file whose ids match "
        "no row served in this window is quarantined.",
    )
    margin: float = setting(
        "MLOPS_QUALITY_MARGIN",
        "0.05",
        number(0.0, 1.0),
        "Degraded when the live primary metric's whole interval is worse than the offline holdout metric by "
        "more than this share of it.",
    )
    min_rows: int = setting(
        "MLOPS_QUALITY_MIN_ROWS",
        "100",
        integer(1),
        "Joined rows a model version needs in the window before its live metric is judged.",
    )
    cooldown_seconds: float = setting(
        "MLOPS_QUALITY_COOLDOWN_SECONDS",
        "604800",
        number(0.0),
        "After a degraded check asked to retrain a model version, later ones ask again only after this long.",
    )
    feedback_to_landing: bool = setting(
        "MLOPS_FEEDBACK_TO_LANDING",
        "false",
        BOOLEAN,
        "Land the joined rows (served features and true labels, in the training data's columns) as a CSV in "
        "the landing container, so production feedback becomes the next dataset version.",
    )
