"""Drift on captured traffic is the preset's verdict on the rows the collector recorded: the current data is
what `pd.DataFrame.from_records` makes of every captured row, however the rows fall into chunks (a chunk where
a column is all null, or all integers, while the whole column is floats), and whatever JSON put in a field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.domain import drift
from tests.evidently_yardstick import preset_verdicts


def _captured(rows: int, seed: int) -> list[dict[str, Any]]:
    """Rows as JSON brings them back: ints and floats in one field, nulls in runs, keys some rows lack,
    strings, booleans; two fields shifted."""
    r = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(rows):
        row: dict[str, Any] = {
            "age": int(r.integers(20, 80)) if i % 3 else float(r.normal(60, 9)),  # ints, then floats
            "bmi": None if 200 <= i < 320 else round(float(r.normal(0.4, 1)), 4),  # a run of nulls
            "plan": str(r.choice(["basic", "plus", "pro"], p=[0.2, 0.3, 0.5])),
            "visits": int(r.poisson(3)),
            "smoker": bool(r.random() < 0.3),
        }
        if i % 7:
            row["score"] = round(float(r.normal(0, 1)), 3)  # a key some rows lack
        out.append(row)
    return out


def _reference(rows: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": r.normal(55, 10, rows),
            "bmi": r.normal(0, 1, rows),
            "plan": r.choice(["basic", "plus", "pro"], rows, p=[0.4, 0.4, 0.2]),
            "visits": r.poisson(3, rows),
            "smoker": r.random(rows) < 0.3,
            "score": r.normal(0, 1, rows),
        }
    )


@pytest.mark.parametrize("chunk_rows", [100, 1000, 5000])
def test_verdicts_on_captured_rows_are_the_presets_on_the_records_framed_whole(chunk_rows: int) -> None:
    captured = _captured(1500, seed=4)
    reference = _reference(2000, seed=5)

    result = drift.check(
        drift.FrameSource(reference, chunk_rows),
        drift.RecordSource(lambda: iter(captured), chunk_rows),
    )
    expected = preset_verdicts(reference, pd.DataFrame.from_records(captured))

    ours = {name: verdict.drifted for name, verdict in result.columns.items()}
    assert ours == expected.columns
    assert (result.drifted, result.drift_share) == (expected.drifted, pytest.approx(expected.drift_share))
    assert {"bmi", "plan"} <= set(result.drifted_columns)  # the shifted fields are found
    assert result.current_rows == len(captured)


def test_a_field_no_request_ever_filled_is_not_tested_on_either_side() -> None:
    captured = [{**row, "bmi": None} for row in _captured(600, seed=6)]
    reference = _reference(800, seed=7)

    result = drift.check(drift.FrameSource(reference), drift.RecordSource(lambda: iter(captured), 100))
    expected = preset_verdicts(reference, pd.DataFrame.from_records(captured))

    assert "bmi" not in expected.columns and "bmi" not in result.columns
    assert {n: v.drifted for n, v in result.columns.items()} == expected.columns
