"""Adversarial columns for the drift check: the cases where a chunked computation is most likely to part ways
with Evidently's DataDriftPreset on the full data, and the comparison of the two.

A case is a pair of columns (reference, current) built to sit near a test's threshold or on one of Evidently's
edges: +-inf with and without NaN, float32, few values, ties, heavy tails, integers with many values, strings
with many categories, text, numbers and strings in one column (within a file, or across files), a type that
changes between the data sets, constant and empty columns. `data_set(seed)` draws a handful of cases and writes
both data sets as tables (CSV or Parquet, one to three per side) or keeps them as frames; `compare` runs the
check on the tables and the preset on what pandas reads from them, and says where they differ.

Used by tests/unit/domain/test_drift_parity.py (a few seeds and named cases) and bench/drift_parity.py (many).
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Values = Any  # a numpy array or a list of Python objects
Case = Callable[[np.random.Generator, int, int], tuple[Values, Values]]

WORDS = [
    "model",
    "drift",
    "data",
    "river",
    "stone",
    "cloud",
    "metric",
    "label",
    "feature",
    "window",
    "storage",
    "event",
    "queue",
    "score",
    "forest",
    "signal",
    "vector",
    "budget",
    "harbor",
    "planet",
    "lantern",
    "meadow",
    "copper",
    "violet",
    "anchor",
    "summit",
]


def _near(r: np.random.Generator, low: float, high: float) -> float:
    return float(r.uniform(low, high))


# --- numerical ---------------------------------------------------------------------------------------------


def normal(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    return r.normal(size=n1), r.normal(_near(r, 0, 0.25), _near(r, 0.85, 1.2), n2)


def heavy_tail(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    kind = int(r.integers(3))
    if kind == 0:
        return r.lognormal(0, 1.5, n1), r.lognormal(_near(r, -0.1, 0.2), _near(r, 1.3, 1.9), n2)
    if kind == 1:
        return r.pareto(1.2, n1), r.pareto(_near(r, 0.9, 1.4), n2)
    return r.standard_cauchy(n1), r.standard_cauchy(n2) * _near(r, 0.8, 1.3) + _near(r, 0, 0.2)


def rounded(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    digits = int(r.integers(0, 2))
    a, b = normal(r, n1, n2)
    return np.round(a * 3, digits), np.round(b * 3, digits)


def few_floats(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    k = int(r.integers(1, 7))
    levels = np.arange(k) + 0.5
    p = r.dirichlet(np.ones(k))
    q = 0.85 * p + 0.15 * r.dirichlet(np.ones(k))
    return r.choice(levels, n1, p=p), r.choice(levels, n2, p=q)


def _holes(r: np.random.Generator, values: np.ndarray, fill: float, share: float) -> np.ndarray:
    values = values.astype(float)
    values[r.random(len(values)) < share] = fill
    return values


def with_nan(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    a, b = normal(r, n1, n2)
    return _holes(r, a, np.nan, 0.1), _holes(r, b, np.nan, _near(r, 0, 0.2))


def _infinities(r: np.random.Generator, values: np.ndarray) -> np.ndarray:
    values = values.astype(float)
    count = int(r.choice([1, 2, 5]))
    at = r.choice(len(values), size=min(count, len(values)), replace=False)
    values[at] = r.choice([np.inf, -np.inf], size=len(at), p=[0.7, 0.3])
    return values


def with_inf(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """+-inf and no NaN on one side or both: Evidently's data-set count keeps them, its column test drops them."""
    a, b = (few_floats if r.random() < 0.3 else normal)(r, n1, n2)
    where = int(r.integers(3))
    if where in (0, 2):
        a = _infinities(r, a)
    if where in (1, 2):
        b = _infinities(r, b)
    if r.random() < 0.3:  # NaN on one side: that side is cleaned in the count too
        a = _holes(r, a, np.nan, 0.05)
    return a, b


