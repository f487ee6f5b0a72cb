"""How a shadow's answers are compared with production's: labels by equality, numbers by their difference, and
answers that cannot be compared counted, never taken as agreement."""

from __future__ import annotations

import math

import pytest

from shared.domain.decisions.shadow import answer, compare


def test_labels_agree_when_equal_as_json_answers() -> None:
    pairs = [(1, 1), (0, 1.0), ("1", 1), ("cat", "cat"), ("cat", "dog"), (True, 1)]
    evidence = compare(pairs, "multiclass")
    assert evidence == {"pairs": 6, "unreadable": 0, "agreement": round(4 / 6, 6)}


def test_regression_difference_is_absolute_and_relative_to_productions_answers() -> None:
    evidence = compare([(10.0, 12.0), (-20.0, -18.0), (30.0, 30.0)], "regression")
    assert evidence["mean_abs_difference"] == pytest.approx(4 / 3, abs=1e-6)
    assert evidence["relative_difference"] == pytest.approx((4 / 3) / 20.0, abs=1e-6)


@pytest.mark.parametrize(
    "shadow", [None, {"a": 1, "b": 2}, [1, 2], "not a number", math.nan, math.inf, {"nested": {}}]
)
def test_answers_that_cannot_be_compared_are_counted_not_agreed(shadow: object) -> None:
    evidence = compare([(1.0, answer(shadow))], "regression")
    assert evidence["pairs"] == 0 and evidence["unreadable"] == 1
    assert evidence["mean_abs_difference"] is None and evidence["relative_difference"] is None


def test_no_pairs_is_no_agreement_figure() -> None:
    assert compare([], "binary") == {"pairs": 0, "unreadable": 0, "agreement": None}


def test_the_prediction_is_read_from_a_record_by_its_column() -> None:
    assert answer({"prediction": 3, "probability": 0.7}, "prediction") == 3
    assert answer({"score": 2.5}) == 2.5
    assert answer([4]) == 4
    assert answer({"a": 1, "b": 2}) is None
