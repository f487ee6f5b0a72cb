"""The layers, checked from the code's own imports (parsed, never executed): docs/architecture.md's rules.

Every import counts, wherever it is written (module top, inside a function, under TYPE_CHECKING): a lazy or
type-only import is still a dependency of the design, only a cheaper one at run time.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500

# Production files allowed over MAX_LINES, with what keeps each one whole. Empty is the goal: an entry whose
# file has come back under the limit (or gone) fails the suite, so the dict only ever shrinks.
LONG_FILES: dict[str, str] = {}

# Top to bottom. A module imports its own layer or lower ones, never a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("function_app", "functions"),
    ("shared.tools",),
    ("shared.host",),
    ("shared.testing",),
    # the app's composition root, and the drift check's job program (it builds the blob adapter it reads with)
    ("shared.bootstrap", "shared.drift_job"),
    ("shared.adapters", "shared.handlers"),
    ("shared.deps",),
    ("shared.state",),
    ("shared.config",),  # parses settings into the domain's types (a declared schema)
    ("shared.domain", "shared.ports"),
    ("shared.telemetry",),  # spans and the ids logs carry: imported by every layer, imports none
)
# Packages of one layer that must not import each other: effects and flows meet only in the container.
SIBLINGS: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"shared.adapters", "shared.handlers"}),
        frozenset({"shared.domain", "shared.ports"}),
        frozenset({"shared.bootstrap", "shared.drift_job"}),
    }
)
# Package roots that hold layers but belong to none: they import nothing of the project.
PACKAGE_ROOTS = frozenset({"shared"})

BOOTSTRAP = "shared.bootstrap"
MAY_IMPORT_BOOTSTRAP = ("function_app", "functions", "shared.host", "shared.tools")
TESTING = "shared.testing"
MAY_IMPORT_TESTING = ("shared.host",)  # fault injection on the local host; otherwise tests and bench only
TRAINING = "shared.training"
# The job's own program: adapters launch it as `python -m shared.training` or copy its folder, they do not
# import it. Who may import it, and why:
TRAINING_IMPORTERS: dict[str, str] = {
    "shared.adapters.azure.registry": "a registered model's files are hashed as the job hashed the model it "
    "evaluated",
    "shared.adapters.azure.pipeline": "the team's step gets the settings and file names the local run gives it",
    "shared.adapters.local.registry": "a registered model's files are hashed as the job hashed the model it "
    "evaluated",
    "shared.handlers.training_code": "a run's key is the training code's content hash, computed as the job "
    "records it in the evaluation",
    "shared.drift_job.__main__": "the champion scores the reference sample loaded as the evaluation loads it",
    "shared.domain.decisions.gates": "a metric's direction comes from the table the job scores with",
    "shared.domain.quality": "the live metric and its interval are the job's own formulas, so live and holdout "
    "numbers mean the same",
}

# The one arrow up by design: the local host plays the Functions runtime, which loads the app it runs.
PLATFORM_ARROWS: dict[tuple[str, str], str] = {
    ("shared.host.services", "function_app"): "the local host indexes the real function app, as Azure does",
}

SKIP_DIRS = frozenset(
    {"tests", "bench", "examples", "node_modules", "build", "dist", "mlruns", "__pycache__"}
)


@dataclass(frozen=True)
class Import:
    importer: str
    target: str | None  # the project module it resolves to; None if it names no project module
    written: str  # as in the source, for messages
    where: str  # path:line

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} imports {self.target or self.written}"


@dataclass
class Project:
    root: Path
    files: dict[str, Path] = field(default_factory=dict)  # module name -> file
    imports: list[Import] = field(default_factory=list)

    def graph(self) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {name: set() for name in self.files}
        for imp in self.imports:
            if imp.target is not None and imp.target != imp.importer:
                edges[imp.importer].add(imp.target)
        return edges

    def resolved(self) -> Iterator[Import]:
        """Imports of other project modules; a module named twice in one statement counts once."""
        seen = set()
        for i in self.imports:
            if i.target is not None and i.target != i.importer and (i.where, i.target) not in seen:
                seen.add((i.where, i.target))
                yield i


def scan(root: Path) -> Project:
    """Every production module under root, and every import of a project module they write."""
    project = Project(root)
    for path in sorted(_python_files(root)):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        project.files[name.removesuffix(".__init__")] = path
    trees = {
        name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in project.files.items()
    }
    bound = {name: _bound_names(tree) for name, tree in trees.items()}
    roots = {name.partition(".")[0] for name in project.files}
    for name, tree in trees.items():
        path = project.files[name]
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        where = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            for written, target in _targets(node, package, project.files, bound, roots):
                project.imports.append(Import(name, target, written, f"{where}:{node.lineno}"))
    return project


def _python_files(root: Path) -> Iterator[Path]:
    """The .py files under root, never descending into skipped folders (a virtual environment holds tens of
    thousands of files: listing them first made the scan take half a minute)."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [
            d for d in subfolders if not (d in SKIP_DIRS or d.startswith(".") or d.endswith(".egg-info"))
        ]
        yield from (Path(folder) / f for f in files if f.endswith(".py"))


