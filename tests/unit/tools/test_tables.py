"""Tables for the terminal: aligned, cut to its width, and safe whatever JSON value a cell holds."""

from __future__ import annotations

import pytest

from shared.tools.tables import cell, clip, fields, table, terminal_columns, width


def test_columns_line_up_under_their_headers() -> None:
    shown = table(["ID", "STATUS"], [["a", "production"], ["longer-id", "canary"]], columns=80)

    lines = shown.splitlines()
    assert lines == ["ID         STATUS", "a          production", "longer-id  canary"]
    assert {
        line.index(word) for line, word in zip(lines, ["STATUS", "production", "canary"], strict=True)
    } == {11}


def test_a_long_value_is_cut_with_an_ellipsis_so_every_line_fits() -> None:
    rows = [["r1", "x" * 300, "short"], ["r2", "y", "z" * 50]]

    shown = table(["ID", "REASON", "MORE"], rows, columns=60)

    assert all(width(line) <= 60 for line in shown.splitlines())
    assert "…" in shown.splitlines()[1] and shown.splitlines()[1].startswith("r1  xxx")
    assert shown.splitlines()[2].startswith("r2  y ")  # short values are never cut


def test_the_widest_column_gives_way_first() -> None:
    shown = table(["A", "B"], [["keep-this-whole", "w" * 100]], columns=40)

    assert "keep-this-whole" in shown and "…" in shown


def test_a_terminal_too_narrow_still_prints_every_row() -> None:
    shown = table(["ONE", "TWO", "THREE"], [["a" * 30, "b" * 30, "c" * 30]], columns=10)

    assert len(shown.splitlines()) == 2 and "…" in shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        ("", "-"),
        (True, "yes"),
        (False, "no"),
        (0, "0"),
        (3.14159265, "3.142"),
        (1e-12, "1e-12"),
        (float("nan"), "nan"),
        ([1, "a"], '[1, "a"]'),
        ({"k": None}, '{"k": null}'),
        ("line\nbreak\ttab", "line break tab"),
        ("\x1b[2Jcleared", "\ufffd[2Jcleared"),
        ("right\u202eto-left", "right\ufffdto-left"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_any_json_value_becomes_one_printable_line(value: object, shown: str) -> None:
    assert cell(value) == shown


def test_a_huge_or_deep_value_is_bounded_not_a_crash() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]

    assert cell("x" * 10_000_000).endswith("…") and len(cell("x" * 10_000_000)) < 5000
    assert cell(deep) == "<list>"


def test_double_width_characters_count_twice_and_align() -> None:
    shown = table(["NAME", "N"], [["模型", 1], ["ab", 2]], columns=40).splitlines()

    assert width("模型") == 4 and width("e\u0301") == 1
    assert [
        line.index(str(n)) + (2 if "模型" in line else 0) for line, n in zip(shown[1:], [1, 2], strict=True)
    ] == [6, 6]
    assert width(clip("模型模型模型", 5)) <= 5 and clip("模型模型模型", 5).endswith("…")


def test_rows_of_any_length_fill_or_drop_to_the_headers() -> None:
    shown = table(["A", "B"], [["only-a"], ["a", "b", "extra"]], columns=40).splitlines()

    assert shown[1].split() == ["only-a", "-"] and shown[2].split() == ["a", "b"]


def test_fields_align_their_values_and_fit() -> None:
    shown = fields([("model", "m:2"), ("deployment", "x" * 200)], columns=30).splitlines()

    assert shown[0] == "model       m:2"
    assert shown[1].startswith("deployment  xxx") and width(shown[1]) == 30


def test_the_width_is_the_terminals_or_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "57")
    assert terminal_columns() == 57
    monkeypatch.setenv("COLUMNS", "3")
    assert terminal_columns() == 20  # never narrower than a line can say anything in
