"""Parity with Evidently's DataDriftPreset on the edges where a chunked computation could part from it: every
column's verdict, the columns tested, the data-set verdict and its drift share are the preset's. Each test
builds its case from tests/drift_adversary.py (bench/drift_parity.py runs many random combinations)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shared.domain import drift
from shared.domain.drift import accumulators, categories, profiles, stattests, text
from tests import drift_adversary
from tests.drift_adversary import DataSet, from_tables


def agree(data: DataSet, chunk_rows: int = 700) -> drift_adversary.Comparison:
    outcome = drift_adversary.compare(data, chunk_rows=chunk_rows)
    assert outcome.error is None
    assert outcome.differing == {}
    assert outcome.data_set_agrees, outcome.data_set
    return outcome


def frames(reference: dict[str, object], current: dict[str, object]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(reference), pd.DataFrame(current)


# --- +-inf: the data-set count keeps them where the column has no missing value --------------------------------


@pytest.mark.parametrize(
    ("rows", "where"),
    [(3000, "reference"), (3000, "current"), (3000, "current twice"), (800, "reference"), (800, "current")],
)
def test_infinities_without_missing_values_count_as_evidentlys_data_set_count_counts_them(
    rows: int, where: str
) -> None:
    r = np.random.default_rng(rows)
    a, b = r.normal(size=rows), r.normal(0.3, 1, 2000)
    target = a if where == "reference" else b
    target[: 2 if "twice" in where else 1] = np.inf
    reference, current = frames({"x": a, "y": r.normal(size=rows)}, {"x": b, "y": r.normal(size=2000)})
    outcome = agree(from_tables([reference], [current], "parquet"))
    verdict = outcome.result.columns["x"]
    assert verdict.count_verdict is not None  # the count tested other data than the column's own test
    assert outcome.result.drift_share == pytest.approx(outcome.preset.drift_share)


def test_infinities_on_few_values_become_a_category_of_the_count() -> None:
    r = np.random.default_rng(3)
    a, b = r.integers(0, 4, 900) + 0.5, r.integers(0, 4, 1500) + 0.5
    a[:3] = np.inf
    reference, current = frames({"x": a}, {"x": b})
    outcome = agree(from_tables([reference], [current], "csv"))
    verdict = outcome.result.columns["x"]
    assert verdict.stattest == "chisquare" and verdict.count_verdict is not None
    assert verdict.count_verdict[0] == "chisquare" and verdict.count_verdict[1] != verdict.score


def test_a_side_with_missing_values_drops_its_infinities_in_the_count_too() -> None:
    r = np.random.default_rng(4)
    a, b = r.normal(size=3000), r.normal(0.15, 1, 3000)
    a[:2], a[5] = np.inf, np.nan
    reference, current = frames({"x": a}, {"x": b})
    outcome = agree(from_tables([reference], [current], "csv"))
    assert outcome.result.columns["x"].count_verdict is None


# --- float32: Evidently's norm is a float32 standard deviation ----------------------------------------------


def test_the_norm_is_the_float32_standard_deviation_pandas_computes() -> None:
    r = np.random.default_rng(8)
    for size in (1001, 5000, 70_000):
        values = (r.normal(size=size) * r.uniform(0.1, 10) + r.choice([0, 1e3, 1e5])).astype(np.float32)
        profile = drift.check(drift.FrameSource(pd.DataFrame({"v": values}), 997),
                              drift.FrameSource(pd.DataFrame({"v": values}), 997))  # fmt: skip
        assert "v" in profile.columns
        moments = accumulators.Moments()
        for start in range(0, size, 997):
            moments.add(values[start : start + 997].astype(np.float64))
        low, high = stattests.wasserstein_norm(moments.count, moments.m2, float32=True)
        assert low == high == float(np.std(pd.Series(values)))


def _float32_on_the_edge() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A float32 column whose normed distance is on one side of 0.1 by the float32 norm, on the other by the
    float64 one."""
    r = np.random.default_rng(12)
    a = (r.normal(size=3000) * 3).astype(np.float32)
    std32, std64 = float(np.std(pd.Series(a))), float(np.std(a.astype(np.float64)))
    assert std32 != std64

    def distance(shift: float) -> float:
        return float(stats.wasserstein_distance(a, (a.astype(np.float64) + shift).astype(np.float32)))

    low, high = 0.25, 0.35  # shifts bracketing a distance of 0.1 std
    target = 0.1 * (std32 + std64) / 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if distance(middle) < target else (low, middle)
    b = (a.astype(np.float64) + high).astype(np.float32)
    d = float(stats.wasserstein_distance(a, b))
    assert (d / std32 >= 0.1) != (d / std64 >= 0.1), "the case must separate the two norms"
    return pd.DataFrame({"v": a}), pd.DataFrame({"v": b})


def test_a_float32_column_on_the_threshold_gets_the_float32_norms_verdict() -> None:
    reference, current = _float32_on_the_edge()
    outcome = agree(from_tables([reference], [current], "parquet"))
    assert outcome.result.columns["v"].stattest == "wasserstein"


