"""The router's scoring processes: start one, tell whether a pid is still one of ours, stop a process tree.

psutil, not /proc and signals: the same calls work on Linux, macOS and Windows, a pid is matched with its
creation time (so a reused pid is never taken for ours, nor killed), and a process tree is stopped by walking
its children rather than by signalling a process group only POSIX has.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SCORING_MODULE = "shared.host.endpoint.scoring"
TERMINATE_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 20
CMDLINE_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class ScoringProcess:
    """A scoring process this router started; its exit is reaped here, so it never lingers as a zombie."""

    popen: psutil.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    @property
    def create_time(self) -> float:
        """When the OS started it: with the pid, what identifies it after the router restarts."""
        with contextlib.suppress(psutil.Error):
            return float(self.popen.create_time())
        return 0.0

    def running(self) -> bool:
        return self.popen.poll() is None

    def exit_code(self) -> int | None:
        """Its exit code once it has exited (negative: killed by that signal), else None."""
        return self.popen.poll()


def spawn(model_dir: Path, port: int, log_path: Path, home: Path | None = None) -> ScoringProcess:
    """Start `python -m shared.host.endpoint.scoring` for the model on the port, its output to `log_path`;
    with `home`, a model needing packages the project lacks is served from its own environment there."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", SCORING_MODULE, "--model", str(model_dir), "--port", str(port)]
    if home is not None:
        command += ["--home", str(home)]
    with open(log_path, "wb") as log:
        popen = psutil.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: the host's Ctrl-C does not reach it; the router stops it, children included.
            start_new_session=True,
        )
    return ScoringProcess(popen, log_path)


def free_port(taken: set[int]) -> int:
    """A loopback port free now and not in `taken` (ports given to scoring processes still loading)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise RuntimeError("no free loopback port")


def find_ours(pid: int, create_time: float) -> psutil.Process | None:
    """The scoring process `pid` if it is still the one started at `create_time` (a router that died without
    stopping left it running), else None: exited, a zombie, or a reused pid now running something else."""
    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        # Creation times are floats from the OS clock; what was stored is the same reading, rounded by JSON.
        if abs(process.create_time() - create_time) > 0.01:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if not any(SCORING_MODULE in part for part in _command_line(process)):
            return None
    except psutil.Error:  # gone, or not ours to inspect
        return None
    return process


def _command_line(process: psutil.Process) -> list[str]:
    """Its command line; one read in the instant its exec completes comes back empty, so an empty one is read
    again for a moment (an empty one that stays is a process that is no scorer: a kernel thread, say)."""
    deadline = time.monotonic() + CMDLINE_SETTLE_SECONDS
    while not (command := process.cmdline()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return command


def terminate(processes: Iterable[psutil.Process], grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """Stop each process and everything it started: terminate, then kill what still runs after `grace`.

    All are asked first and awaited together, so stopping n deployments takes one grace period, not n.
    """
    tree: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                tree.extend([process, *process.children(recursive=True)])
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for process in alive:
        logger.warning("scoring process ignored the request to stop; killing it", extra={"pid": process.pid})
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    _, alive = psutil.wait_procs(alive, timeout=grace)
    if alive:
        logger.error("scoring processes survived being killed", extra={"pids": [p.pid for p in alive]})


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines of a scoring process's log ("" when it wrote none)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
