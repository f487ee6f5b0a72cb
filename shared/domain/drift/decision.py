"""The check: one pass over each data set, the passes some columns need beyond it, every column's verdict as
Evidently's per-column test gives it and as its data-set count takes it, and the data set's verdict."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import shared.domain.drift.categories as categories
import shared.domain.drift.rules as rules
import shared.domain.drift.stattests as stattests
import shared.domain.drift.text as text
import shared.domain.drift.wasserstein as wasserstein
from shared.domain.drift.accumulators import Counts, Histogram, Ladder, RowSample
from shared.domain.drift.profiles import ColumnProfile, DataSet, load_column, load_present, scan
from shared.domain.drift.results import ColumnDrift, DriftResult, SchemaDrift
from shared.domain.drift.rules import Side
from shared.domain.drift.sources import ChunkSource
from shared.domain.drift.stattests import TESTS

log = logging.getLogger(__name__)

KS_EXACT_LIMIT = 10_000  # scipy's ks_2samp computes exact p-values up to this many values per sample
MAX_REFINEMENTS = 6
MARGIN = 1e-9  # relative distance from a threshold within which floating point rounding decides
EXACT = 1e-9  # a score known within this relative width is shown as Evidently's value
ROUNDING = 1e-15  # and within this absolute one (a distance of zero, say)
SCHEMA_GROUPS = {"int": "numeric", "uint": "numeric", "float": "numeric", "object": "text", "string": "text",
                 "category": "text", "bool": "bool", "datetime": "datetime"}  # fmt: skip


def verdict_of(test: str, score: float) -> bool:
    spec = TESTS[test]
    if test == "ks":
        return bool(score <= spec.threshold)
    if spec.p_value:
        return bool(score < spec.threshold)
    return bool(score >= spec.threshold)


def check(
    reference: ChunkSource,
    current: ChunkSource,
    *,
    columns: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    drift_share: float = 0.5,
    sample_rows: int = 5000,
    seed: int = 42,
    exact_scores: bool = False,
) -> DriftResult:
    """Compare `current` with `reference` column by column, as DataDriftPreset(drift_share) would on each data
    set's tables read by pandas and concatenated. `columns`: the columns to compare (default: the reference's,
    but `ignore`). `exact_scores`: refine Wasserstein distances whose verdict is certain until the score is
    exact too (more passes); without, such a score is an estimate and its bounds are given.

    Memory: per column a few counters, at most MAX_CATEGORIES value counts, BINS histogram bins, the tails'
    values and (for small references) the reference's 1000 and the current's 10,000 values; the values of text
    columns up to TEXT_BYTES; plus `sample_rows` rows of each data set and one chunk of each source at a time.
    Passes: one over each source; more for text columns, for columns with more distinct values than
    MAX_CATEGORIES, and for Wasserstein distances that bins leave undecided."""
    import numpy as np

    ignored = set(ignore)
    configured = list(columns) if columns else None
    chosen = set(configured or ())
    wanted_reference = (lambda c: c in chosen) if configured else (lambda c: c not in ignored)

    def with_histogram(profile: ColumnProfile) -> None:
        profile.histogram = Histogram()  # used if the column is numerical with over 1000 values

    ref = scan(reference, wanted=wanted_reference, read=configured, hold_limit=rules.SMALL_REFERENCE,
               sample=RowSample(sample_rows, seed), prepare=with_histogram)  # fmt: skip
    expected = configured or [c for c in ref.names if c not in ignored]

    def against_reference(profile: ColumnProfile) -> None:
        reference_profile = ref.columns.get(profile.name)
        if reference_profile is None or not reference_profile.finite:
            return
        histogram = reference_profile.histogram
        if histogram is not None and histogram.edges is not None:
            profile.histogram = Histogram(histogram.edges)
        if reference_profile.held.complete:
            profile.ladder = Ladder(np.unique(reference_profile.held.values().astype(np.float64)))

    expected_set = set(expected)
    cur = scan(current, wanted=lambda c: c in expected_set,
               read=configured + [c for c in ignore if c not in expected_set] if configured else None,
               hold_limit=KS_EXACT_LIMIT, sample=RowSample(sample_rows, seed + 1), prepare=against_reference)  # fmt: skip

    schema, candidates, not_checked = _compare_schemas(
        ref, cur, expected, ignored, detect_new=configured is None
    )
    judge = _Judge(ref, cur, reference, current, seed, not_checked)
    verdicts = judge.run(candidates, exact_scores)
    verdicts = {name: verdicts[name] for name in candidates if name in verdicts}

    drifted_columns = tuple(name for name, verdict in verdicts.items() if verdict.drifted)
    in_count = [verdict for verdict in verdicts.values() if verdict.counted]
    share = sum(v.counted_drifted for v in in_count) / len(in_count) if in_count else 0.0
    return DriftResult(
        drifted=bool(in_count) and share >= drift_share,
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
    """Columns that vanished, appeared or changed type; and those Evidently tests, with the type it infers."""
    missing = tuple(name for name in expected if name not in cur.names)
    new = tuple(n for n in cur.names if n not in ref.names and n not in ignored) if detect_new else ()
    changed: dict[str, tuple[str, str]] = {}
    candidates: dict[str, str] = {}
    not_checked: dict[str, str] = {}
    for name in expected:
        if name in missing:
            continue
        r, c = ref.columns.get(name), cur.columns.get(name)
        if r is None or not r.cleaned:
            not_checked[name] = "no values in the reference"
            continue
        if c is None or not c.cleaned:
            not_checked[name] = "no values in the current data"
            continue
        r_group, c_group = SCHEMA_GROUPS.get(r.kind, "unknown"), SCHEMA_GROUPS.get(c.kind, "unknown")
        if r_group != c_group:
            changed[name] = (r_group, c_group)
        column_type = rules.inferred_type(c)
        if column_type == "uncountable":
            not_checked[name] = "values pandas cannot count (lists, dicts): Evidently's preset raises on them"
            continue
        if column_type not in (*rules.TESTED, "undecided"):
            not_checked[name] = f"{column_type} column: Evidently's preset tests no such column"
            continue
        reason = rules.untestable(column_type, r)
        if reason:
            not_checked[name] = reason
            continue
        candidates[name] = column_type
    return SchemaDrift(missing, new, changed), candidates, not_checked


class _Undecided(Exception):
    """The Wasserstein bounds straddle the threshold: count again, on finer bins or the bins' values."""