def _targets(
    node: ast.AST, package: str, modules: dict[str, Path], bound: dict[str, set[str] | None], roots: set[str]
) -> Iterator[tuple[str, str | None]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.partition(".")[0] in roots:
                yield alias.name, alias.name if alias.name in modules else None
        return
    if not isinstance(node, ast.ImportFrom):
        return
    if node.level:
        up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join([*up, node.module] if node.module else up)
    else:
        base = node.module or ""
    if base.partition(".")[0] not in roots:
        return
    for alias in node.names:
        written = f"{'.' * node.level}{node.module or ''} import {alias.name}"
        if f"{base}.{alias.name}" in modules:
            yield written, f"{base}.{alias.name}"  # a submodule
        elif base in modules and _binds(bound[base], alias.name):
            yield written, base  # a name the module defines
        else:
            yield written, None


def _binds(names: set[str] | None, name: str) -> bool:
    return names is None or name == "*" or name in names  # None: the module's names cannot be listed


def _bound_names(tree: ast.Module) -> set[str] | None:
    """Names a module binds at its top level (through if/try/with blocks); None if unknowable."""
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if node.name == "__getattr__":
                return None
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if any(a.name == "*" for a in node.names):
                return None
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With):
            pending.extend(node.body)
            pending.extend(getattr(node, "orelse", []))
            pending.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return names


# --- the rules ------------------------------------------------------------------------------------------------


def _within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _package_of(module: str) -> tuple[int, str] | None:
    for index, layer in enumerate(LAYERS):
        for package in layer:
            if _within(module, [package]):
                return index, package
    return None


def unresolved(project: Project) -> list[str]:
    return [
        f"{i.where}: {i.importer} imports {i.written}, which is no module or name"
        for i in project.imports
        if i.target is None
    ]


def unplaced(project: Project) -> list[str]:
    return sorted(
        f"{project.files[m].relative_to(project.root).as_posix()}: {m} belongs to no layer"
        for m in project.files
        if _package_of(m) is None and m not in PACKAGE_ROOTS and not _within(m, [TRAINING])
    )


def upward_arrows(project: Project) -> list[Import]:
    """Imports of a higher layer, of a sibling package, or of anything by a package root."""
    found = []
    for imp in project.resolved():
        assert imp.target is not None
        if imp.importer in PACKAGE_ROOTS:
            found.append(imp)
            continue
        importer, target = _package_of(imp.importer), _package_of(imp.target)
        if importer is None or target is None:
            continue  # training and unplaced modules have rules of their own
        if target[0] < importer[0] or frozenset({importer[1], target[1]}) in SIBLINGS:
            found.append(imp)
    return found


def bootstrap_importers(project: Project) -> list[Import]:
    return [
        i
        for i in project.resolved()
        if i.target == BOOTSTRAP and not _within(i.importer, MAY_IMPORT_BOOTSTRAP)
    ]


def importers_of_test_support(project: Project) -> list[Import]:
    return [
        i
        for i in project.resolved()
        if _within(i.target or "", [TESTING]) and not _within(i.importer, [TESTING, *MAY_IMPORT_TESTING])
    ]


def training_arrows(project: Project, allowed: Iterable[str]) -> list[Import]:
    """Imports out of the training job into the rest of the project, and into it by modules not allowed."""
    allowed = set(allowed)
    found = []
    for imp in project.resolved():
        inside, into = _within(imp.importer, [TRAINING]), _within(imp.target or "", [TRAINING])
        if (inside and not into) or (into and not inside and imp.importer not in allowed):
            found.append(imp)
    return found


