"""Real environments: built with venv and pip from a training project's environment file, once per content.

Every package installed here is a tiny project written into tmp_path and installed by path, whose build needs
nothing from a package index, so these tests run offline; what else they install is satisfied by the project's
own packages, which the environments see.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from shared.adapters.local import environments
from shared.adapters.local.environments import (
    EnvironmentBuildError,
    command_env,
    ensure_environment,
    environment_hash,
    format_command,
    run_command,
)
from shared.testing.packages import local_package

pytestmark = pytest.mark.integration

PROBE = "mlops-probe"


def project(tmp_path: Path, files: dict[str, str], version: str = "1.0", build_seconds: float = 0.0) -> Path:
    code = tmp_path / "code"
    local_package(code / "probe", PROBE, version, build_seconds)
    for name, text in files.items():
        (code / name).write_text(text)
    return code


def folder_of(home: Path, code: Path, environment: str) -> Path:
    digest = environment_hash(code, environment)
    assert digest is not None
    return home / "envs" / digest[:16]


def imports(python: Path, code: str) -> str:
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def test_an_environment_is_built_once_and_then_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n"})

    python = ensure_environment(home, code, "requirements.txt", 300)

    folder = folder_of(home, code, "requirements.txt")
    assert python == folder / "bin" / "python"
    # the file's package, and the project's own: the model it saves loads with the platform's mlflow
    seen = imports(python, "import sys, mlops_probe, mlflow, sklearn; print(mlops_probe.VERSION, sys.prefix)")
    assert seen == f"1.0 {folder}"
    marker = folder / ".ready"
    written = json.loads(marker.read_text())
    assert written["hash"] == environment_hash(code, "requirements.txt")
    assert written["interpreter"] == sys.executable
    assert any(line.startswith(f"{PROBE} @ file://") for line in written["freeze"])
    assert "Successfully installed mlops-probe-1.0" in (home / "envs" / f"{folder.name}.log").read_text()
    before = (marker.read_bytes(), marker.stat().st_mtime_ns)

    started = time.monotonic()
    again = ensure_environment(home, code, "requirements.txt", 300)
    hit = time.monotonic() - started

    assert again == python
    assert hit < 0.5
    assert (marker.read_bytes(), marker.stat().st_mtime_ns) == before


def test_the_command_runs_with_the_environments_python_even_as_a_bare_python(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n"})
    python = ensure_environment(home, code, "requirements.txt", 300)
    script = "import sys, mlops_probe; open(sys.argv[2] + '/which', 'w').write(sys.executable)"
    (tmp_path / "model").mkdir()
    argv = format_command(
        f'python -c "{script}" {{train}} {{model}}', tmp_path / "t.parquet", tmp_path / "model", None, python
    )

    result = run_command(argv, code, command_env(os.environ, python, {}), 60, tmp_path / "train.log")

    assert (result.returncode, result.stderr_tail) == (0, "")
    assert (tmp_path / "model" / "which").read_text() == str(python)


def test_a_broken_requirements_file_fails_with_pips_message_and_leaves_nothing_cached(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n./no-such-project\n"})

    for _ in range(2):  # a failure is not remembered: the next run tries again
        with pytest.raises(EnvironmentBuildError) as raised:
            ensure_environment(home, code, "requirements.txt", 300)

        assert raised.value.reason.startswith("pip install failed (exit code 1)")
        assert "ERROR" in raised.value.log_tail
        assert "no-such-project" in raised.value.log_tail
        assert len(raised.value.log_tail.splitlines()) <= 40
        assert not folder_of(home, code, "requirements.txt").exists()


def test_a_build_past_its_timeout_is_stopped_with_its_pip_and_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n"}, build_seconds=60)
    started = time.monotonic()

    with pytest.raises(
        EnvironmentBuildError, match=r"took longer than the 6 s allowed \(during pip install\)"
    ):
        ensure_environment(home, code, "requirements.txt", 6)

    assert time.monotonic() - started < 20
    assert not folder_of(home, code, "requirements.txt").exists()
    builder = int((code / "probe" / "building.pid").read_text())  # pip's build of the package, still sleeping
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(builder).status() == psutil.STATUS_ZOMBIE


def test_a_half_built_environment_is_removed_and_rebuilt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n"})
    folder = folder_of(home, code, "requirements.txt")
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("left by a build that crashed")

    python = ensure_environment(home, code, "requirements.txt", 300)

    assert imports(python, "import mlops_probe; print(mlops_probe.VERSION)") == "1.0"
    assert (folder / ".ready").exists()


def test_concurrent_runs_of_the_same_file_build_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    code = project(tmp_path, {"requirements.txt": "./probe\n"})
    builds: list[float] = []
    build = environments._build

    def counted(*args: object, **kwargs: object) -> None:
        builds.append(time.monotonic())
        build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(environments, "_build", counted)
    results: list[Path | BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_environment(home, code, "requirements.txt", 300))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(builds) == 1
    assert results == [folder_of(home, code, "requirements.txt") / "bin" / "python"] * 3


def test_a_conda_file_installs_its_pip_list_and_its_conda_packages_with_pip(tmp_path: Path) -> None:
    import yaml  # the project has it (an mlflow dependency); a version pin conda-style, satisfied here

    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    pyyaml = ".".join(yaml.__version__.split(".")[:2])
    text = f"name: churn\ndependencies:\n  - python={here}\n  - pip\n  - pyyaml={pyyaml}\n  - pip:\n    - ./probe\n"
    home = tmp_path / "home"
    code = project(tmp_path, {"environment.yml": text})

    python = ensure_environment(home, code, "environment.yml", 300)

    assert imports(python, "import mlops_probe, yaml; print(mlops_probe.VERSION, yaml.__version__)") == (
        f"1.0 {yaml.__version__}"
    )
    folder = folder_of(home, code, "environment.yml")
    assert (folder / "conda-requirements.txt").read_text() == f"pyyaml=={pyyaml}.*\n./probe\n"


def test_a_conda_file_pinning_another_python_fails_clearly(tmp_path: Path) -> None:
    other = f"{sys.version_info.major}.{sys.version_info.minor - 1}"
    home = tmp_path / "home"
    code = project(
        tmp_path, {"environment.yml": f"dependencies:\n  - python={other}\n  - pip:\n    - ./probe\n"}
    )

    with pytest.raises(EnvironmentBuildError, match=rf"asks for python=={other}\.\* but .* pin python="):
        ensure_environment(home, code, "environment.yml", 300)

    assert not folder_of(home, code, "environment.yml").exists()


def test_a_version_the_file_pins_differently_shadows_the_projects_and_leaves_it_alone(tmp_path: Path) -> None:
    """The project here is itself an environment holding probe 1.0; the file pins 2.0 (the hash is the file's
    bytes, not the package's: the two files must differ to be two environments)."""
    home = tmp_path / "home"
    first = project(tmp_path / "first", {"requirements.txt": "./probe\n"}, version="1.0")
    base = ensure_environment(home, first, "requirements.txt", 300)
    second = project(tmp_path / "second", {"requirements.txt": "./probe  # 2.0\n"}, version="2.0")

    python = ensure_environment(home, second, "requirements.txt", 300, interpreter=base)

    assert imports(python, "import mlflow, mlops_probe; print(mlops_probe.VERSION)") == "2.0"
    assert imports(base, "import mlops_probe; print(mlops_probe.VERSION)") == "1.0"
    log = (home / "envs" / f"{python.parent.parent.name}.log").read_text()
    assert "Not uninstalling mlops-probe" in log
