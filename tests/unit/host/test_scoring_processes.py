"""Telling a scoring process a dead router left running from a stranger with its pid."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from shared.host.endpoint import processes

STARTED = 1_800_000_000.25
SCORER = ["/venv/bin/python", "-m", processes.SCORING_MODULE, "--model", "/m", "--port", "5001"]


class _Process:
    """What psutil reports for one pid: its start time, status, and the command lines read one after another."""

    def __init__(self, command_lines: list[list[str]], status: str = psutil.STATUS_RUNNING) -> None:
        self._lines: Iterator[list[str]] = iter(command_lines)
        self._last: list[str] = []
        self._status = status
        self.reads = 0

    def create_time(self) -> float:
        return STARTED

    def status(self) -> str:
        return self._status

    def cmdline(self) -> list[str]:
        self.reads += 1
        self._last = next(self._lines, self._last)
        return self._last


@pytest.fixture()
def pid_table(monkeypatch: pytest.MonkeyPatch) -> dict[int, _Process]:
    table: dict[int, _Process] = {}

    def lookup(pid: int) -> _Process:
        if pid not in table:
            raise psutil.NoSuchProcess(pid)
        return table[pid]

    monkeypatch.setattr(processes.psutil, "Process", lookup)
    monkeypatch.setattr(processes, "CMDLINE_SETTLE_SECONDS", 0.2)
    return table


def test_a_scorer_read_while_its_exec_completes_is_still_found(pid_table: dict[int, _Process]) -> None:
    # Read in the instant after exec, /proc/<pid>/cmdline is empty: the process is read again, not disowned.
    pid_table[41] = _Process([[], [], SCORER])
    assert processes.find_ours(41, STARTED) is pid_table[41]
    assert pid_table[41].reads == 3


def test_a_pid_that_is_no_scorer_or_was_started_at_another_time_is_not_ours(
    pid_table: dict[int, _Process],
) -> None:
    pid_table[42] = _Process([[]])  # stays empty: a kernel thread
    pid_table[43] = _Process([["/usr/bin/python", "-m", "http.server"]])
    pid_table[44] = _Process([SCORER])
    pid_table[45] = _Process([SCORER], status=psutil.STATUS_ZOMBIE)
    assert processes.find_ours(42, STARTED) is None
    assert processes.find_ours(43, STARTED) is None
    assert pid_table[43].reads == 1  # a command line that is there is read once
    assert processes.find_ours(44, STARTED + 1) is None  # the pid was reused
    assert processes.find_ours(44, STARTED) is pid_table[44]
    assert processes.find_ours(45, STARTED) is None
    assert processes.find_ours(46, STARTED) is None  # gone
    assert processes.find_ours(0, STARTED) is None