def float32(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    a, b = normal(r, n1, n2)
    offset = float(r.choice([0, 1000, 1e5]))
    return (a + offset).astype(np.float32), (b + offset).astype(np.float32)


def constant(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    if r.random() < 0.5:
        return np.full(n1, 7.5), r.normal(7.5, 0.01, n2)
    return r.normal(0, 1e-4, n1), r.normal(_near(r, 0, 5e-5), 1e-4, n2)


def empty(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    a, b = normal(r, n1, n2)
    if r.random() < 0.5:
        return a, np.full(n2, np.nan)
    return np.full(n1, np.nan), b


# --- integers ----------------------------------------------------------------------------------------------


def int_categories(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    k = int(r.integers(2, 11))
    p = r.dirichlet(np.ones(k))
    q = 0.9 * p + 0.1 * r.dirichlet(np.ones(k))
    return r.choice(k, n1, p=p), r.choice(k, n2, p=q)


def int_many(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """Integers with many values, up to far more than 10,000 distinct ones."""
    top = int(r.choice([30, 500, 50_000, 10**9]))
    shift = int(top * _near(r, 0, 0.06))
    return r.integers(0, top, n1), r.integers(shift, top + shift, n2)


def int_few_current(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """Categorical in the current data (at most 10 values), many distinct values in the reference."""
    return r.integers(0, 50_000, n1), r.integers(0, int(r.integers(2, 11)), n2)


def int_missing(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    a, b = int_many(r, n1, n2)
    return _holes(r, a, np.nan, 0.05), b


# --- booleans and strings ----------------------------------------------------------------------------------


def booleans(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    p = _near(r, 0.2, 0.5)
    a, b = r.random(n1) < p, r.random(n2) < p + _near(r, -0.05, 0.05)
    if r.random() < 0.25:  # missing values: an object column of bools, which Evidently does not type
        return a, np.where(r.random(n2) < 0.05, None, b).tolist()
    return a, b


def _labels(k: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i}" for i in range(k)]


def categories(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    k = int(r.integers(1, 8))
    p = r.dirichlet(np.ones(k))
    q = 0.9 * p + 0.1 * r.dirichlet(np.ones(k))
    a, b = r.choice(_labels(k), n1, p=p).astype(object), r.choice(_labels(k), n2, p=q).astype(object)
    if r.random() < 0.3:
        a[r.random(n1) < 0.05] = None
    return a, b


def many_categories(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """Strings with many distinct values (categorical when at most half the values are distinct)."""
    k1, k2 = max(2, int(n1 * _near(r, 0.2, 0.6))), max(2, int(n2 * _near(r, 0.3, 0.7)))
    return (
        np.array(_labels(k1, "k"), dtype=object)[r.integers(0, k1, n1)],
        np.array(_labels(k2, "k"), dtype=object)[r.integers(0, k2, n2)],
    )


def text(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """Sentences, nearly all distinct: Evidently's text-content drift (a classifier on the words)."""
    drift = _near(r, 0, 0.3)
    p = r.dirichlet(np.ones(len(WORDS)))
    q = (1 - drift) * p + drift * r.dirichlet(np.ones(len(WORDS)))

    def sentences(n: int, weights: np.ndarray) -> list[str]:
        lengths = r.integers(3, 9, n)
        words = r.choice(WORDS, int(lengths.sum()), p=weights)
        cuts = np.cumsum(lengths)[:-1]
        return [f"{' '.join(w)} {i}" for i, w in enumerate(np.split(words, cuts))]

    return sentences(n1, p), sentences(n2, q)


# --- mixed and changing types ------------------------------------------------------------------------------


def mixed_objects(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """Strings and numbers in one object column (a frame, or CSV files parsed apart)."""
    k = int(r.choice([2, 3, 5]))
    levels: list[object] = ["a", 1, "b", 2.5, "c"][:k]
    a = [levels[i] for i in r.integers(0, k, n1)]
    b = [levels[i] for i in r.integers(0, k, n2)]
    a[0] = a[-1] = b[0] = b[-1] = "a"  # strings first and last: Evidently types the column by its ends
    return a, b


def type_change(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    kind = int(r.integers(6))
    if kind == 0:  # numbers, then strings
        return r.integers(0, 5, n1), np.array(_labels(5, "v"), dtype=object)[r.integers(0, 5, n2)]
    if kind == 1:  # floats, then booleans
        return r.normal(size=n1), r.random(n2) < 0.5
    if kind == 2:  # booleans, then floats: tested, but not in Evidently's data-set count
        return r.random(n1) < 0.5, r.random(n2)
    if kind == 3:  # unsigned integers, then floats (Parquet and frames keep uint8)
        return r.integers(0, 200, n1).astype(np.uint8), r.normal(100, 50, n2)
    if kind == 4:  # floats, then unsigned integers: Evidently does not type uint8
        return r.normal(100, 50, n1), r.integers(0, 200, n2).astype(np.uint8)
    return np.array(_labels(4), dtype=object)[r.integers(0, 4, n1)], r.normal(size=n2)  # Evidently raises


def pandas_categories(r: np.random.Generator, n1: int, n2: int) -> tuple[Values, Values]:
    """pandas' category dtype (frames and Parquet keep it; tables with other categories concatenate to objects)."""
    k = int(r.integers(2, 6))
    a, b = r.choice(_labels(k), n1), r.choice(_labels(k + int(r.integers(0, 2))), n2)
    return pd.Categorical(a), pd.Categorical(b)


CASES: dict[str, Case] = {
    "normal": normal,
    "heavy_tail": heavy_tail,
    "rounded": rounded,
    "few_floats": few_floats,
    "with_nan": with_nan,
    "with_inf": with_inf,
    "float32": float32,
    "constant": constant,
    "empty": empty,
    "int_categories": int_categories,
    "int_many": int_many,
    "int_few_current": int_few_current,
    "int_missing": int_missing,
    "booleans": booleans,
    "categories": categories,
    "many_categories": many_categories,
    "text": text,
    "mixed_objects": mixed_objects,
    "type_change": type_change,
    "pandas_categories": pandas_categories,
}
NEEDS_BINARY = {"float32"}  # CSV would read float32 back as float64
NEEDS_OBJECTS = {"mixed_objects"}  # Parquet cannot hold numbers and strings in one column


# --- data sets -----------------------------------------------------------------------------------------------


@dataclass
class DataSet:
    """Both sides as tables (name -> bytes) or frames, the columns drawn, and how pandas reads them back."""

    seed: int
    storage: str  # csv, parquet or frame
    columns: dict[str, str]  # column -> case
    reference: list[tuple[str, Any]] = field(default_factory=list)  # (name, bytes) or (name, frame)
    current: list[tuple[str, Any]] = field(default_factory=list)

    def source(self, side: str, chunk_rows: int) -> Any:
        from shared.domain import drift

        parts = self.reference if side == "reference" else self.current
        if self.storage == "frame":
            return drift.FrameSource(parts[0][1], chunk_rows)
        return drift.TableSource(tuple(drift.TablePart(n, lambda b=b: b) for n, b in parts), chunk_rows)

    def frame(self, side: str) -> pd.DataFrame:
        """What Evidently is given: each table read whole by pandas, the tables concatenated."""
        parts = self.reference if side == "reference" else self.current
        if self.storage == "frame":
            return parts[0][1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' DtypeWarning for mixed columns is the point here
            read = pd.read_parquet if self.storage == "parquet" else pd.read_csv
            return pd.concat([read(io.BytesIO(b)) for _, b in parts], ignore_index=True)


def data_set(
    seed: int, cases: list[str] | None = None, storage: str | None = None, rows: tuple[int, int] | None = None
) -> DataSet:
    """A random data set (`cases`, `storage` and `rows` fix what they name)."""
    r = np.random.default_rng(seed)
    n1 = int(r.choice([300, 800, 1000, 1001, 1500, 4000, 12_000, 30_000]))
    n2 = int(r.choice([300, 1000, 2500, 12_000, 30_000]))
    if rows is not None:
        n1, n2 = rows
    chosen = cases or list(r.choice(sorted(CASES), size=int(r.integers(3, 9)), replace=False))
    if storage is None:
        options = ["csv", "parquet", "frame"]
        if NEEDS_BINARY & set(chosen):
            options.remove("csv")
        if NEEDS_OBJECTS & set(chosen):
            options.remove("parquet")
        storage = str(r.choice(options))
    reference, current, columns = {}, {}, {}
    for index, case in enumerate(chosen):
        name = f"{case}_{index}"
        reference[name], current[name] = CASES[case](r, n1, n2)
        columns[name] = str(case)
    result = DataSet(seed, storage, columns)
    for side, values, n in (("reference", reference, n1), ("current", current, n2)):
        frame = pd.DataFrame({name: pd.Series(v, dtype=_dtype(v)) for name, v in values.items()})
        getattr(result, side).extend(_tables(frame, storage, r, n))
    return result


def from_tables(reference: list[pd.DataFrame], current: list[pd.DataFrame], storage: str = "csv") -> DataSet:
    """A data set of the given tables (frames: one per side), written in `storage`."""
    result = DataSet(0, storage, {name: "given" for name in current[0].columns})
    for side, frames in (("reference", reference), ("current", current)):
        for index, frame in enumerate(frames):
            if storage == "frame":
                getattr(result, side).append(("frame", frame))
            elif storage == "csv":
                getattr(result, side).append((f"part-{index}.csv", frame.to_csv(index=False).encode()))
            else:
                buffer = io.BytesIO()
                frame.to_parquet(buffer, index=False)
                getattr(result, side).append((f"part-{index}.parquet", buffer.getvalue()))
    return result


def _dtype(values: Values) -> Any:
    return object if isinstance(values, list) else None  # a Categorical keeps its own


def _tables(frame: pd.DataFrame, storage: str, r: np.random.Generator, rows: int) -> list[tuple[str, Any]]:
    if storage == "frame":
        return [("frame", frame)]
    parts = int(r.integers(1, 4))
    cuts = sorted({0, rows, *(int(c) for c in r.integers(1, rows, parts - 1))})
    tables = []
    for index, (start, end) in enumerate(itertools.pairwise(cuts)):
        piece = frame.iloc[start:end]
        if storage == "csv":
            piece = _numbers_in_some_files(piece, index, r)
            tables.append((f"part-{index}.csv", piece.to_csv(index=False).encode()))
        else:
            buffer = io.BytesIO()
            piece.to_parquet(buffer, index=False)
            tables.append((f"part-{index}.parquet", buffer.getvalue()))
    return tables


def _numbers_in_some_files(piece: pd.DataFrame, index: int, r: np.random.Generator) -> pd.DataFrame:
    """Mixed object columns written so that some files hold only numbers: pandas parses those as numbers."""
    piece = piece.copy()
    for name in piece.columns:
        if name.startswith("mixed_objects") and index % 2 == 1:
            piece[name] = r.integers(0, 3, len(piece))
    return piece


# --- the comparison ----------------------------------------------------------------------------------------


@dataclass
class Comparison:
    columns: dict[str, str]  # column -> case
    result: Any  # the check's DriftResult (None if it raised)
    preset: Any  # Evidently's PresetVerdicts on the columns it can test (None if none)
    untestable: dict[str, str]  # columns on which Evidently raises, and its error
    agreeing: list[str]  # columns whose verdict (or untestability) is the preset's
    differing: dict[str, str]  # column -> how
    data_set_agrees: bool
    data_set: str  # how the data-set verdicts compare
    error: str | None = None  # the check raised


def untestable(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, str]:
    """Columns on which the preset raises (which aborts its whole report), each with Evidently's error. Each is
    run with a plain numerical companion, so that the data-set count is never empty (a count of no columns
    divides by zero)."""
    from tests.evidently_yardstick import preset_verdicts

    failing = {}
    companion = "__companion"
    for name in current.columns:
        if name not in reference.columns:
            continue
        ref = reference[[name]].assign(**{companion: np.arange(len(reference)) % 7 + 0.5})
        cur = current[[name]].assign(**{companion: np.arange(len(current)) % 7 + 0.5})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                preset_verdicts(ref, cur)
        except Exception as error:  # Evidently raises all sorts: that is what is being recorded
            failing[name] = f"{type(error).__name__}: {error}"
    return failing


def preset_on(reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5) -> Any:
    """Evidently's verdicts on the columns both frames have, its warnings silenced."""
    from tests.evidently_yardstick import preset_verdicts

    common = [c for c in current.columns if c in reference.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return preset_verdicts(reference[common], current[common], drift_share)


def compare(data: DataSet, chunk_rows: int = 700, drift_share: float = 0.5) -> Comparison:
    from shared.domain import drift
    from tests.evidently_yardstick import preset_verdicts

    reference, current = data.frame("reference"), data.frame("current")
    common = [c for c in current.columns if c in reference.columns]
    failing: dict[str, str] = {}
    theirs = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = preset_verdicts(reference[common], current[common], drift_share)
        except Exception:  # some column aborts the preset: find which, and run it on the others
            failing = untestable(reference, current)
            kept = [c for c in common if c not in failing]
            theirs = preset_verdicts(reference[kept], current[kept], drift_share) if kept else None
    try:
        ours = drift.check(
            data.source("reference", chunk_rows),
            data.source("current", chunk_rows),
            drift_share=drift_share,
            sample_rows=100,
        )
    except Exception as error:  # the check must never raise on data: counted as disagreeing everywhere
        differing = dict.fromkeys(data.columns, "check raised")
        return Comparison(data.columns, None, theirs, failing, [], differing, False, "raised", repr(error))
    agreeing, differing = [], {}
    expected = theirs.columns if theirs else {}
    for name in data.columns:
        mine = ours.columns.get(name)
        if name in expected:
            if mine is None:
                differing[name] = f"not tested by us ({ours.not_checked.get(name) or ours.schema.as_dict()})"
            elif mine.drifted != expected[name]:
                differing[name] = (
                    f"ours {mine.drifted} ({mine.stattest} {mine.score:.6g}), Evidently {expected[name]}"
                )
                differing[name] += f" ({theirs.methods[name]} {theirs.scores[name]:.6g})" if theirs else ""
            else:
                agreeing.append(name)
        elif mine is not None:
            differing[name] = (
                f"tested by us ({mine.stattest}), not by Evidently ({failing.get(name, 'untyped')})"
            )
        else:
            agreeing.append(name)
    if theirs is None:
        same = not ours.columns
        how = "no columns on either side" if same else "Evidently tests nothing"
    else:
        same = ours.drifted == theirs.drifted and abs(ours.drift_share - theirs.drift_share) < 1e-12
        how = (
            f"ours {ours.drifted} {ours.drift_share:.4f}, Evidently {theirs.drifted} {theirs.drift_share:.4f}"
        )
    return Comparison(data.columns, ours, theirs, failing, agreeing, differing, same, how)
