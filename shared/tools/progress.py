"""Progress of a long wait, on stderr: what is awaited and for how long, so a silent terminal is not a hung one.

On a terminal, one line redrawn in place (`waiting for X … 12 s`) and wiped when the wait ends; elsewhere (a
log, CI), a plain line every `every` seconds once the wait has lasted that long, so short waits stay quiet.
Only stderr is written: stdout (a command's answer, `--json`) is left as it is.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from shared.tools.tables import clip, terminal_columns

REDRAW_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 10.0


class Progress:
    """Reports one wait; `waiting(...)` is the way to use it."""

    def __init__(
        self,
        what: str,
        stream: TextIO | None = None,
        *,
        every: float = PLAIN_EVERY_SECONDS,
        redraw: float = REDRAW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.redraw = redraw
        self._clock = clock
        self._started = clock()
        self._reported = 0.0  # seconds at the last plain line
        self._drawn = False
        self.live = _is_terminal(self.stream)

    def elapsed(self) -> float:
        return self._clock() - self._started

    def tick(self) -> None:
        """Show the wait as it is now (a redraw on a terminal, a line when `every` seconds passed elsewhere)."""
        seconds = self.elapsed()
        if self.live:
            line = clip(f"waiting for {self.what} … {seconds:.0f} s", terminal_columns() - 1)
            self._write(f"\r\x1b[2K{line}")
            self._drawn = True
        elif seconds - self._reported >= self.every:
            self._reported = seconds
            self._write(f"still waiting for {self.what} ({seconds:.0f} s)\n")

    def done(self) -> None:
        if self._drawn:
            self._write("\r\x1b[2K")  # the line goes: what follows prints where it was
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not end the wait
            self.live = False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@contextmanager
def waiting(what: str, stream: TextIO | None = None, **options: Any) -> Iterator[Progress]:
    """Report on a thread while the body runs (one blocking call: a request, a start-up)."""
    progress = Progress(what, stream, **options)
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(progress.redraw if progress.live else min(progress.redraw, progress.every)):
            progress.tick()

    reporter = threading.Thread(target=report, name="progress", daemon=True)
    reporter.start()
    try:
        yield progress
    finally:
        stop.set()
        reporter.join()
        progress.done()


def wait_until(
    condition: Callable[[], Any],
    what: str,
    timeout: float,
    *,
    interval: float = 0.2,
    stream: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> Any:
    """Poll `condition` until it returns something truthy (returned) or `timeout` seconds pass (TimeoutError)."""
    progress = Progress(what, stream, clock=clock, **options)
    try:
        while progress.elapsed() < timeout:
            value = condition()
            if value:
                return value
            progress.tick()
            sleep(interval)
    finally:
        progress.done()
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
