"""requirements.txt is what the Function App imports, no more and no less: Flex Consumption's remote build installs
it on every deploy. Local mode (requirements-local.txt) and development (requirements-dev.txt) add theirs on top."""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Code that runs only in local mode, in the training or drift check's job or in the tests, never in the Function
# App. The drift statistics run in the drift check's job (shared/drift_job), which the app launches, never imports.
NOT_IN_THE_APP = (
    "shared/training",
    "shared/drift_job",
    "shared/domain/drift",
    "shared/adapters/local",
    "shared/host",
    "shared/tools",
    "shared/testing",
)
JOB_ONLY = ("shared.drift_job", "shared.domain.drift")
# Imported (lazily) by modules the drift check's job reaches, in functions the job never calls.
NEVER_CALLED_IN_THE_JOB = {
    "fastparquet": "validation reads landed Parquet with it; the job reaches validation through the settings' "
    "data schema, and reads its own tables with pyarrow",
}
# Imported where installed, and done without where not: Evidently draws the full drift report in local mode.
OPTIONAL = {"evidently"}


def _app_files() -> list[Path]:
    files = [ROOT / "function_app.py", *ROOT.glob("functions/**/*.py"), *ROOT.glob("shared/**/*.py")]
    return [f for f in files if not f.relative_to(ROOT).as_posix().startswith(NOT_IN_THE_APP)]


def _imported_modules(files: list[Path] | None = None) -> set[str]:
    found = set()
    for path in _app_files() if files is None else files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from package import module` names the module: a namespace package has no file of its own
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    own = {"shared", "functions", "function_app", "__future__"}
    return {m for m in found if m.split(".")[0] not in sys.stdlib_module_names | own}


@functools.cache
def _modules() -> dict[str, str]:
    """Every installed module (from the distributions' file lists) -> its distribution's name."""
    found = {}
    for dist in metadata.distributions():
        name = _normal(dist.metadata["Name"])
        for file in map(str, dist.files or ()):
            if file.endswith(".py") and not file.startswith(".."):
                found[file[:-3].removesuffix("/__init__").replace("/", ".")] = name
    return found


def _distribution(module: str) -> str:
    """The installed distribution a module comes from (namespace packages such as `azure` by their parts)."""
    modules = _modules()
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        if (name := ".".join(parts[:depth])) in modules:
            return modules[name]
    raise AssertionError(f"no installed distribution provides {module}")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {
        _normal(re.split(r"[\[<>=!~; ]", line)[0]): line
        for line in lines
        if line and not line.startswith("-")
    }


def test_the_app_requirements_are_exactly_the_distributions_the_app_imports() -> None:
    imported = {
        _distribution(module) for module in _imported_modules() if module.split(".")[0] not in OPTIONAL
    }
    listed = set(_requirements(ROOT / "requirements.txt"))
    # azure-core comes with every Azure SDK the app lists; the app uses its exceptions and pipeline types
    assert imported - listed <= {"azure-core"}, (
        f"imported but not required: {sorted(imported - listed - {'azure-core'})}"
    )
    assert listed - imported == set(), f"required but never imported by the app: {sorted(listed - imported)}"


def test_local_mode_and_the_tests_are_not_deployed() -> None:
    app = set(_requirements(ROOT / "requirements.txt"))
    assert {"mlflow", "evidently", "psutil", "pytest", "hypothesis", "ruff"} & app == set()
    local = _requirements(ROOT / "requirements-local.txt")
    assert {"mlflow", "evidently", "psutil"} <= set(local)
    assert "-r requirements.txt" in (ROOT / "requirements-local.txt").read_text(encoding="utf-8")
    assert "-r requirements-local.txt" in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")


def test_pyproject_declares_what_the_requirement_files_do() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_normal(re.split(r"[\[<>=!~; ]", d)[0]): d for d in project["dependencies"]}
    required = _requirements(ROOT / "requirements.txt")
    assert declared == {name: line.replace(" ", "") for name, line in required.items()}
    local = {_normal(re.split(r"[\[<>=!~; ]", d)[0]) for d in project["optional-dependencies"]["local"]}
    assert local == set(_requirements(ROOT / "requirements-local.txt"))


def _project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {m for m in found if m.split(".")[0] == "shared"}


def test_the_app_never_imports_the_drift_checks_job_or_its_statistics() -> None:
    """They are left out of the app's closure above; this holds them out of its code too."""
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _app_files()
        for module in _project_imports(path)
        if module.startswith(JOB_ONLY)
    }
    assert offenders == set()


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_the_training_environment_has_what_the_drift_checks_job_imports() -> None:
    """The job runs in the training environment (shared/training/requirements.txt): everything reachable from
    its entry point must be installed there."""
    seen: set[Path] = set()
    todo = [ROOT / "shared/drift_job/__main__.py"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _project_imports(path):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # the module and the packages it is in
                if (found := _module_file(".".join(parts[:depth]))) is not None:
                    todo.append(found)
    needed = {
        _distribution(module)
        for module in _imported_modules(sorted(seen))
        if module.split(".")[0] not in OPTIONAL
    }
    listed = set(_requirements(ROOT / "shared/training/requirements.txt"))
    missing = needed - listed - {"azure-core"} - set(NEVER_CALLED_IN_THE_JOB)
    assert missing == set(), f"missing from the job's environment: {sorted(missing)}"