class _Judge:
    """The verdicts of the candidate columns, with whatever passes they need."""

    def __init__(
        self, ref: DataSet, cur: DataSet, reference: ChunkSource, current: ChunkSource, seed: int,
        not_checked: dict[str, str],
    ) -> None:  # fmt: skip
        self.ref, self.cur, self.reference, self.current = ref, cur, reference, current
        self.seed, self.not_checked = seed, not_checked
        self.texts: dict[str, tuple[Any, Any, bool]] = {}  # column -> (reference, current, sampled)
        self.parted: dict[str, categories.Parted] = {}
        self.pairs: dict[str, wasserstein.Pair] = {}

    def run(self, candidates: dict[str, str], exact_scores: bool) -> dict[str, ColumnDrift]:
        types = self._counted_beyond_the_cap(candidates)
        verdicts: dict[str, ColumnDrift] = {}
        undecided: dict[str, str] = {}
        for name, column_type in types.items():
            try:
                verdicts[name] = self._column(name, column_type)
            except _Undecided:
                undecided[name] = column_type
            except ValueError as error:
                self.not_checked[name] = str(error)
        inexact = {n: v.column_type for n, v in verdicts.items() if not v.exact} if exact_scores else {}
        verdicts.update(self._refine({**inexact, **undecided}, undecided, exact_scores))
        return verdicts

    # --- columns beyond the first pass's cap ------------------------------------------------------------

    def _counted_beyond_the_cap(self, candidates: dict[str, str]) -> dict[str, str]:
        """Text columns' values; exact counts for the columns that need more than the first pass counted (their
        values held, or counted in parts); and the type of object columns that needed them to be typed."""
        needing = [n for n, t in candidates.items() if t in ("text", "undecided") or self._needs_counts(n, t)]
        if not needing:
            return candidates
        types = dict(candidates)
        held = text.gather(self.reference, self.current, needing, self.seed + 2)
        in_parts = {}
        for name in needing:
            r, c = self.ref.columns[name], self.cur.columns[name]
            values = held[name]
            if values.whole:
                ref_values, cur_values = values.series()
                if types[name] == "undecided":
                    types[name] = rules.inferred_type(c, int(cur_values.nunique()))
                if types[name] == "categorical":
                    for profile, series in ((r, ref_values), (c, cur_values)):
                        profile.counts = Counts(cap=len(series) + 1)
                        profile.counts.values = categories.counts_of(series)
            elif types[name] != "text":
                estimate = r.distinct_estimate() + c.distinct_estimate()
                count_view = (rules.count_side(r).infinite, rules.count_side(c).infinite)
                in_parts[name] = (estimate, {(False, False), count_view}, r, c)
            if types[name] == "text" or (types[name] == "undecided" and not values.whole):
                ref_values, cur_values = values.series()
                if r.infinities or c.infinities:
                    ref_values, cur_values = _finite(ref_values), _finite(cur_values)
                self.texts[name] = (ref_values, cur_values, not values.whole)
        if in_parts:
            log.info("drift: counting distinct values in parts", extra={"columns": sorted(in_parts)})
            self.parted = categories.count_in_parts(self.reference, self.current, in_parts)
            for name, parted in self.parted.items():
                if types[name] == "undecided":
                    types[name] = rules.inferred_type(self.cur.columns[name], parted.current_distinct)
        return types

    def _needs_counts(self, name: str, column_type: str) -> bool:
        """A categorical column whose test needs counts beyond the cap: Jensen-Shannon needs both data sets',
        chi-square the reference's (the current's only to know it has a value the reference lacks)."""
        if column_type != "categorical":
            return False
        r, c = self.ref.columns[name], self.cur.columns[name]
        for rs, cs in ((Side(r), Side(c)), (rules.count_side(r), rules.count_side(c))):
            if rs.counts() is None or (rs.values > rules.SMALL_REFERENCE and cs.counts() is None):
                return True
        return False

    # --- one column --------------------------------------------------------------------------------------

    def _column(
        self, name: str, column_type: str, whole: tuple[str, float, bool] | None = None
    ) -> ColumnDrift:
        """The column's verdict (`whole`: its test computed on the whole column), and the data-set count's."""
        r, c = self.ref.columns[name], self.cur.columns[name]
        ref_side, cur_side = Side(r), Side(c)
        test, score, drifted, extra = (
            (*whole, {}) if whole else self._test(name, column_type, ref_side, cur_side)
        )
        counted = rules.counted(column_type, r)
        count_verdict = None
        count_ref, count_cur = rules.count_side(r), rules.count_side(c)
        if counted and (count_ref.infinite or count_cur.infinite):
            count_test, count_score, count_drifted, _ = self._test(name, column_type, count_ref, count_cur)
            if (count_test, count_drifted) != (test, drifted) or not _same(count_score, score):
                count_verdict = (count_test, count_score, count_drifted)
        threshold = TESTS[test].threshold
        return ColumnDrift(name, column_type, test, score, threshold, drifted, ref_side.values, cur_side.values,
                           counted=counted, count_verdict=count_verdict, **extra)  # fmt: skip

    def _test(
        self, name: str, column_type: str, ref: Side, cur: Side
    ) -> tuple[str, float, bool, dict[str, Any]]:
        """Evidently's choice of test and the test, on one view of the column. Raises _Undecided or ValueError."""
        parted = self.parted.get(name)
        views = (ref.infinite, cur.infinite)
        distinct = rules.distinct_union(ref, cur)
        if distinct is None and parted is not None:
            distinct = parted.union_distinct[views]
        test = rules.stattest(column_type, ref, cur, distinct)
        if test.endswith("text_content_drift"):
            return self._text(name, ref, cur)
        if test == "ks":
            score = self._ks(ref, cur)
        elif test == "wasserstein" and not views[0] and not views[1]:
            return self._wasserstein(name, ref.profile, cur.profile)
        elif test == "wasserstein":
            score = stattests.wasserstein_on_infinities(sum(ref.infinities.values()), cur.infinities)
        else:
            r, c = ref.counts(), cur.counts()
            if test == "chisquare":
                if r is None:
                    raise ValueError("more distinct reference values than could be counted")
                # beyond the cap, the current has values the (fewer) reference lacks: an infinite statistic
                score = 0.0 if c is None else stattests.chi_square(r, c)
            elif r is not None and c is not None:
                score = stattests.z_test(r, c) if test == "z" else stattests.jensen_shannon(r, c)
            else:
                if parted is None:
                    raise ValueError("more distinct values than could be counted")
                score = parted.jensen_shannon(views)
                if abs(score - TESTS[test].threshold) <= MARGIN * TESTS[test].threshold:
                    score = self._jensen_shannon_whole(name, views)
        return test, score, verdict_of(test, score), {}

    def _text(self, name: str, ref: Side, cur: Side) -> tuple[str, float, bool, dict[str, Any]]:
        if ref.infinite or cur.infinite:
            raise ValueError("Evidently's data-set count hands +-inf to its text test, which raises")
        reference, current, sampled = self.texts[name]
        try:
            test, score, drifted = text.text_drift(reference, current, ref.values)
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"Evidently's text test raises on this column ({error})") from error
        return test, score, drifted, {"sample": (len(reference), len(current))} if sampled else {}

    def _ks(self, ref: Side, cur: Side) -> float:
        reference = stattests.with_infinities(ref.profile.held.values(), ref.infinities)
        held = cur.profile.held
        if held.complete:
            return stattests.ks_exact(reference, stattests.with_infinities(held.values(), cur.infinities))
        if cur.profile.ladder is None:
            raise ValueError("no counts against the reference values")
        return stattests.ks_on_ladder(reference, cur.profile.ladder, cur.values, cur.infinities)

    def _wasserstein(
        self, name: str, r: ColumnProfile, c: ColumnProfile
    ) -> tuple[str, float, bool, dict[str, Any]]:
        pair = self.pairs.get(name)
        if pair is None:
            if r.histogram is None or c.histogram is None or r.histogram.edges is None:
                raise ValueError("no histogram")
            lowest, highest = min(r.moments.min, c.moments.min), max(r.moments.max, c.moments.max)
            pair = self.pairs[name] = wasserstein.Pair(
                r.histogram, c.histogram, r.finite, c.finite, lowest, highest
            )
        found = pair.bounds()
        norm_low, norm_high = stattests.wasserstein_norm(r.moments.count, r.moments.m2, r.float32)
        low, high = found.low / norm_high, found.high / norm_low
        threshold = TESTS["wasserstein"].threshold
        if low < threshold * (1 + MARGIN) and high >= threshold * (1 - MARGIN):
            raise _Undecided(name)
        score = min(max(found.estimate / ((norm_low + norm_high) / 2), low), high)
        extra = {} if high - low <= EXACT * high + ROUNDING else {"bounds": (low, high)}
        return "wasserstein", score, low >= threshold * (1 + MARGIN), extra

    # --- more passes -------------------------------------------------------------------------------------

    def _refine(
        self, pending: dict[str, str], undecided: dict[str, str], exact_scores: bool
    ) -> dict[str, ColumnDrift]:
        """Rounds of refinement for the Wasserstein distances undecided (or, for `exact_scores`, not yet exact);
        the last resort for those still on the threshold."""
        decided: dict[str, ColumnDrift] = {}
        threshold = TESTS["wasserstein"].threshold
        for _ in range(MAX_REFINEMENTS):
            plans = {}
            for name in pending:
                r = self.ref.columns[name]
                found = self.pairs[name].bounds()
                norm = stattests.wasserstein_norm(r.moments.count, r.moments.m2, r.float32)[0]
                if found.high - found.low <= MARGIN * threshold * norm:
                    continue  # as tight as floating point allows
                plans[name] = wasserstein.plan(self.pairs[name], found)
            if not plans:
                break
            log.info("drift: refining Wasserstein distances", extra={"columns": sorted(plans)})
            wasserstein.refine(self.reference, self.current, self.pairs, plans)
            for name in list(pending):
                try:
                    decided[name] = verdict = self._column(name, pending[name])
                except _Undecided:
                    continue
                undecided.pop(name, None)
                if verdict.exact or not exact_scores:
                    del pending[name]
        for name, column_type in undecided.items():
            log.warning("drift: distance on the threshold, loading the column", extra={"column": name})
            r, c = self.ref.columns[name], self.cur.columns[name]
            ref_values = load_column(self.reference, name, r.dtype)
            cur_values = load_column(self.current, name, c.dtype)
            score = stattests.wasserstein_exact(ref_values, cur_values)
            decided[name] = self._column(
                name, column_type, ("wasserstein", score, verdict_of("wasserstein", score))
            )
        return decided

    def _jensen_shannon_whole(self, name: str, views: tuple[bool, bool]) -> float:
        import pandas as pd

        log.warning(
            "drift: Jensen-Shannon distance on the threshold, loading the column", extra={"column": name}
        )
        counts = []
        for source, infinite in zip((self.reference, self.current), views, strict=True):
            values = categories.counts_of(pd.Series(load_present(source, name), dtype=object))
            counts.append(values if infinite else categories.without_infinities(values))
        return stattests.jensen_shannon(counts[0], counts[1])


def _finite(values: Any) -> Any:
    """Text values without +-inf (floats among them), which Evidently drops."""
    import math

    infinite = values.map(lambda v: isinstance(v, float) and math.isinf(v))
    return values[~infinite.astype(bool)].reset_index(drop=True) if infinite.any() else values


def _same(a: float, b: float) -> bool:
    import math

    return a == b or (math.isnan(a) and math.isnan(b))