def cycles(project: Project) -> list[list[str]]:
    """Each import cycle as the imports that close it, written out: `a imports b (where)`."""
    graph = project.graph()
    where: dict[tuple[str, str | None], str] = {}
    for imp in project.resolved():
        where.setdefault((imp.importer, imp.target), imp.where)
    found = []
    for component in _strongly_connected(graph):
        members = set(component)
        found.append(
            sorted(f"{a} imports {b} ({where[a, b]})" for a in component for b in graph[a] if b in members)
        )
    return sorted(found)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only components of more than one module (self-imports are not kept)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def line_counts(project: Project) -> dict[str, int]:
    return {
        path.relative_to(project.root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in project.files.values()
    }


def long_files(project: Project, allowed: Iterable[str]) -> list[str]:
    allowed = set(allowed)
    return sorted(
        f"{path}: {count} lines (over {MAX_LINES})"
        for path, count in line_counts(project).items()
        if count > MAX_LINES and path not in allowed
    )


def _lines(found: Iterable[object]) -> str:
    return "\n".join(str(f) for f in found)


# --- the project as it is -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Project:
    return scan(ROOT)


def test_the_scan_sees_the_project_and_nothing_else(project: Project) -> None:
    assert {"function_app", "functions.data", BOOTSTRAP, "shared.handlers.training", TRAINING} <= set(
        project.files
    )
    assert not any(_within(m, ["tests", "bench", "examples"]) for m in project.files)
    assert len(project.files) > 50 and len(list(project.resolved())) > 100


def test_every_project_import_names_a_module_or_a_name_in_one(project: Project) -> None:
    assert not unresolved(project), _lines(unresolved(project))


def test_every_module_has_a_layer(project: Project) -> None:
    assert not unplaced(project), _lines(unplaced(project))


def test_only_the_entry_points_and_the_local_host_import_the_composition_root(project: Project) -> None:
    found = bootstrap_importers(project)
    assert not found, _lines(found)


def test_arrows_point_down(project: Project) -> None:
    arrows = upward_arrows(project)
    found = [i for i in arrows if (i.importer, i.target) not in PLATFORM_ARROWS]
    assert not found, _lines(found)
    stale = PLATFORM_ARROWS.keys() - {(i.importer, i.target) for i in arrows}
    assert not stale, f"gone; remove them from PLATFORM_ARROWS: {sorted(stale)}"


def test_the_training_job_stands_alone(project: Project) -> None:
    found = training_arrows(project, TRAINING_IMPORTERS)
    assert not found, _lines(found)
    importers = {i.importer for i in project.resolved() if _within(i.target or "", [TRAINING])}
    stale = set(TRAINING_IMPORTERS) - importers
    assert not stale, f"no longer import {TRAINING}; remove them from TRAINING_IMPORTERS: {sorted(stale)}"


def test_only_the_local_host_imports_test_support(project: Project) -> None:
    found = importers_of_test_support(project)
    assert not found, _lines(found)


def test_no_import_cycles(project: Project) -> None:
    found = cycles(project)
    assert not found, "\n\n".join(_lines(c) for c in found)


def test_production_files_stay_under_the_line_limit(project: Project) -> None:
    found = long_files(project, LONG_FILES)
    assert not found, _lines(found)
    counts = line_counts(project)
    stale = sorted(path for path in LONG_FILES if counts.get(path, 0) <= MAX_LINES)
    assert not stale, f"within {MAX_LINES} lines now (or gone); remove them from LONG_FILES: {stale}"


# --- the checker catches what it is for -----------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture()
def bad(tmp_path: Path) -> Project:
    """A small project breaking each rule once, beside modules that keep to them."""
    packages = [
        "shared",
        "shared/domain",
        "shared/state",
        "shared/handlers",
        "shared/adapters",
        "shared/tools",
    ]
    packages += ["shared/testing", "shared/training", "shared/host", "functions"]
    _write(tmp_path, {f"{p}/__init__.py": "" for p in packages})
    _write(
        tmp_path,
        {
            "function_app.py": "from functions import data\n",
            "functions/data.py": "from shared.bootstrap import deps\nfrom shared.handlers import flow\n",
            "shared/bootstrap.py": "from shared.adapters import store\ndeps = None\n",
            "shared/config.py": "import os\n\nLIMIT = 1\n",
            "shared/ports.py": "\n" * (MAX_LINES + 1),
            "shared/domain/rules.py": "def decide():\n    from shared.handlers.flow import run\n",
            "shared/domain/names.py": "from shared.config import LIMIT, MISSING\n",
            "shared/state/a.py": "from shared.state import b\n",
            "shared/state/b.py": "from . import a\nfrom .. import ports\n",
            "shared/handlers/flow.py": "from shared import bootstrap\nfrom shared.adapters.store import X\n\n"
            "def run():\n    pass\n",
            "shared/adapters/store.py": "import shared.training.job\nX = 1\n",
            "shared/tools/cli.py": "from shared.testing.faults import crash\n",
            "shared/host/local.py": "from shared.testing import faults\nfrom shared.adapters.local import cron\n",
            "shared/testing/faults.py": "def crash():\n    pass\n",
            "shared/training/job.py": "from shared.config import LIMIT\nfrom shared.training import helpers\n",
            "shared/training/helpers.py": "",
            "shared/extra.py": "",
            "tests/test_x.py": "from shared.bootstrap import deps\n",
            "bench/b.py": "from shared.handlers.flow import run\n",
            ".venv/lib/m.py": "import shared.nothing\n",
        },
    )
    return scan(tmp_path)


def _pairs(found: Iterable[Import]) -> set[tuple[str, str | None]]:
    return {(i.importer, i.target) for i in found}


def test_the_scan_skips_tests_bench_and_hidden_folders(bad: Project) -> None:
    assert not any(m.startswith(("tests", "bench", ".venv")) for m in bad.files)
    assert {"shared", "shared.state.b", "function_app"} <= set(bad.files)


def test_relative_imports_and_imported_names_resolve(bad: Project) -> None:
    assert {("shared.state.b", "shared.state.a"), ("shared.state.b", "shared.ports")} <= _pairs(bad.imports)
    assert ("shared.handlers.flow", "shared.adapters.store") in _pairs(bad.imports)  # a name: its module


def test_imports_of_nothing_are_reported(bad: Project) -> None:
    found = unresolved(bad)
    assert [line.split(": ", 1)[1] for line in found] == [
        "shared.domain.names imports shared.config import MISSING, which is no module or name",
        "shared.host.local imports shared.adapters.local import cron, which is no module or name",
    ]


def test_a_module_outside_every_layer_is_reported(bad: Project) -> None:
    assert unplaced(bad) == ["shared/extra.py: shared.extra belongs to no layer"]


def test_upward_and_sideways_arrows_are_reported(bad: Project) -> None:
    assert _pairs(upward_arrows(bad)) == {
        ("shared.domain.rules", "shared.handlers.flow"),  # up, even from inside a function
        ("shared.handlers.flow", BOOTSTRAP),  # up
        ("shared.handlers.flow", "shared.adapters.store"),  # a sibling
        ("shared.domain.names", "shared.config"),  # the domain imports nothing above it
    }


def test_importing_the_composition_root_from_below_is_reported(bad: Project) -> None:
    assert _pairs(bootstrap_importers(bad)) == {("shared.handlers.flow", BOOTSTRAP)}


def test_test_support_outside_the_local_host_is_reported(bad: Project) -> None:
    assert _pairs(importers_of_test_support(bad)) == {("shared.tools.cli", "shared.testing.faults")}


def test_the_training_job_reaching_out_or_being_reached_is_reported(bad: Project) -> None:
    assert _pairs(training_arrows(bad, [])) == {
        ("shared.training.job", "shared.config"),
        ("shared.adapters.store", "shared.training.job"),
    }
    assert _pairs(training_arrows(bad, ["shared.adapters.store"])) == {
        ("shared.training.job", "shared.config")
    }


def test_a_cycle_is_reported_with_the_imports_that_close_it(bad: Project) -> None:
    assert cycles(bad) == [
        [
            "shared.state.a imports shared.state.b (shared/state/a.py:1)",
            "shared.state.b imports shared.state.a (shared/state/b.py:1)",
        ]
    ]


def test_a_long_file_is_reported_unless_allowed(bad: Project) -> None:
    assert long_files(bad, []) == [f"shared/ports.py: {MAX_LINES + 1} lines (over {MAX_LINES})"]
    assert long_files(bad, ["shared/ports.py"]) == []
