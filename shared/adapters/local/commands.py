"""The user's training command: its placeholders filled, run in its own process group with a time limit.

`format_command` turns the configured command line into arguments, `command_env` gives it the environment's
interpreter as `python`, and `run_command` runs it with its output in a log, so that on failure or timeout the
caller can record the tail of what it printed. Nothing the command starts outlives it: at its end, or past its
time, its whole process group is terminated, then killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import string
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TAIL_LINES = 40
TAIL_CHARS = 4000
KILL_GRACE_SECONDS = 5.0
PLACEHOLDERS = ("train", "model", "params", "python")
REQUIRED_PLACEHOLDERS = ("train", "model")


class CommandTemplateError(ValueError):
    """The training command line is malformed, lacks a required placeholder or names an unknown one."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    seconds: float
    timed_out: bool
    stderr_tail: str


# -- running it ---------------------------------------------------------------------------------------------


def command_env(base: Mapping[str, str], python: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment variables for the command: `base` and `extra`, the python's bin folder first on PATH
    (a bare `python` is the environment's), VIRTUAL_ENV naming the environment when it is one."""
    env = {**base, **extra}
    env.pop("PYTHONHOME", None)
    bin_dir = str(Path(os.path.abspath(python)).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}" if env.get("PATH") else bin_dir
    venv = Path(bin_dir).parent
    if (venv / "pyvenv.cfg").is_file():
        env["VIRTUAL_ENV"] = str(venv)
    else:
        env.pop("VIRTUAL_ENV", None)
    return env


def run_command(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path) -> CommandResult:
    """Run `argv` in its own process group, stdout and stderr into `log`; past `timeout` seconds the whole
    group gets SIGTERM, then SIGKILL after a grace period. Processes it leaves behind are ended the same way
    when it exits, so nothing it started outlives it."""
    return run_logged(argv, cwd, env, timeout, log, append=False)


def run_logged(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path, *, append: bool
) -> CommandResult:
    if not argv:
        raise ValueError("no command to run")
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "ab" if append else "wb") as out:
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            return _not_started(argv, error, out, log, started)
        timed_out = False
        try:
            process.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
            out.write(f"\n[killed: still running after {timeout:g} s]\n".encode())
            out.flush()
        _end_group(process, KILL_GRACE_SECONDS)
    return CommandResult(
        returncode=process.returncode,
        seconds=time.monotonic() - started,
        timed_out=timed_out,
        stderr_tail=log_tail(log),
    )


def _not_started(argv: list[str], error: OSError, out: IO[bytes], log: Path, started: float) -> CommandResult:
    out.write(f"cannot start {argv[0] if argv else '(empty command)'}: {error}\n".encode())
    out.flush()
    code = 127 if isinstance(error, FileNotFoundError) else 126
    return CommandResult(code, time.monotonic() - started, False, log_tail(log))


def _end_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to every process of the group still alive, SIGKILL to those alive after `grace` seconds."""
    group = process.pid  # start_new_session: the leader's pid is the group's id
    if not _signal_group(group, signal.SIGTERM) and process.poll() is not None:
        return
    ends = time.monotonic() + grace
    while time.monotonic() < ends:
        process.poll()  # reap the leader as soon as it ends
        if process.returncode is not None and not _group_alive(group):
            return
        time.sleep(0.05)
    _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, signum: int) -> bool:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def _group_alive(group: int) -> bool:
    """Whether a process of the group still runs (a zombie, dead but not yet reaped by its parent, does not)."""
    import psutil

    if not _signal_group(group, 0):
        return False
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def log_tail(log: Path, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` lines of the log, at most `chars` characters of them."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 16 * chars, 0))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])[-chars:]


# -- its arguments --------------------------------------------------------------------------------------------


def format_command(command: str, train: Path, model: Path, params: Path | None, python: Path) -> list[str]:
    """The command's arguments (split as a POSIX shell would, without running one), each placeholder
    `{train}`, `{model}`, `{params}`, `{python}` replaced by its absolute path; `{{` and `}}` are literal
    braces. Splitting comes first, so a path with spaces stays one argument, and a placeholder inside a
    quoted argument (`"--out={model}/m"`) is replaced too."""
    values = {"train": train, "model": model, "params": params, "python": python}
    try:
        words = shlex.split(command, posix=True)
    except ValueError as error:
        raise CommandTemplateError(f"the training command cannot be split into arguments: {error}") from None
    if not words:
        raise CommandTemplateError("the training command is empty")
    used: set[str] = set()
    argv = [_substitute(word, values, used) for word in words]
    missing = [name for name in REQUIRED_PLACEHOLDERS if name not in used]
    if missing:
        names = ", ".join(f"{{{name}}}" for name in missing)
        raise CommandTemplateError(
            f"the training command must use {names}: where the training rows are and where to save the model"
        )
    return argv


def _substitute(word: str, values: dict[str, Path | None], used: set[str]) -> str:
    try:
        parts = list(string.Formatter().parse(word))
    except ValueError as error:
        raise CommandTemplateError(
            f"the training command's argument {word!r} has unbalanced braces ({error}); write {{{{ and }}}} "
            "for literal braces"
        ) from None
    out = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        if field not in values or spec or conversion:
            known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            shown = (
                "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            raise CommandTemplateError(
                f"the training command uses the unknown placeholder {shown}; the known ones are {known} "
                "(write {{ and }} for literal braces)"
            )
        value = values[field]
        if value is None:
            raise CommandTemplateError(f"the training command uses {{{field}}} but no {field} file is given")
        used.add(field)
        out.append(os.path.abspath(value))
    return "".join(out)
