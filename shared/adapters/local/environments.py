"""The user's training command, run locally in an environment built from their environment file.

The environment file (`MLOPS_TRAINING_ENVIRONMENT`, a path inside the training code's folder) is either a pip
requirements file or a conda YAML (`.yml`/`.yaml` with a `dependencies:` list). Its environment is built once
per content and reused: `environment_hash` is the sha256 of the file's bytes, and the environment lives in
`MLOPS_HOME/envs/<hash[:16]>/`, with the build's pip output in `envs/<hash[:16]>.log`. The hash covers the
file's bytes only: a requirements file it includes (`-r`, `-c`) or a local package it installs by path can
change without a rebuild; change the file itself (a version, a comment) to rebuild. Running the command in
the environment (`format_command`, `command_env`, `run_command`) lives in `commands`, re-exported here.

What an environment holds. It is a virtual environment of the project's own interpreter (`sys.executable`)
that sees the project's packages (mlflow, pandas, pyarrow, scikit-learn, ...) and installs over them only what
the file adds or pins differently: building it costs seconds and a few kilobytes instead of minutes and
hundreds of megabytes for a full copy of the ML stack, and the model the command saves loads in the
platform's evaluation with the same mlflow. `python -m venv --system-site-packages` alone does not give that
view when the project's interpreter is itself a virtual environment (the usual case: the flag exposes the
*base* interpreter's site-packages, not the project's, and mlflow would be missing). So the environment is
made with `python -m venv --without-pip` and one `.pth` file listing the directories the project
interpreter's `site` adds to its path (its site-packages and what their `.pth` files add), asked of a fresh
`python -I -S` process so nothing of the caller's `sys.path` leaks in. That is the project's view exactly,
whether it runs in a venv or not, and no pip copy (26 MB, 5 s) is made: the project's pip, seen through the
same path, installs into the environment. pip treats those packages as installed but outside the
environment: it never uninstalls them, and a different version the file pins goes into the environment,
whose own site-packages come first on the path.

A conda YAML is honoured as far as pip can: the `pip:` list of its dependencies is installed with pip, and
of its conda packages `python` is checked (its major.minor must be the running interpreter's, since the
environment runs on it; the patch level is not enforced), `pip` is skipped, and every other package is
installed with pip under the same name, its conda version translated (`=1.2` is `==1.2.*`, `==1.2.3` exact,
ranges as they are; channels and build strings are dropped). A conda-only package, or one whose pip name
differs (`pytorch` is `torch` on pip), fails the build with pip's message. Reading the YAML uses PyYAML and
the version check `packaging`, both already there as mlflow's dependencies.

Built once, safely: the marker `.ready` (the hash, the interpreter and pip's freeze output) is written last,
atomically, and alone decides "cached"; a folder without it (a crash mid-build) is removed and rebuilt. Builders
of the same hash take a lock file (`envs/<hash[:16]>.lock`, fcntl.flock) so two runs do not build twice: the
second waits, then finds the marker. The marker names the interpreter the environment extends: one built on
another interpreter is not a hit, and is rebuilt. A failing pip, or a build past its timeout, raises
EnvironmentBuildError with the reason and the last lines of the log, and leaves no environment behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.local.commands import (
    CommandResult,
    CommandTemplateError,
    command_env,
    format_command,
    log_tail,
    run_command,
    run_logged,
)

__all__ = [
    "CommandResult",
    "CommandTemplateError",
    "EnvironmentBuildError",
    "command_env",
    "ensure_environment",
    "environment_file",
    "environment_hash",
    "environment_spec",
    "format_command",
    "run_command",
]

_READY = ".ready"
_BRIDGE = "_mlops_project.pth"
# Ask a fresh interpreter, isolated from the caller's environment, what `site` adds to its path.
_VIEW = (
    "import json, sys; before = list(sys.path); import site; site.main(); "
    "print(json.dumps({'version': list(sys.version_info[:3]), 'paths': [p for p in sys.path if p not in before]}))"
)


class EnvironmentBuildError(Exception):
    """The environment cannot be used or built: why, and the tail of the build's log when there is one."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason, log_tail)
        self.reason = reason
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{self.reason}\n{self.log_tail}" if self.log_tail else self.reason


# -- the environment file -------------------------------------------------------------------------------------


def environment_file(code_dir: Path, environment: str | None) -> Path | None:
    """The environment file inside `code_dir`, or None when none is configured (None or blank)."""
    if environment is None or not environment.strip():
        return None
    relative = Path(environment.strip())
    if relative.is_absolute() or ".." in relative.parts:
        raise EnvironmentBuildError(
            f"the environment file {environment!r} must be a path inside the training code folder, "
            "relative and without '..'"
        )
    root = code_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise EnvironmentBuildError(
            f"the environment file {environment!r} leads outside the training code folder (a symlink)"
        )
    if not path.is_file():
        raise EnvironmentBuildError(f"the environment file {environment!r} is not a file in {code_dir}")
    return path


