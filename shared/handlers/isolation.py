"""Loops over items (files, runs, releases) in which one item that fails does not stop the others.

A tick that meets a poison item handles every other item, then raises `ItemsFailed` naming each failure, so the
timer's invocation is marked failed while the work behind the poison still gets done. The lease counts the
failed attempt on the item's record and sets it aside as stuck once it keeps failing (`shared.state.lease`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class ItemsFailed(RuntimeError):
    """Some items of a loop failed; the others were handled (`handled` of them did something)."""

    def __init__(self, failures: list[str], handled: int) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.handled = handled


def each(items: Iterable[T], handle: Callable[[T], Any], describe: Callable[[T], str]) -> int:
    """Call `handle` on every item; returns how many answered truthily, or raises ItemsFailed at the end."""
    handled = 0
    failures: list[str] = []
    for item in items:
        try:
            handled += bool(handle(item))
        except Exception as error:
            log.exception("item failed; the others go on", extra={"item": describe(item)})
            failures.append(f"{describe(item)}: {type(error).__name__}: {error}"[:500])
    if failures:
        raise ItemsFailed(failures, handled)
    return handled
