"""Plain-text tables and sections for the terminal, from any JSON value.

The HTTP API is the boundary: a cell may be a string, a number, a list, an object or null, and a string may
hold newlines, terminal escape sequences or double-width characters. Every value is made one printable line
(`cell`), measured in terminal columns (`width`) and cut to fit (`clip`); a table shrinks its widest columns
first until the whole line fits the terminal.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Sequence
from typing import Any

ELLIPSIS = "…"
GAP = "  "
MIN_COLUMN = 6  # a column is never cut narrower than this (its header may be)
FALLBACK_COLUMNS = 100
LONGEST_CELL = 4096  # characters of one value looked at: no terminal is wider, and a huge value stays cheap


def terminal_columns() -> int:
    """The terminal's width (COLUMNS if set), else FALLBACK_COLUMNS when output goes to a file or pipe."""
    return max(20, shutil.get_terminal_size((FALLBACK_COLUMNS, 24)).columns)


def cell(value: Any, missing: str = "-") -> str:
    """One printable line for any JSON value: null and "" as `missing`, numbers short, lists and objects as
    compact JSON; control characters (newlines, escape sequences) never reach the terminal."""
    if value is None or value == "":
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, int | str):
        text = str(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
        except (ValueError, RecursionError):  # circular or too deep: say so rather than crash
            text = f"<{type(value).__name__}>"
    return _printable(text[:LONGEST_CELL]) + (ELLIPSIS if len(text) > LONGEST_CELL else "")


def _printable(text: str) -> str:
    out = []
    for char in text:
        if char in "\n\r\t\v\f":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append("\ufffd")  # escapes, bidi overrides, lone surrogates: shown, never obeyed
        else:
            out.append(char)
    return "".join(out)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Terminal columns `text` takes (double-width characters count 2, combining marks 0)."""
    return sum(_char_width(char) for char in text)


def clip(text: str, columns: int) -> str:
    """`text` cut to at most `columns` terminal columns, an ellipsis saying it was cut."""
    if width(text) <= columns:
        return text
    if columns <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        step = _char_width(char)
        if used + step > columns - 1:
            break
        kept.append(char)
        used += step
    return "".join(kept) + ELLIPSIS


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], columns: int | None = None) -> str:
    """Aligned columns under their headers, each line at most `columns` wide (the terminal's by default)."""
    limit = terminal_columns() if columns is None else columns
    grid = [[cell(value) for value in row] for row in rows]
    count = len(headers)
    grid = [(row + ["-"] * count)[:count] for row in grid]
    sizes = [max([width(header), *(width(row[i]) for row in grid)]) for i, header in enumerate(headers)]
    sizes = _fit(sizes, limit - len(GAP) * (count - 1))
    lines = [GAP.join(pad(clip(h, s), s) for h, s in zip(headers, sizes, strict=True))]
    lines += [GAP.join(pad(clip(value, s), s) for value, s in zip(row, sizes, strict=True)) for row in grid]
    return "\n".join(clip(line.rstrip(), limit) for line in lines)  # too many columns: the last ones go


def _fit(sizes: list[int], room: int) -> list[int]:
    """Narrow the widest columns, one column at a time, until they fit in `room` (or none can shrink more)."""
    sizes = list(sizes)
    while sum(sizes) > room:
        widest = max(range(len(sizes)), key=lambda i: sizes[i])
        if sizes[widest] <= MIN_COLUMN:
            break
        others = sorted((s for i, s in enumerate(sizes) if i != widest), reverse=True)
        target = max(MIN_COLUMN, others[0] if others else MIN_COLUMN, sizes[widest] - (sum(sizes) - room))
        sizes[widest] = target if target < sizes[widest] else sizes[widest] - 1
    return sizes


def fields(pairs: Sequence[tuple[str, Any]], columns: int | None = None) -> str:
    """`label  value` lines, the values aligned, each line cut to `columns`."""
    limit = terminal_columns() if columns is None else columns
    labels = [cell(label) for label, _ in pairs]
    size = max((width(label) for label in labels), default=0)
    return "\n".join(
        clip(f"{pad(label, size)}{GAP}{cell(value)}", limit).rstrip()
        for label, (_, value) in zip(labels, pairs, strict=True)
    )


def heading(title: str, columns: int | None = None) -> str:
    limit = terminal_columns() if columns is None else columns
    return clip(cell(title), limit)
