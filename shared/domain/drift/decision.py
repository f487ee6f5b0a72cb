"""The decision: which of Evidently's tests each column gets, schema drift, every column's verdict and the data
set's; where histogram bounds on a Wasserstein distance straddle the threshold, finer bins and more passes, and
as a last resort the whole column."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain.drift.profiles import (
    MAX_CATEGORIES,
    SCHEMA_GROUPS,
    ColumnProfile,
    DataSet,
    Histogram,
    Ladder,
    RowSample,
    count_histograms,
    load_column,
    scan,
)
from shared.domain.drift.sources import ChunkSource
from shared.domain.drift.stattests import (
    STD_FLOOR,
    TESTS,
    WassersteinBounds,
    chi_square,
    jensen_shannon,
    ks_on_ladder,
    wasserstein_bounds,
    wasserstein_exact,
    z_test,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# Evidently's defaults, from evidently/legacy/calculations/stattests.
SMALL_REFERENCE = 1000  # reference values up to which the p-value tests are used
FEW_VALUES = 5  # numerical columns with at most this many distinct values are tested on counts
KS_EXACT_LIMIT = 10_000  # scipy's ks_2samp computes exact p-values up to this many values per sample

# Bounds of this implementation.
SPLIT = 64  # sub-bins an uncertain bin is split into
MAX_SPLIT_BINS = 256  # uncertain bins split per round
MAX_REFINEMENTS = 6
MARGIN = 1e-9  # relative distance from a threshold within which floating point rounding decides

# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    column_type: str  # numerical or categorical, as Evidently infers it from the current data
    stattest: str
    score: float
    threshold: float
    drifted: bool
    reference_values: int  # values tested (NaN and infinities left out, as Evidently does)
    current_values: int

    @property
    def method(self) -> str:
        return TESTS[self.stattest].display

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.column_type,
            "method": self.method,
            "stattest": self.stattest,
            "value": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_values": self.reference_values,
            "current_values": self.current_values,
        }


@dataclass(frozen=True)
class SchemaDrift:
    missing: tuple[str, ...] = ()  # expected columns the current data lacks
    new: tuple[str, ...] = ()  # current columns the reference does not have
    changed: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # column -> (reference type, current type)

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.new or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "missing": list(self.missing),
            "new": list(self.new),
            "changed": {name: {"reference": r, "current": c} for name, (r, c) in self.changed.items()},
        }


@dataclass(frozen=True)
class DriftResult:
    drifted: bool  # Evidently's dataset-level verdict over the tested columns
    drift_share: float
    threshold: float
    drifted_columns: tuple[str, ...]
    columns: dict[str, ColumnDrift]
    schema: SchemaDrift
    not_checked: dict[str, str]  # column -> why it has no verdict
    reference_rows: int
    current_rows: int
    current_columns: tuple[str, ...] = ()  # every column the current data has, tested or not
    reference_sample: Any = field(repr=False, default=None)  # bounded samples of rows, for the HTML report
    current_sample: Any = field(repr=False, default=None)

    def summary(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "threshold": self.threshold,
            "drifted_columns": list(self.drifted_columns),
            "number_of_columns": len(self.columns),
            "columns": {name: verdict.as_dict() for name, verdict in self.columns.items()},
            "schema_drift": self.schema.as_dict(),
            "not_checked": dict(self.not_checked),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "sample_rows": {
                "reference": 0 if self.reference_sample is None else len(self.reference_sample),
                "current": 0 if self.current_sample is None else len(self.current_sample),
            },
        }


# --- deciding -------------------------------------------------------------------------------------------------


class _Undecided(Exception):
    """The Wasserstein bounds straddle the threshold: count again on finer bins."""


def _verdict(column: str, column_type: str, test: str, score: float, ref: int, cur: int) -> ColumnDrift:
    spec = TESTS[test]
    if test == "ks":
        drifted = score <= spec.threshold
    elif spec.p_value:
        drifted = score < spec.threshold
    else:
        drifted = score >= spec.threshold
    return ColumnDrift(column, column_type, test, score, spec.threshold, bool(drifted), ref, cur)


def _decide(name: str, column_type: str, ref: ColumnProfile, cur: ColumnProfile) -> ColumnDrift:
    """Evidently's choice of test, and the test, for one column. Raises _Undecided or ValueError (untestable)."""
    n1, n2 = ref.values, cur.values
    counts_known = not (ref.counts.overflow or cur.counts.overflow)
    distinct = len(set(ref.counts.values) | set(cur.counts.values)) if counts_known else None
    few = distinct is not None and distinct <= FEW_VALUES
    if column_type == "categorical" and not counts_known:
        raise ValueError(f"more than {MAX_CATEGORIES} distinct values: cannot be tested as categorical")
    on_counts = column_type == "categorical" or few
    if on_counts:
        r, c = ref.counts.values, cur.counts.values
        if n1 <= SMALL_REFERENCE:
            assert distinct is not None
            if distinct > 2:
                return _verdict(name, column_type, "chisquare", chi_square(r, c), n1, n2)
            return _verdict(name, column_type, "z", z_test(r, c), n1, n2)
        return _verdict(name, column_type, "jensenshannon", jensen_shannon(r, c), n1, n2)
    if n1 <= SMALL_REFERENCE:
        return _verdict(name, column_type, "ks", _ks(ref, cur), n1, n2)
    bounds = _bounds(ref, cur)
    norm = max(ref.moments.std, STD_FLOOR)
    threshold = TESTS["wasserstein"].threshold
    if bounds.low / norm >= threshold * (1 + MARGIN) or bounds.high / norm < threshold * (1 - MARGIN):
        return _verdict(name, column_type, "wasserstein", bounds.estimate / norm, n1, n2)
    raise _Undecided(name)


