"""The environment file: its hash, the paths it may take, what a conda file asks pip for, and the checks that
fail before anything is built. Building real environments is in tests/integration/test_environments.py."""

from __future__ import annotations

import fcntl
import hashlib
import re
import sys
from pathlib import Path

import pytest

from shared.adapters.local.environments import (
    EnvironmentBuildError,
    EnvironmentSpec,
    check_python,
    conda_requirement,
    ensure_environment,
    environment_hash,
    environment_spec,
)

RUNNING = (sys.version_info.major, sys.version_info.minor, sys.version_info.micro)


def code_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    code = tmp_path / "code"
    for name, text in files.items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text)
    return code


# -- the hash -------------------------------------------------------------------------------------------------


def test_the_hash_is_the_sha256_of_the_files_bytes_wherever_the_folder_is(tmp_path: Path) -> None:
    one = code_folder(tmp_path / "a", {"requirements.txt": "lightgbm==4.5.0\n"})
    two = code_folder(tmp_path / "b", {"env/requirements.txt": "lightgbm==4.5.0\n"})

    digest = environment_hash(one, "requirements.txt")

    assert digest == hashlib.sha256(b"lightgbm==4.5.0\n").hexdigest()
    assert environment_hash(two, "env/requirements.txt") == digest
    assert environment_hash(one, " requirements.txt ") == digest


def test_another_byte_is_another_hash(tmp_path: Path) -> None:
    code = code_folder(tmp_path, {"a.txt": "lightgbm==4.5.0\n", "b.txt": "lightgbm==4.5.0\n\n"})

    assert environment_hash(code, "a.txt") != environment_hash(code, "b.txt")


@pytest.mark.parametrize("environment", [None, "", "  "])
def test_no_environment_file_has_no_hash(tmp_path: Path, environment: str | None) -> None:
    assert environment_hash(tmp_path, environment) is None


@pytest.mark.parametrize("environment", ["../requirements.txt", "env/../../requirements.txt", "env/../r.txt"])
def test_a_path_with_dot_dot_is_rejected(tmp_path: Path, environment: str) -> None:
    code = code_folder(tmp_path, {"env/r.txt": "x\n"})
    (tmp_path / "requirements.txt").write_text("x\n")

    with pytest.raises(
        EnvironmentBuildError, match=re.escape("inside the training code folder, relative and without '..'")
    ):
        environment_hash(code, environment)


def test_an_absolute_path_is_rejected_even_inside_the_folder(tmp_path: Path) -> None:
    code = code_folder(tmp_path, {"requirements.txt": "x\n"})

    with pytest.raises(EnvironmentBuildError, match="relative"):
        environment_hash(code, str(code / "requirements.txt"))


def test_a_symlink_leading_out_of_the_folder_is_rejected(tmp_path: Path) -> None:
    code = code_folder(tmp_path, {"train.py": ""})
    (tmp_path / "outside.txt").write_text("x\n")
    (code / "requirements.txt").symlink_to(tmp_path / "outside.txt")

    with pytest.raises(EnvironmentBuildError, match="leads outside"):
        environment_hash(code, "requirements.txt")


@pytest.mark.parametrize("environment", ["missing.txt", "env"])
def test_a_missing_file_or_a_folder_is_rejected(tmp_path: Path, environment: str) -> None:
    code = code_folder(tmp_path, {"env/r.txt": "x\n"})

    with pytest.raises(EnvironmentBuildError, match=f"{environment!r} is not a file"):
        environment_hash(code, environment)


# -- what a conda file asks pip for ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lightgbm", ("lightgbm", "")),
        ("numpy=1.26", ("numpy", "==1.26.*")),
        ("numpy=1.26.*", ("numpy", "==1.26.*")),
        ("numpy=1.26*", ("numpy", "==1.26.*")),
        ("numpy=1.26.4=py311h64a7726_0", ("numpy", "==1.26.4.*")),
        ("numpy 1.26 py311_0", ("numpy", "==1.26.*")),
        ("numpy==1.26.4", ("numpy", "==1.26.4")),
        ("numpy>=1.24,<2", ("numpy", ">=1.24,<2")),
        ("numpy >=1.24", ("numpy", ">=1.24")),
        ("conda-forge::scikit-learn=1.5", ("scikit-learn", "==1.5.*")),
        ("python=3.11", ("python", "==3.11.*")),
    ],
)
def test_a_conda_spec_becomes_a_pip_requirement(spec: str, expected: tuple[str, str]) -> None:
    assert conda_requirement(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "not a package specification"),
        ("=1.2", "not a package specification"),
        ("numpy 1.2|1.3", "alternatives"),
        ("numpy[version='>=1.2']", "pip cannot read"),
        ("numpy=", "pip cannot read"),
    ],
)
def test_a_conda_spec_pip_cannot_take_is_a_clear_error(spec: str, match: str) -> None:
    with pytest.raises(EnvironmentBuildError, match=match):
        conda_requirement(spec)


