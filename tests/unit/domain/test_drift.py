"""The chunked drift check decides exactly what Evidently's DataDriftPreset decides on the same full data: per
column and for the data set, numerical and categorical, small and large references; in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shared.domain import drift
from shared.domain.drift import accumulators, decision, profiles, stattests, wasserstein
from tests.evidently_yardstick import preset_verdicts

# --- helpers --------------------------------------------------------------------------------------------------


def tables(
    frame: pd.DataFrame, parts: int = 3, chunk_rows: int = 701
) -> tuple[drift.TableSource, pd.DataFrame]:
    """The frame as CSV tables read in chunks, and the frame pandas reads back from them (what Evidently gets)."""
    size = -(-len(frame) // parts)
    blobs = [frame.iloc[i : i + size].to_csv(index=False).encode() for i in range(0, len(frame), size)]
    source = drift.TableSource(
        tuple(drift.TablePart(f"part-{i}.csv", lambda b=b: b) for i, b in enumerate(blobs)), chunk_rows
    )
    full = pd.concat([pd.read_csv(io.BytesIO(b)) for b in blobs], ignore_index=True)
    return source, full


def agree(reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5) -> drift.DriftResult:
    """Check both ways and assert that every verdict, and every score but the bounded Wasserstein ones, agree."""
    ref_source, ref_full = tables(reference)
    cur_source, cur_full = tables(current, parts=2)
    ours = drift.check(ref_source, cur_source, drift_share=drift_share, sample_rows=200)
    common = [c for c in ref_full.columns if c in cur_full.columns and c in ours.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = preset_verdicts(ref_full[common], cur_full[common], drift_share)
    assert {c: v.drifted for c, v in ours.columns.items()} == theirs.columns
    assert (ours.drifted, ours.drift_share) == (theirs.drifted, pytest.approx(theirs.drift_share))
    for name, verdict in ours.columns.items():
        assert verdict.method == theirs.methods[name]
        if verdict.stattest == "wasserstein":
            assert verdict.score == pytest.approx(theirs.scores[name], rel=0.02, abs=2e-3)
        else:
            assert verdict.score == pytest.approx(theirs.scores[name], rel=1e-12, abs=1e-300)
    return ours


def mixed(rows: int, seed: int, shift: float = 0.0, categories_shift: bool = False) -> pd.DataFrame:
    """Numerical, few-valued, integer-categorical, string-categorical and binary columns, with NaN and inf."""
    r = np.random.default_rng(seed)
    spread = r.normal(size=rows)
    spread[r.random(rows) < 0.05] = np.nan
    spread[:2] = np.inf
    return pd.DataFrame(
        {
            "age": r.normal(50, 10, rows) + shift * 10,
            "income": r.lognormal(3, 1, rows) * (1 + shift),
            "spread": spread,
            "visits": r.integers(0, 6, rows),  # int, <= 10 values: categorical
            "score": r.integers(0, 500, rows),  # int, many values: numerical
            "grade": r.integers(0, 4, rows).astype(float),  # float with 4 values: counts
            "smoker": r.random(rows) < (0.3 + shift / 3),
            "city": r.choice(["oslo", "bergen", "tromso", "bodo"], rows, p=_city(categories_shift)),
        }
    )


def _city(shifted: bool) -> list[float]:
    return [0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]


def numeric(rows: int, seed: int, shifts: Sequence[float] = (0.0,) * 5) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    return pd.DataFrame({f"x{i}": r.normal(shift, 1, rows) for i, shift in enumerate(shifts)})


# --- agreement with Evidently ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [400, 3000], ids=["small reference", "large reference"])
def test_no_drift(rows: int) -> None:
    result = agree(mixed(rows, 1), mixed(rows, 2))
    assert not result.drifted and not result.schema.drifted


@pytest.mark.parametrize("rows", [400, 3000], ids=["small reference", "large reference"])
def test_one_drifted_column(rows: int) -> None:
    result = agree(numeric(rows, 1), numeric(rows, 2, shifts=(0.8, 0, 0, 0, 0)))
    assert result.drifted_columns == ("x0",) and not result.drifted


def test_all_columns_drifted() -> None:
    reference, current = numeric(3000, 1), numeric(3000, 2, shifts=(0.8, -0.5, 0.4, 1, 2))
    reference["city"] = mixed(3000, 1)["city"]
    current["city"] = mixed(3000, 2, categories_shift=True)["city"]
    result = agree(reference, current)
    assert result.drifted and result.drift_share == 1.0


@pytest.mark.parametrize("rows", [400, 3000], ids=["chi-square", "jensen-shannon"])
def test_categorical_drift(rows: int) -> None:
    result = agree(mixed(rows, 1), mixed(rows, 2, categories_shift=True))
    assert "city" in result.drifted_columns
    assert result.columns["city"].column_type == "categorical"
    assert result.columns["visits"].column_type == "categorical"


def test_a_small_reference_against_a_large_current_uses_the_asymptotic_ks() -> None:
    result = agree(numeric(600, 1), numeric(12_000, 2, shifts=(0.1, 0.05, 0, 0, 0)))
    assert {v.stattest for v in result.columns.values()} == {"ks"}


def test_the_drift_share_threshold_is_evidentlys() -> None:
    reference, current = numeric(2000, 1), numeric(2000, 2, shifts=(1, 1, 0, 0, 0))
    assert agree(reference, current, drift_share=0.4).drifted
    assert not agree(reference, current, drift_share=0.5).drifted


def test_schema_drift_is_reported_and_every_verdict_still_agrees() -> None:
    reference = mixed(2000, 1)
    current = mixed(2000, 2, shift=0.8).drop(columns=["grade"])
    current["device"] = "phone"
    current["visits"] = current["visits"].map(lambda v: f"v{v}")
    result = agree(reference, current)
    assert result.schema.missing == ("grade",)
    assert result.schema.new == ("device",)
    assert result.schema.changed == {"visits": ("numeric", "text")}
    assert "grade" not in result.columns and "device" not in result.columns
    # Evidently tests the changed column as the current data's type has it: categories, numbers against strings
    assert result.columns["visits"].column_type == "categorical" and result.columns["visits"].drifted


def test_text_columns_are_tested_as_evidently_tests_them_and_empty_ones_say_why_not() -> None:
    reference, current = mixed(1500, 1), mixed(1500, 2)
    for frame in (reference, current):
        frame["comment"] = [f"note {i} {frame['age'].iloc[i]:.3f}" for i in range(len(frame))]
    current["spread"] = np.nan
    result = agree(reference, current)  # the same ROC AUC, to the last bit
    assert result.columns["comment"].column_type == "text"
    assert result.columns["comment"].stattest == "abs_text_content_drift"
    assert result.not_checked["spread"] == "no values in the current data"


# --- the Wasserstein distance, exactly ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_the_distance_always_lies_within_the_bounds(seed: int) -> None:
    r = np.random.default_rng(seed)
    a = [r.normal(size=3000), r.exponential(size=3000), r.integers(0, 20, 3000).astype(float)][seed % 3]
    b = a[: int(r.integers(50, 3000))] * (1 + r.random() / 2) + r.normal() / 3
    ref, cur = _profiles(a, b)
    bounds = _pair(ref, cur).bounds()
    exact = stats.wasserstein_distance(a, b)
    assert bounds.low * (1 - 1e-12) <= exact <= bounds.high * (1 + 1e-12)


def _profiles(a: np.ndarray, b: np.ndarray) -> tuple[profiles.ColumnProfile, profiles.ColumnProfile]:
    ref, cur = profiles.ColumnProfile("v", 0), profiles.ColumnProfile("v", 0)
    ref.histogram = accumulators.Histogram()
    ref.add(pd.Series(a))
    ref.finish()
    cur.histogram = accumulators.Histogram(ref.histogram.edges)
    cur.add(pd.Series(b))
    cur.finish()
    return ref, cur


def _pair(ref: profiles.ColumnProfile, cur: profiles.ColumnProfile) -> wasserstein.Pair:
    assert ref.histogram is not None and cur.histogram is not None
    lowest, highest = min(ref.moments.min, cur.moments.min), max(ref.moments.max, cur.moments.max)
    return wasserstein.Pair(ref.histogram, cur.histogram, ref.finite, cur.finite, lowest, highest)


def test_bounds_that_straddle_the_threshold_are_refined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accumulators, "BINS", 4)  # coarse bins: the first bounds cannot decide
    reference, current = _near_threshold()
    passes = _count_passes(monkeypatch)
    result = drift.check(drift.FrameSource(reference), drift.FrameSource(current), sample_rows=0)
    assert passes["count"] > 2  # the two scans, then refinements
    assert result.columns["v"].drifted == _evidently_wasserstein(reference, current)


def test_a_distance_on_the_threshold_is_computed_on_the_whole_column_as_evidently_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(accumulators, "BINS", 4)
    monkeypatch.setattr(decision, "MAX_REFINEMENTS", 0)
    reference, current = _near_threshold()
    result = drift.check(drift.FrameSource(reference), drift.FrameSource(current), sample_rows=0)
    assert result.columns["v"].score == _evidently_wasserstein_norm(reference["v"], current["v"])
    assert result.columns["v"].drifted == _evidently_wasserstein(reference, current)


def _shifted_integers() -> tuple[pd.Series, pd.Series]:
    r = np.random.default_rng(3)
    return pd.Series(r.integers(0, 30, 4000).astype(float)), pd.Series(r.integers(2, 31, 2500).astype(float))


def _lognormal() -> tuple[pd.Series, pd.Series]:
    r = np.random.default_rng(4)
    return pd.Series(r.lognormal(3, 1, 3000)), pd.Series(r.lognormal(3.05, 1.1, 7000))


def _constant_reference() -> tuple[pd.Series, pd.Series]:  # std 0: the floor norms the distance
    return pd.Series(np.full(2000, 7.5)), pd.Series(np.random.default_rng(6).normal(7.5, 0.01, 1500))


def _tiny_spread() -> tuple[pd.Series, pd.Series]:  # std below the floor
    r = np.random.default_rng(7)
    return pd.Series(r.normal(0, 1e-4, 3000)), pd.Series(r.normal(2e-5, 1e-4, 3000))


def _on_the_threshold() -> tuple[pd.Series, pd.Series]:
    reference, current = _near_threshold()
    return reference["v"], current["v"]


@pytest.mark.parametrize(
    "data", [_on_the_threshold, _shifted_integers, _lognormal, _constant_reference, _tiny_spread]
)
def test_the_exact_distance_is_evidentlys_own(data: Callable[[], tuple[pd.Series, pd.Series]]) -> None:
    reference, current = data()
    ours = stattests.wasserstein_exact(reference, current)
    assert ours == _evidently_wasserstein_norm(reference, current)
    assert ours > 0


def test_the_threshold_data_set_lies_within_rounding_reach_of_the_threshold() -> None:
    distance = stattests.wasserstein_exact(*_on_the_threshold())
    assert distance >= 0.1 and distance - 0.1 < 1e-3  # a data set that tests the threshold, not far from it


def _evidently_wasserstein_norm(reference: pd.Series, current: pd.Series) -> float:
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
    from evidently.legacy.core import ColumnType

    return float(_wasserstein_distance_norm(reference, current, ColumnType.Numerical, 0.1)[0])


def _near_threshold() -> tuple[pd.DataFrame, pd.DataFrame]:
    r = np.random.default_rng(5)
    reference = pd.DataFrame({"v": r.normal(size=5000)})
    current = pd.DataFrame({"v": r.normal(0, 1.118, size=4000)})  # wider: the CDFs cross; distance 0.10005
    return reference, current


def _evidently_wasserstein(reference: pd.DataFrame, current: pd.DataFrame) -> bool:
    distance = stats.wasserstein_distance(reference["v"], current["v"]) / np.std(reference["v"])
    return bool(distance >= 0.1)


def _count_passes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    passes = {"count": 0}
    original = drift.FrameSource.chunks

    def counted(self: drift.FrameSource, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        passes["count"] += 1
        return original(self, columns)

    monkeypatch.setattr(drift.FrameSource, "chunks", counted)
    return passes


# --- chunks and memory ----------------------------------------------------------------------------------------


def test_verdicts_do_not_depend_on_chunk_size() -> None:
    reference, current = mixed(3000, 1), mixed(3000, 2, shift=0.3)
    small = drift.check(drift.FrameSource(reference, 97), drift.FrameSource(current, 89), sample_rows=50)
    large = drift.check(drift.FrameSource(reference), drift.FrameSource(current), sample_rows=50)
    assert {c: (v.drifted, v.stattest) for c, v in small.columns.items()} == {
        c: (v.drifted, v.stattest) for c, v in large.columns.items()
    }
    for name, verdict in small.columns.items():
        assert verdict.score == pytest.approx(large.columns[name].score, rel=1e-6, abs=1e-9)


class Generated:
    """Rows made chunk by chunk, never all at once: what a large data set looks like to the check."""

    def __init__(self, rows: int, seed: int, shift: float, chunk_rows: int = 20_000) -> None:
        self.rows, self.seed, self.shift, self.chunk_rows = rows, seed, shift, chunk_rows

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        r = np.random.default_rng(self.seed)
        for start in range(0, self.rows, self.chunk_rows):
            n = min(self.chunk_rows, self.rows - start)
            frame = pd.DataFrame({f"x{i}": r.normal(self.shift if i == 0 else 0, 1, n) for i in range(4)})
            frame["kind"] = r.choice(["a", "b", "c"], n)
            yield frame if columns is None else frame[[c for c in frame.columns if c in columns]]


def test_memory_is_bounded_by_chunks_and_samples_not_by_rows() -> None:
    rows = 500_000  # 2 x 500,000 rows x 5 columns: about 36 MB as frames
    tracemalloc.start()
    try:
        result = drift.check(Generated(rows, 1, 0.0), Generated(rows, 2, 0.3), sample_rows=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.drifted_columns == ("x0",)
    assert len(result.reference_sample) == len(result.current_sample) == 1000
    assert peak < 12 * 2**20