def _ks(ref: ColumnProfile, cur: ColumnProfile) -> float:
    from scipy.stats import ks_2samp

    reference = ref.held.values()
    if cur.held.complete:
        return float(ks_2samp(reference, cur.held.values())[1])
    if cur.ladder is None:
        raise ValueError("no counts against the reference values")
    return ks_on_ladder(reference, cur.ladder, cur.values)


def _bounds(ref: ColumnProfile, cur: ColumnProfile) -> WassersteinBounds:
    if ref.histogram is None or cur.histogram is None or ref.histogram.edges is None:
        raise ValueError("no histogram")
    lowest = min(ref.moments.min, cur.moments.min)
    highest = max(ref.moments.max, cur.moments.max)
    return wasserstein_bounds(ref.histogram, cur.histogram, ref.values, cur.values, lowest, highest)


# --- the check ------------------------------------------------------------------------------------------------


def check(
    reference: ChunkSource,
    current: ChunkSource,
    *,
    columns: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    drift_share: float = 0.5,
    sample_rows: int = 5000,
    seed: int = 42,
) -> DriftResult:
    """Compare `current` with `reference` column by column, as DataDriftPreset(drift_share) would on the two
    data sets concatenated. `columns`: the columns to compare (default: the reference's, but `ignore`).

    Memory: per column a few counters, at most MAX_CATEGORIES value counts, BINS histogram bins and (for small
    references) the reference's 1000 and the current's 10,000 values; plus `sample_rows` rows of each data set
    for the report and one chunk of each source at a time. Passes: one over each source, and more over the
    columns whose Wasserstein distance lies within the bins' uncertainty of the threshold."""
    import numpy as np

    ignored = set(ignore)
    configured = list(columns) if columns else None
    chosen = set(configured or ())
    wanted_reference = (lambda c: c in chosen) if configured else (lambda c: c not in ignored)

    def with_histogram(profile: ColumnProfile) -> None:
        profile.histogram = Histogram()  # used if the column is numerical with over 1000 values

    ref = scan(
        reference,
        wanted=wanted_reference,
        read=configured,
        hold_limit=SMALL_REFERENCE,
        sample=RowSample(sample_rows, seed),
        prepare=with_histogram,
    )
    expected = configured or [c for c in ref.names if c not in ignored]

    def against_reference(profile: ColumnProfile) -> None:
        reference_profile = ref.columns.get(profile.name)
        if reference_profile is None or not reference_profile.numeric:
            return
        histogram = reference_profile.histogram
        if histogram is not None and histogram.edges is not None:
            profile.histogram = Histogram(histogram.edges)
        if reference_profile.held.complete:
            profile.ladder = Ladder(np.unique(reference_profile.held.values().astype(np.float64)))

    expected_set = set(expected)
    cur = scan(
        current,
        wanted=lambda c: c in expected_set,
        read=configured + [c for c in ignore if c not in expected_set] if configured else None,
        hold_limit=KS_EXACT_LIMIT,
        sample=RowSample(sample_rows, seed + 1),
        prepare=against_reference,
    )

    schema, tested, not_checked = _compare_schemas(ref, cur, expected, ignored, detect_new=configured is None)
    verdicts: dict[str, ColumnDrift] = {}
    undecided: dict[str, str] = {}
    for name, column_type in tested.items():
        try:
            verdicts[name] = _decide(name, column_type, ref.columns[name], cur.columns[name])
        except _Undecided:
            undecided[name] = column_type
        except ValueError as error:
            not_checked[name] = str(error)
    verdicts.update(_resolve(undecided, ref, cur, reference, current))
    verdicts = {name: verdicts[name] for name in tested if name in verdicts}

    drifted_columns = tuple(name for name, verdict in verdicts.items() if verdict.drifted)
    share = len(drifted_columns) / len(verdicts) if verdicts else 0.0
    return DriftResult(
        drifted=bool(verdicts) and share >= drift_share,
        drift_share=share,
        threshold=drift_share,
        drifted_columns=drifted_columns,
        columns=verdicts,
        schema=schema,
        not_checked=not_checked,
        reference_rows=ref.rows,
        current_rows=cur.rows,
        current_columns=tuple(cur.names),
        reference_sample=ref.sample.frame,
        current_sample=cur.sample.frame,
    )


