"""Long waits say what they wait for on stderr: one redrawn line on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import io
import time

import pytest

from shared.tools.progress import wait_until, waiting


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_on_a_terminal_one_line_is_redrawn_and_wiped_at_the_end() -> None:
    screen, clock = Terminal(), Clock()
    answers = iter([None, None, None, "v1"])

    found = wait_until(
        lambda: next(answers), "version 1", 60, interval=2, stream=screen, sleep=clock.sleep, clock=clock
    )

    assert found == "v1"
    drawn = screen.getvalue()
    assert "\n" not in drawn  # one line, redrawn in place
    assert drawn.count("\r\x1b[2K") == 4 and drawn.endswith("\r\x1b[2K")
    assert "waiting for version 1 … 0 s" in drawn and "waiting for version 1 … 4 s" in drawn


def test_elsewhere_a_plain_line_every_period_and_none_for_a_short_wait() -> None:
    log, clock = io.StringIO(), Clock()
    answers = iter([None] * 25 + ["done"])

    wait_until(
        lambda: next(answers),
        "the release",
        600,
        interval=1,
        stream=log,
        sleep=clock.sleep,
        clock=clock,
        every=10,
    )

    assert log.getvalue().splitlines() == [
        "still waiting for the release (10 s)",
        "still waiting for the release (20 s)",
    ]
    quiet = io.StringIO()
    wait_until(lambda: True, "x", 5, stream=quiet)
    assert quiet.getvalue() == ""


def test_a_wait_that_times_out_says_what_it_gave_up_on() -> None:
    screen, clock = Terminal(), Clock()

    with pytest.raises(TimeoutError, match="gave up waiting for traffic after 3 s"):
        wait_until(lambda: None, "traffic", 3, interval=1, stream=screen, sleep=clock.sleep, clock=clock)

    assert screen.getvalue().endswith("\r\x1b[2K")  # the line is wiped for the error that follows


def test_a_blocking_call_is_reported_from_a_thread_while_it_runs() -> None:
    screen = Terminal()

    with waiting("reconcile to finish", screen, redraw=0.01):
        time.sleep(0.1)

    assert "waiting for reconcile to finish" in screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[2K")


class BrokenTerminal(Terminal):
    def write(self, text: str) -> int:
        raise BrokenPipeError("stderr went away")


def test_a_broken_stderr_does_not_end_the_wait() -> None:
    clock = Clock()
    answers = iter([None, None, "ok"])

    found = wait_until(
        lambda: next(answers), "x", 60, stream=BrokenTerminal(), sleep=clock.sleep, clock=clock
    )

    assert found == "ok"