def environment_hash(code_dir: Path, environment: str | None) -> str | None:
    """The sha256 (hex) of the environment file's bytes; None when no file is configured."""
    path = environment_file(code_dir, environment)
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class EnvironmentSpec:
    """What to install: pip requirements (a file to pass to -r, or lines to write) and a python constraint."""

    file: Path
    requirements: tuple[str, ...] | None = None  # None: `file` is itself the requirements file
    python: str = ""  # a pip-style version constraint on python, "" for none


def environment_spec(path: Path, content: bytes | None = None) -> EnvironmentSpec:
    """What the environment file asks for (its `content`, read from `path` when not given); a conda file that
    cannot be read, or holds what pip cannot be given, fails here, before anything is built."""
    if path.suffix.lower() not in (".yml", ".yaml"):
        return EnvironmentSpec(path)
    import yaml

    try:
        document = yaml.safe_load(path.read_bytes() if content is None else content)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise EnvironmentBuildError(
            f"the conda environment file {path.name} is not valid YAML: {error}"
        ) from None
    dependencies = document.get("dependencies") if isinstance(document, dict) else None
    if not isinstance(dependencies, list):
        raise EnvironmentBuildError(
            f"the conda environment file {path.name} has no `dependencies:` list; a pip requirements file "
            "must not end in .yml or .yaml"
        )
    requirements: list[str] = []
    python = ""
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            requirements += _pip_entries(entry["pip"], path)
        elif isinstance(entry, str):
            name, constraint = conda_requirement(entry)
            if name.lower() == "python":
                python = constraint
            elif name.lower() != "pip":
                requirements.append(name + constraint)
        else:
            raise EnvironmentBuildError(
                f"the conda dependency {entry!r} in {path.name} is neither a package nor a `pip:` list"
            )
    return EnvironmentSpec(path, tuple(requirements), python)


def _pip_entries(entries: Any, path: Path) -> list[str]:
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise EnvironmentBuildError(f"the `pip:` dependencies in {path.name} must be a list of strings")
    lines = []
    for entry in entries:
        option, _, target = entry.strip().partition(" ")
        # requirements files are read relative to themselves: keep nested ones relative to the YAML
        if option in ("-r", "-c", "--requirement", "--constraint") and not Path(target.strip()).is_absolute():
            entry = f"{option} {path.parent / target.strip()}"
        lines.append(entry)
    return lines


_CONDA_SPEC = re.compile(r"(?:[^:\s]+::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*)\s*(?P<version>.*)")


def conda_requirement(spec: str) -> tuple[str, str]:
    """A conda match spec as a pip name and version constraint: ('numpy', '==1.26.*') for 'numpy=1.26'."""
    match = _CONDA_SPEC.fullmatch(spec.strip())
    if match is None:
        raise EnvironmentBuildError(f"the conda dependency {spec!r} is not a package specification")
    name, version = match["name"], match["version"].strip()
    if not version:
        return name, ""
    if "|" in version:
        raise EnvironmentBuildError(
            f"the conda dependency {spec!r}: alternatives ('|') cannot be given to pip"
        )
    if version.startswith("=="):
        constraint = "==" + version[2:].split("=")[0].strip()
    elif version[0] in "<>!~":
        constraint = version.replace(" ", "")
    else:  # '=1.2', '=1.2=build', '1.2 build': conda's fuzzy match, every 1.2.x
        words = version.removeprefix("=").split("=")[0].split()
        exact = words[0].removesuffix("*").removesuffix(".") if words else ""
        constraint = f"=={exact}.*"
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(constraint)
    except InvalidSpecifier:
        raise EnvironmentBuildError(
            f"the conda dependency {spec!r} has a version pip cannot read ({constraint})"
        ) from None
    return name, constraint


def check_python(spec: EnvironmentSpec, version: tuple[int, int, int]) -> None:
    """Fail unless the file's python pin admits the interpreter the environment runs on (major.minor)."""
    if not spec.python:
        return
    running = ".".join(map(str, version))
    if spec.python.startswith("=="):
        wanted = [part for part in spec.python[2:].removesuffix(".*").split(".")[:2] if part != "*"]
        matches = [str(v) for v in version[: len(wanted)]] == wanted
    else:
        from packaging.specifiers import SpecifierSet

        matches = SpecifierSet(spec.python).contains(running, prereleases=True)
    if not matches:
        raise EnvironmentBuildError(
            f"{spec.file.name} asks for python{spec.python} but the local environments run on the project's "
            f"python {running}: pin python={version[0]}.{version[1]} or remove the pin"
        )


# -- building and caching -------------------------------------------------------------------------------------