def _compare_schemas(
    ref: DataSet, cur: DataSet, expected: list[str], ignored: set[str], detect_new: bool
) -> tuple[SchemaDrift, dict[str, str], dict[str, str]]:
    """Columns that vanished, appeared or changed type; and the rest with the type Evidently would test them as."""
    missing = tuple(name for name in expected if name not in cur.names)
    new = tuple(n for n in cur.names if n not in ref.names and n not in ignored) if detect_new else ()
    changed: dict[str, tuple[str, str]] = {}
    tested: dict[str, str] = {}
    not_checked: dict[str, str] = {}
    for name in expected:
        if name in missing:
            continue
        r, c = ref.columns.get(name), cur.columns.get(name)
        if r is None or not r.values:
            not_checked[name] = "no values in the reference"
            continue
        if c is None or not c.values:
            not_checked[name] = "no values in the current data"
            continue
        r_kind, c_kind = r.final_kind(ref.rows), c.final_kind(cur.rows)
        r_group, c_group = SCHEMA_GROUPS.get(r_kind, "unknown"), SCHEMA_GROUPS.get(c_kind, "unknown")
        if r_group != c_group:
            changed[name] = (r_group, c_group)
            continue
        column_type = c.evidently_type(cur.rows)
        if column_type in ("numerical", "categorical"):
            tested[name] = column_type
        else:
            not_checked[name] = f"{column_type} column: no numerical or categorical drift test applies"
    return SchemaDrift(missing, new, changed), tested, not_checked


def _split_edges(edges: np.ndarray, bounds: WassersteinBounds) -> np.ndarray:
    """The edges, plus SPLIT sub-bins in each of the bins carrying most of the uncertainty."""
    import numpy as np

    chosen = bounds.uncertain_bins[:MAX_SPLIT_BINS]
    extra = [np.linspace(bounds.left[i], bounds.right[i], SPLIT + 1) for i in chosen]
    points = np.concatenate([edges, *extra]) if extra else edges
    return np.unique(points[np.isfinite(points)])


def _resolve(
    undecided: dict[str, str], ref: DataSet, cur: DataSet, reference: ChunkSource, current: ChunkSource
) -> dict[str, ColumnDrift]:
    """Refine the bins of columns whose distance could lie on either side of the threshold; as a last resort
    load the column."""
    verdicts: dict[str, ColumnDrift] = {}
    threshold = TESTS["wasserstein"].threshold
    refinable = dict(undecided)
    for _ in range(MAX_REFINEMENTS):
        if not refinable:
            break
        edges = {}
        for name in refinable:
            r, c = ref.columns[name], cur.columns[name]
            assert r.histogram is not None and r.histogram.edges is not None
            edges[name] = _split_edges(r.histogram.edges, _bounds(r, c))
        log.info("drift: refining Wasserstein bins", extra={"columns": sorted(refinable)})
        ref_histograms, cur_histograms = count_histograms(reference, edges), count_histograms(current, edges)
        for name in list(refinable):
            r, c = ref.columns[name], cur.columns[name]
            r.histogram, c.histogram = ref_histograms[name], cur_histograms[name]
            try:
                verdicts[name] = _decide(name, undecided[name], r, c)
            except _Undecided:
                bounds = _bounds(r, c)
                if bounds.high - bounds.low <= MARGIN * threshold * max(r.moments.std, STD_FLOOR):
                    del refinable[name]  # as tight as floating point allows: only exact computation can tell
                continue
            del undecided[name], refinable[name]
    for name, column_type in undecided.items():
        log.warning("drift: distance on the threshold, loading the column", extra={"column": name})
        r_values, c_values = load_column(reference, name), load_column(current, name)
        score = wasserstein_exact(r_values, c_values)
        verdicts[name] = _verdict(name, column_type, "wasserstein", score, len(r_values), len(c_values))
    return verdicts