# --- CSV: numbers and strings in one column -------------------------------------------------------------------


@pytest.mark.parametrize("order", ["strings first", "numbers first", "strings around numbers"])
def test_a_csv_column_of_numbers_in_some_files_and_strings_in_others(order: str) -> None:
    r = np.random.default_rng(5)
    strings = pd.DataFrame({"code": r.choice(["a", "b", "c"], 600), "x": r.normal(size=600)})
    numbers = pd.DataFrame({"code": r.integers(0, 3, 600), "x": r.normal(size=600)})
    files = {
        "strings first": [strings, numbers],
        "numbers first": [numbers, strings],
        "strings around numbers": [strings, numbers, strings],
    }[order]
    outcome = agree(from_tables(list(reversed(files)), files, "csv"))
    # Evidently types the column by the current data's first and last values: strings, or it is not tested
    assert ("code" in outcome.result.columns) == (order == "strings around numbers")


def test_a_csv_file_whose_parser_blocks_read_numbers_then_strings() -> None:
    """pandas' parser infers dtypes per block of rows: a column of numbers with strings far down holds numbers
    from the first blocks and strings from the last, in one file."""
    r = np.random.default_rng(6)
    rows = 2 * drift.sources.parser_block_rows(2) + 500
    codes = r.integers(0, 4, rows).astype(object)
    codes[-300:] = r.choice(["a", "b"], 300)
    codes[-1] = "a"
    reference = pd.DataFrame({"code": codes, "x": r.normal(size=rows)})
    current = reference.sample(frac=1, random_state=1).reset_index(drop=True)
    current.loc[len(current) - 1, "code"] = "b"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = pd.read_csv(io.BytesIO(reference.to_csv(index=False).encode()))["code"]
    assert {type(v) for v in read} == {int, str}  # what makes the case
    outcome = agree(from_tables([reference], [current], "csv"), chunk_rows=1000)
    assert outcome.result.columns["code"].score == outcome.preset.scores["code"]  # the same values counted