def ensure_environment(
    home: Path, code_dir: Path, environment: str | None, timeout: float, *, interpreter: Path | None = None
) -> Path:
    """The python to run the user's command with: the project's own when no environment file is configured,
    else the cached environment's, built first if need be (within `timeout` seconds, waiting included).

    `interpreter` is the project's interpreter the environment extends (default: `sys.executable`)."""
    base = Path(interpreter) if interpreter is not None else Path(sys.executable)
    path = environment_file(code_dir, environment)
    if path is None:
        return base
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    envs = home / "envs"
    folder = envs / digest[:16]
    python = folder / "bin" / "python"
    if _is_ready(folder, digest, base):
        return python
    spec = environment_spec(path, content)
    deadline = time.monotonic() + timeout
    envs.mkdir(parents=True, exist_ok=True)
    with _locked(envs / f"{digest[:16]}.lock", deadline, timeout):
        if not _is_ready(folder, digest, base):
            _build(folder, spec, base, digest, envs / f"{digest[:16]}.log", deadline, timeout)
    return python


def _is_ready(folder: Path, digest: str, base: Path) -> bool:
    try:
        marker = json.loads((folder / _READY).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("hash") == digest
        and marker.get("interpreter") == str(base)
        and (folder / "bin" / "python").exists()
    )


@contextlib.contextmanager
def _locked(path: Path, deadline: float, timeout: float) -> Iterator[None]:
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EnvironmentBuildError(
                        f"another build of this environment still held {path.name} after {timeout:g} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    folder: Path, spec: EnvironmentSpec, base: Path, digest: str, log: Path, deadline: float, timeout: float
) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # a half-built environment, or one of another interpreter
    log.write_text(f"building the environment of {spec.file.name} ({digest}) on {base}\n")
    try:
        version, paths = _interpreter_view(base, deadline)
        check_python(spec, version)
        _step("venv", [str(base), "-m", "venv", "--without-pip", str(folder)], spec, log, deadline, timeout)
        site_packages = folder / "lib" / f"python{version[0]}.{version[1]}" / "site-packages"
        site_packages.mkdir(parents=True, exist_ok=True)
        (site_packages / _BRIDGE).write_text("".join(f"{path}\n" for path in paths))
        python = folder / "bin" / "python"
        requirements: Path | None = spec.file
        if spec.requirements is not None:  # a conda file: what of it pip installs, if anything
            requirements = folder / "conda-requirements.txt" if spec.requirements else None
            if requirements is not None:
                requirements.write_text("".join(f"{line}\n" for line in spec.requirements))
        if requirements is not None:
            pip = [str(python), "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
            _step("pip install", [*pip, "-r", str(requirements)], spec, log, deadline, timeout)
        freeze = subprocess.run(
            [str(python), "-m", "pip", "freeze"],
            cwd=spec.file.parent,
            env=_pip_env(python),
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 1.0),
            check=True,
        )
        marker = {"hash": digest, "interpreter": str(base), "freeze": freeze.stdout.splitlines()}
        partial = folder / f"{_READY}.partial"
        partial.write_text(json.dumps(marker, indent=1))
        os.replace(partial, folder / _READY)  # last: only a complete environment is ever "cached"
    except BaseException as error:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, subprocess.SubprocessError | OSError):
            raise EnvironmentBuildError(
                f"building the environment of {spec.file.name} failed: {error}", log_tail(log)
            ) from None
        raise


def _interpreter_view(base: Path, deadline: float) -> tuple[tuple[int, int, int], list[str]]:
    """The interpreter's version, and the directories its `site` adds to its path."""
    try:
        done = subprocess.run(
            [str(base), "-I", "-S", "-c", _VIEW],
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 1.0),
            check=True,
        )
        view = json.loads(done.stdout)
        major, minor, micro = (int(part) for part in view["version"])
        return (major, minor, micro), [str(path) for path in view["paths"]]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as error:
        raise EnvironmentBuildError(f"cannot ask the interpreter {base} for its packages: {error}") from None


def _pip_env(python: Path) -> dict[str, str]:
    return command_env(os.environ, python, {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})


def _step(
    what: str, argv: list[str], spec: EnvironmentSpec, log: Path, deadline: float, timeout: float
) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
    result = run_logged(
        argv, spec.file.parent, _pip_env(Path(argv[0])), deadline - time.monotonic(), log, append=True
    )
    if result.timed_out:
        raise EnvironmentBuildError(
            f"building the environment of {spec.file.name} took longer than the {timeout:g} s allowed "
            f"(during {what})",
            result.stderr_tail,
        )
    if result.returncode != 0:
        raise EnvironmentBuildError(
            f"{what} failed (exit code {result.returncode}) building the environment of {spec.file.name}",
            result.stderr_tail,
        )
