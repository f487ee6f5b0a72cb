"""The user's training command: its placeholders, its environment variables, and running it with a time limit
so that neither it nor anything it started survives a timeout."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.adapters.local import commands
from shared.adapters.local.commands import CommandTemplateError, command_env, format_command, run_command

TRAIN = Path("/data/in put/train.parquet")
MODEL = Path("/data/out/model")
PARAMS = Path("/data/params.json")
PYTHON = Path("/envs/abc/bin/python")


def fmt(command: str, params: Path | None = PARAMS) -> list[str]:
    return format_command(command, TRAIN, MODEL, params, PYTHON)


# -- placeholders ---------------------------------------------------------------------------------------------


def test_every_placeholder_is_replaced_and_a_path_with_spaces_stays_one_argument() -> None:
    argv = fmt("{python} train.py --train {train} --model {model} --params {params}")

    assert argv == [
        "/envs/abc/bin/python",
        "train.py",
        "--train",
        "/data/in put/train.parquet",
        "--model",
        "/data/out/model",
        "--params",
        "/data/params.json",
    ]


def test_a_placeholder_inside_a_quoted_argument_is_replaced() -> None:
    argv = fmt("""python fit.py "--data={train}" '--out={model}/m' --tag 'two words'""")

    assert argv == [
        "python",
        "fit.py",
        "--data=/data/in put/train.parquet",
        "--out=/data/out/model/m",
        "--tag",
        "two words",
    ]


def test_relative_paths_become_absolute_since_the_command_runs_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = format_command("run {train} {model}", Path("in/t.parquet"), Path("out"), None, PYTHON)

    assert argv == ["run", str(tmp_path / "in" / "t.parquet"), str(tmp_path / "out")]


def test_doubled_braces_are_literal_braces() -> None:
    argv = fmt("""python fit.py {train} {model} --opts '{{"depth": 3}}'""")

    assert argv[-1] == '{"depth": 3}'


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("python fit.py {model}", "{train}"),
        ("python fit.py {train}", "{model}"),
        ("python fit.py", "{train}, {model}"),
    ],
)
def test_a_missing_required_placeholder_is_named(command: str, missing: str) -> None:
    with pytest.raises(CommandTemplateError, match=f"must use {missing}:"):
        fmt(command)


@pytest.mark.parametrize(
    ("placeholder", "shown"),
    [
        ("{data}", "{data}"),
        ("{Train}", "{Train}"),
        ("{}", "{}"),
        ("{0}", "{0}"),
        ("{train!r}", "{train!r}"),
        ("{model:>9}", "{model:>9}"),
        ("{train.name}", "{train.name}"),
    ],
)
def test_an_unknown_placeholder_is_an_error_naming_it(placeholder: str, shown: str) -> None:
    with pytest.raises(CommandTemplateError, match="unknown placeholder") as raised:
        fmt(f"python fit.py {{train}} {{model}} --x={placeholder}")

    assert shown in str(raised.value)
    assert "{train}, {model}, {params}, {python}" in str(raised.value)


def test_params_in_the_command_without_a_params_file_is_an_error() -> None:
    with pytest.raises(CommandTemplateError, match=r"uses \{params\} but no params file"):
        fmt("python fit.py {train} {model} {params}", params=None)
    assert fmt("python fit.py {train} {model}", params=None)[-1] == "/data/out/model"


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("python fit.py '{train} {model}", "cannot be split"),
        ("python fit.py {train {model}", "unbalanced braces"),
        ("python fit.py {train} {model} }", "unbalanced braces"),
    ],
)
def test_a_malformed_command_line_is_a_clear_error(command: str, match: str) -> None:
    with pytest.raises(CommandTemplateError, match=match):
        fmt(command)


# -- its environment variables --------------------------------------------------------------------------------


def test_the_environments_bin_folder_comes_first_so_a_bare_python_is_the_environments(tmp_path: Path) -> None:
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    base = {"PATH": os.environ["PATH"], "PYTHONHOME": "/elsewhere", "KEEP": "1"}

    env = command_env(base, python, {"MLOPS_TARGET_COLUMN": "churn"})

    assert env["PATH"].split(os.pathsep)[0] == str(venv / "bin")
    assert shutil.which("python", path=env["PATH"]) == str(python)
    assert env["VIRTUAL_ENV"] == str(venv)
    assert "PYTHONHOME" not in env
    assert (env["KEEP"], env["MLOPS_TARGET_COLUMN"]) == ("1", "churn")
    assert base["PATH"] == os.environ["PATH"]  # the caller's mapping is left alone


def test_the_projects_own_interpreter_outside_a_venv_names_no_virtual_env(tmp_path: Path) -> None:
    env = command_env({"VIRTUAL_ENV": "/some/venv"}, tmp_path / "bin" / "python", {})

    assert env["PATH"] == str(tmp_path / "bin")
    assert "VIRTUAL_ENV" not in env


# -- running it -----------------------------------------------------------------------------------------------


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_command_that_succeeds_has_its_output_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "train.log"
    result = run_command(
        py("import os; print('fitted in', os.getcwd())"), tmp_path, dict(os.environ), 30, log
    )

    assert (result.returncode, result.timed_out) == (0, False)
    assert result.stderr_tail == f"fitted in {tmp_path}"
    assert log.read_text() == f"fitted in {tmp_path}\n"
    assert 0 < result.seconds < 30


def test_a_failing_command_reports_its_code_and_the_last_lines_it_printed(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(100): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    result = run_command(py(code), tmp_path, dict(os.environ), 30, tmp_path / "train.log")

    assert (result.returncode, result.timed_out) == (3, False)
    assert result.stderr_tail.splitlines() == [f"line {i}" for i in range(60, 100)]


def test_the_tail_is_capped_in_characters_and_survives_undecodable_bytes(tmp_path: Path) -> None:
    code = "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe' + b'x' * 9000 + b'\\nTraceback: boom\\n')"
    result = run_command(py(code), tmp_path, dict(os.environ), 30, tmp_path / "train.log")

    assert len(result.stderr_tail) == commands.TAIL_CHARS
    assert result.stderr_tail.endswith("x\nTraceback: boom")


def test_a_command_that_cannot_start_is_a_failed_result_with_the_reason(tmp_path: Path) -> None:
    result = run_command(
        ["no-such-trainer", "{train}"], tmp_path, dict(os.environ), 30, tmp_path / "train.log"
    )

    assert (result.returncode, result.timed_out) == (127, False)
    assert "cannot start no-such-trainer" in result.stderr_tail


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(group: int) -> list[int]:
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return members


def test_a_timeout_ends_the_command_and_every_process_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = ["sh", "-c", f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; sleep 30"]
    started = time.monotonic()

    result = run_command(command, tmp_path, dict(os.environ), 1.0, tmp_path / "train.log")

    group, grandchild = (int(line) for line in pids.read_text().split())
    assert result.timed_out
    assert result.returncode < 0  # ended by a signal
    assert 1.0 <= result.seconds < 10 and time.monotonic() - started < 10
    assert "still running after 1 s" in result.stderr_tail
    assert not alive(grandchild)
    assert group_members(group) == []


def test_processes_left_behind_by_a_command_that_exits_are_ended_too(tmp_path: Path) -> None:
    pid = tmp_path / "pid"
    result = run_command(
        ["sh", "-c", f"sleep 30 & echo $! > {pid}"], tmp_path, dict(os.environ), 30, tmp_path / "log"
    )

    assert (result.returncode, result.timed_out) == (0, False)
    assert not alive(int(pid.read_text()))
    assert result.seconds < 10


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "KILL_GRACE_SECONDS", 0.5)
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(30)"

    result = run_command(py(code), tmp_path, dict(os.environ), 2.0, tmp_path / "train.log")

    assert result.timed_out
    assert result.returncode == -9
    assert result.stderr_tail.startswith("ready")
    assert result.seconds < 10
