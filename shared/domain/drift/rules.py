"""Evidently's rules, read off the data each column's profile holds: the type the preset infers for a column,
which columns its per-column tests and its data-set count take, the data each of them tests, and which test.

DataDriftPreset (evidently/presets/drift.py) runs two computations on the same columns. Its per-column verdicts
(`ValueDrift`) drop missing values and +-inf from both data sets before testing. Its data-set verdict
(`DriftedColumnsCount`, through legacy/metrics/data_drift/dataset_drift_metric.py and
legacy/calculations/data_drift.py `get_drift_for_columns`) drops them only from a data set whose column has a
missing value, so a side without one keeps its +-inf, which changes the test's input (and its choice); and it
counts a numerical column only if the reference's dtype is a number (a boolean reference is tested but not
counted). `Side` is one data set's column as one of the two computations sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shared.domain.drift.accumulators as accumulators
from shared.domain.drift.profiles import NUMBERS, ColumnProfile

# Evidently's defaults: evidently/core/datasets.py (`infer_column_type`) and
# legacy/calculations/stattests/registry.py (`_get_default_stattest`).
INTEGER_CATEGORIES = 10  # int columns with at most this many distinct values are categorical
TEXT_SHARE = 0.5  # object columns with more distinct values than this share of their values are text
SMALL_REFERENCE = 1000  # reference values up to which the p-value tests are used
FEW_VALUES = 5  # numerical columns with at most this many distinct values are tested on counts
TESTED = ("numerical", "categorical", "text")


def inferred_type(profile: ColumnProfile, distinct: int | None = None) -> str:
    """`infer_column_type` on the whole (current) column: numerical, categorical, text, datetime, list or
    unknown; or undecided, for an object column whose distinct values are beyond the cap and might be fewer
    than half its values (`distinct`, counted exactly elsewhere, decides it)."""
    kind = profile.kind
    if distinct is None:
        distinct = profile.counts.distinct
    if kind == "float":
        return "numerical"
    if kind == "int":
        return "categorical" if distinct is not None and distinct <= INTEGER_CATEGORIES else "numerical"
    if kind in ("bool", "category"):
        return "categorical"
    if kind == "datetime":
        return "datetime"
    if kind not in ("object", "string") or not profile.present:
        return "unknown"
    if kind == "object" and not (profile.text_ends and all(profile.text_ends)):
        return "unknown"  # Evidently would see lists here only if both ends were lists: untested either way
    if profile.unhashable:
        return "uncountable"  # Evidently's nunique raises on them
    if distinct is None:  # beyond the cap: text for certain only if the cap is already more than half
        return "text" if profile.present * TEXT_SHARE <= accumulators.MAX_CATEGORIES else "undecided"
    return "text" if distinct > profile.present * TEXT_SHARE else "categorical"


def untestable(column_type: str, reference: ColumnProfile) -> str | None:
    """Why Evidently's preset raises on the column (and so aborts), if it does."""
    if reference.unhashable:
        return (
            "the reference holds values pandas cannot count (lists, dicts): Evidently's tests raise on them"
        )
    if column_type == "numerical" and reference.kind not in NUMBERS:
        return f"the reference holds {reference.kind} values: Evidently's numerical test raises on them"
    return None


def counted(column_type: str, reference: ColumnProfile) -> bool:
    """Whether the data-set count takes the column (`process_columns` keeps numerical columns whose reference
    dtype is a number, booleans excluded)."""
    return column_type != "numerical" or reference.kind in ("int", "uint", "float")


@dataclass(frozen=True)
class Side:
    """One data set's column as a computation sees it: without +-inf, or with them (`infinite`)."""

    profile: ColumnProfile
    infinite: bool = False

    @property
    def values(self) -> int:
        return self.profile.present if self.infinite else self.profile.cleaned

    def counts(self) -> dict[Any, int] | None:
        return self.profile.counts.view(self.infinite, self.profile.infinities)

    @property
    def infinities(self) -> dict[float, int]:
        return dict(self.profile.infinite) if self.infinite else {}


def count_side(profile: ColumnProfile) -> Side:
    """The side the data-set count tests: +-inf kept when the column has no missing value in that data set."""
    return Side(profile, infinite=not profile.has_na and profile.infinities > 0)


def distinct_union(reference: Side, current: Side) -> int | None:
    """`pd.concat([reference, current]).nunique()`; None beyond the cap."""
    r, c = reference.counts(), current.counts()
    if r is None or c is None:
        return None
    return len(set(r) | set(c))


def stattest(column_type: str, reference: Side, current: Side, distinct: int | None) -> str:
    """`_get_default_stattest`: the test for a column of this type, from the reference's size and the distinct
    values of both data sets (None: more than the cap, so more than any of the limits)."""
    many = distinct is None
    if column_type == "text":
        return "abs_text_content_drift" if reference.values > SMALL_REFERENCE else "perc_text_content_drift"
    if reference.values <= SMALL_REFERENCE:
        if column_type == "numerical" and (many or distinct > FEW_VALUES):
            return "ks"
        return "chisquare" if many or distinct > 2 else "z"
    if column_type == "numerical" and (many or distinct > FEW_VALUES):
        return "wasserstein"
    return "jensenshannon"