KINDS: dict[str, Callable[[int], pd.Series] | None] = {
    "int": lambda n: pd.Series(np.arange(n)),
    "float": lambda n: pd.Series(np.arange(n) + 0.5),
    "float32": lambda n: pd.Series(np.arange(n) + 0.5, dtype="float32"),
    "holes": lambda n: pd.Series(np.where(np.arange(n) % 3, np.arange(n), np.nan)),
    "bool": lambda n: pd.Series(np.arange(n) % 2 == 0),
    "str": lambda n: pd.Series([f"s{i % 4}" for i in range(n)], dtype=object),
    "category": lambda n: pd.Series(pd.Categorical([f"c{i % 3}" for i in range(n)])),
    "empty": lambda n: pd.Series(np.full(n, np.nan)),
    "late": lambda n: pd.Series(np.where(np.arange(n) < n // 2, np.nan, 1.5), dtype="float32"),
    "absent": None,
}


@pytest.mark.parametrize("storage", ["csv", "parquet"])
def test_each_column_has_the_dtype_of_the_tables_concatenated(storage: str) -> None:
    r = np.random.default_rng(13)
    pairs = [[a, b] for a in sorted(KINDS) for b in sorted(KINDS)]
    triples = [[str(k) for k in r.choice(sorted(KINDS), size=3)] for _ in range(30)]
    for kinds in pairs + triples:
        if all(kind == "absent" for kind in kinds):
            continue
        tables = [pd.DataFrame({"other": np.arange(30)}) for _ in kinds]
        for table, kind in zip(tables, kinds, strict=True):
            make = KINDS[kind]
            if make is not None:
                table["x"] = make(30)
        data = from_tables(tables, tables, storage)
        scanned = profiles.scan(data.source("current", 10), wanted=lambda _: True, read=None, hold_limit=0,
                                sample=accumulators.RowSample(0, 0), prepare=lambda _: None)  # fmt: skip
        assert scanned.columns["x"].dtype == data.frame("current")["x"].dtype, kinds


def test_a_window_that_starts_inside_a_table_keeps_the_whole_tables_dtypes() -> None:
    """A table read whole and its first rows left out: the dtypes are those of the whole table (strings in the
    rows left out make a column of objects, even where only numbers remain)."""
    r = np.random.default_rng(12)
    block = drift.sources.parser_block_rows(2)
    rows = 2 * block + 400
    codes = r.integers(0, 4, rows).astype(object)
    codes[:50] = "z"  # in the first block, which the window leaves out
    table = pd.DataFrame({"code": codes, "x": r.normal(size=rows)}).to_csv(index=False).encode()
    skip = block + 10
    reference = pd.DataFrame({"code": r.integers(0, 4, 3000), "x": r.normal(size=3000)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        window = pd.read_csv(io.BytesIO(table)).iloc[skip:].reset_index(drop=True)
    assert window["code"].dtype == object and not any(isinstance(v, str) for v in window["code"])
    theirs = drift_adversary.preset_on(reference, window)
    ours = drift.check(
        drift.FrameSource(reference),
        drift.TableSource((drift.TablePart("t.csv", lambda: table, skip),), 1000),
    )
    assert {c: v.drifted for c, v in ours.columns.items()} == theirs.columns == {"x": False}
    assert "code" in ours.not_checked


def test_strings_and_numbers_that_evidently_cannot_order_leave_that_column_untested_and_the_rest_tested() -> (
    None
):
    r = np.random.default_rng(7)
    values = ["a", 1]
    reference = pd.DataFrame({"mixed": pd.Series([values[i] for i in r.integers(0, 2, 500)], dtype=object),
                              "x": r.normal(size=500)})  # fmt: skip
    current = pd.DataFrame({"mixed": pd.Series([values[i] for i in r.integers(0, 2, 500)], dtype=object),
                            "x": r.normal(0.5, 1, 500)})  # fmt: skip
    for frame in (reference, current):
        frame.loc[0, "mixed"] = frame.loc[len(frame) - 1, "mixed"] = "a"
    outcome = agree(from_tables([reference], [current], "frame"))
    assert "mixed" in outcome.untestable and "Z-test" in outcome.result.not_checked["mixed"]
    assert outcome.result.columns["x"].drifted


# --- text ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [600, 1500], ids=["percentile test", "absolute test"])
def test_text_columns_get_evidentlys_text_content_drift_to_the_last_bit(rows: int) -> None:
    data = drift_adversary.data_set(21, cases=["text", "normal"], storage="csv", rows=(rows, 900))
    outcome = agree(data)
    name = next(n for n in outcome.result.columns if n.startswith("text"))
    assert outcome.result.columns[name].score == outcome.preset.scores[name]
    assert outcome.result.columns[name].sample is None


def test_text_beyond_the_budget_is_tested_on_a_sample_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text, "TEXT_BYTES", 20_000)
    monkeypatch.setattr(text, "TEXT_SAMPLE", 700)
    data = drift_adversary.data_set(22, cases=["text"], storage="parquet", rows=(3000, 3000))
    result = drift.check(data.source("reference", 500), data.source("current", 500))
    verdict = next(iter(result.columns.values()))
    assert verdict.sample == (700, 700)
    assert verdict.as_dict()["sample"] == {"reference": 700, "current": 700}


# --- many distinct values --------------------------------------------------------------------------------------


def test_a_categorical_column_with_more_values_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accumulators, "MAX_CATEGORIES", 50)
    data = drift_adversary.data_set(23, cases=["int_few_current", "many_categories"], storage="csv",
                                    rows=(3000, 2500))  # fmt: skip
    agree(data)


def test_counts_beyond_what_can_be_held_are_counted_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accumulators, "MAX_CATEGORIES", 50)
    monkeypatch.setattr(text, "TEXT_BYTES", 1000)  # nothing is held: parts it is
    monkeypatch.setattr(categories, "PART_KEYS", 400)
    parts = []
    original = categories._count_part

    def counted(*args: object) -> object:
        parts.append(args[2])
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(categories, "_count_part", counted)
    data = drift_adversary.data_set(24, cases=["int_few_current", "many_categories"], storage="parquet",
                                    rows=(3000, 2500))  # fmt: skip
    agree(data)
    assert len(set(parts)) > 2


def test_integers_with_many_distinct_values() -> None:
    r = np.random.default_rng(9)
    reference = pd.DataFrame({"id": r.integers(0, 10**9, 15_000), "few": r.integers(0, 50_000, 15_000)})
    current = pd.DataFrame({"id": r.integers(0, 10**9, 12_000), "few": r.integers(0, 4, 12_000)})
    outcome = agree(from_tables([reference], [current], "parquet"), chunk_rows=4000)
    assert outcome.result.columns["few"].stattest == "jensenshannon"


# --- types that change, and Wasserstein scores ---------------------------------------------------------------


def test_a_boolean_reference_of_a_numerical_column_is_tested_but_not_counted() -> None:
    r = np.random.default_rng(10)
    reference, current = frames({"flag": r.random(2000) < 0.5, "x": r.normal(size=2000)},
                                {"flag": r.random(2000), "x": r.normal(size=2000)})  # fmt: skip
    outcome = agree(from_tables([reference], [current], "frame"))
    assert not outcome.result.columns["flag"].counted


def test_wasserstein_scores_are_evidentlys_or_marked_as_bounds() -> None:
    data = drift_adversary.data_set(25, cases=["heavy_tail"] * 4, storage="frame", rows=(30_000, 30_000))
    reference, current = data.frame("reference"), data.frame("current")
    for exact_scores in (False, True):
        result = drift.check(
            data.source("reference", 4000), data.source("current", 4000), exact_scores=exact_scores
        )
        for name, verdict in result.columns.items():
            evidently = stattests.wasserstein_exact(reference[name], current[name])
            if verdict.exact:
                assert verdict.score == pytest.approx(evidently, rel=1e-9)
            else:
                assert not exact_scores
                low, high = verdict.bounds
                assert low <= evidently <= high and verdict.as_dict()["value_bounds"] == [low, high]


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_random_combinations(seed: int) -> None:
    agree(drift_adversary.data_set(seed))