def test_a_conda_file_installs_its_pip_list_and_its_packages_by_name(tmp_path: Path) -> None:
    code = code_folder(
        tmp_path,
        {
            "env/conda.yaml": (
                "name: churn\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
                "  - conda-forge::lightgbm=4.5\n  - pip:\n    - ./features\n    - -r extra.txt\n"
                "    - --index-url https://example.invalid/simple\n"
            )
        },
    )

    spec = environment_spec(code / "env" / "conda.yaml")

    assert spec.python == "==3.11.*"
    assert spec.requirements == (
        "lightgbm==4.5.*",
        "./features",
        f"-r {code / 'env' / 'extra.txt'}",  # nested files are read relative to the YAML, as conda does
        "--index-url https://example.invalid/simple",
    )


def test_a_requirements_file_is_given_to_pip_as_it_is(tmp_path: Path) -> None:
    code = code_folder(tmp_path, {"requirements.txt": "anything pip reads\n", "environment.yml.txt": "x"})

    assert environment_spec(code / "requirements.txt") == EnvironmentSpec(code / "requirements.txt")
    assert environment_spec(code / "environment.yml.txt").requirements is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dependencies: [python=3.11\n", "not valid YAML"),
        ("name: churn\n", "no `dependencies:` list"),
        ("- numpy\n", "no `dependencies:` list"),
        ("dependencies: numpy\n", "no `dependencies:` list"),
        ("dependencies:\n  - 3.11\n", "neither a package nor a `pip:` list"),
        ("dependencies:\n  - {conda: [numpy]}\n", "neither a package nor a `pip:` list"),
        ("dependencies:\n  - pip:\n", "must be a list of strings"),
        ("dependencies:\n  - pip: [1, 2]\n", "must be a list of strings"),
        ("dependencies:\n  - numpy 1|2\n", "alternatives"),
    ],
)
def test_a_conda_file_that_cannot_be_read_fails_before_any_build(
    tmp_path: Path, text: str, match: str
) -> None:
    code = code_folder(tmp_path, {"environment.yml": text})

    with pytest.raises(EnvironmentBuildError, match=match):
        environment_spec(code / "environment.yml")
    with pytest.raises(EnvironmentBuildError, match=match):
        ensure_environment(tmp_path / "home", code, "environment.yml", 30)
    assert not (tmp_path / "home" / "envs").exists()


@pytest.mark.parametrize(
    ("pin", "ok"),
    [
        ("", True),
        ("==3.11.*", True),
        ("==3.11.2", True),  # the patch level is the interpreter's
        ("==3.*", True),
        ("==3.10.*", False),
        ("==3.1.*", False),
        ("==2.7.*", False),
        (">=3.9", True),
        (">=3.9,<3.11", False),
        ("<3.12", True),
    ],
)
def test_the_python_pin_must_admit_the_interpreter(pin: str, ok: bool) -> None:
    spec = EnvironmentSpec(Path("conda.yaml"), (), pin)
    if ok:
        check_python(spec, (3, 11, 7))
    else:
        with pytest.raises(EnvironmentBuildError, match=rf"asks for python{pin} .* python 3\.11\.7"):
            check_python(spec, (3, 11, 7))


def test_a_conda_file_pinning_another_python_fails_clearly_and_builds_nothing(tmp_path: Path) -> None:
    other = f"{RUNNING[0]}.{RUNNING[1] + 1}"
    code = code_folder(
        tmp_path, {"conda.yaml": f"dependencies:\n  - python={other}\n  - pip:\n    - ./pkg\n"}
    )

    with pytest.raises(EnvironmentBuildError) as raised:
        ensure_environment(tmp_path / "home", code, "conda.yaml", 60)

    assert raised.value.reason == (
        f"conda.yaml asks for python=={other}.* but the local environments run on the project's python "
        f"{'.'.join(map(str, RUNNING))}: pin python={RUNNING[0]}.{RUNNING[1]} or remove the pin"
    )
    envs = tmp_path / "home" / "envs"
    assert sorted(p.suffix for p in envs.iterdir()) == [".lock", ".log"]  # no environment folder


# -- ensure_environment without building ----------------------------------------------------------------------


def test_no_environment_file_runs_on_the_projects_interpreter(tmp_path: Path) -> None:
    assert ensure_environment(tmp_path / "home", tmp_path, None, 1) == Path(sys.executable)
    assert ensure_environment(tmp_path / "home", tmp_path, "", 1, interpreter=Path("/opt/py")) == Path(
        "/opt/py"
    )
    assert not (tmp_path / "home").exists()


def test_a_build_of_the_same_file_in_progress_elsewhere_is_waited_for_up_to_the_timeout(
    tmp_path: Path,
) -> None:
    code = code_folder(tmp_path, {"requirements.txt": "./pkg\n"})
    digest = environment_hash(code, "requirements.txt")
    assert digest is not None
    envs = tmp_path / "home" / "envs"
    envs.mkdir(parents=True)
    with open(envs / f"{digest[:16]}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process's build

        with pytest.raises(
            EnvironmentBuildError, match=r"another build of this environment still held .* 0.3 s"
        ):
            ensure_environment(tmp_path / "home", code, "requirements.txt", 0.3)

    assert not (envs / digest[:16]).exists()
