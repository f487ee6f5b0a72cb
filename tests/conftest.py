"""Shared fixtures: Azurite for integration tests, started once per test module on a free port, in memory.

Azurite is for tests marked `integration` only (every module under tests/integration and tests/e2e is), so
`pytest -m "not integration"` starts none: an unmarked test that asks for the fixture, or starts an Azurite
some other way, fails with the reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Property tests are the same examples on every run and machine: derandomized, no example database, and no
# deadline (a loaded CI machine is slow, not wrong). A test sets its own max_examples.
settings.register_profile(
    "repo",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repo"))

pytest_plugins = ["pytester"]  # tests/unit/test_test_markers.py runs pytest on pytest
MARKED_FOLDERS = {"integration": ("integration",), "e2e": ("integration", "e2e")}


# The slowest modules, run first: on several workers (`make test`), long tests last would leave one worker
# busy while the others are idle.
SLOWEST_FIRST = (
    "tests/e2e/test_demo.py",
    "tests/contract/",
    "tests/integration/test_chaos.py",
    "tests/integration/test_examples.py",
    "tests/integration/test_training_command.py",
    "tests/e2e/test_review_page.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, slow in enumerate(SLOWEST_FIRST) if path.startswith(slow)), len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: the order within each module stays


# Modules whose tests each set up what they need (a seed's own Azurite): handed out one test at a time.
SPREAD = ("tests/integration/test_chaos.py",)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--dist loadscope` (`make test`): a module is one unit of work, given to whichever worker is free,
    so its module-scoped fixtures (an Azurite, a trained example, the demo's story) are set up once; split
    across workers, each would set them up again. A module in SPREAD goes out test by test."""
    if config.getvalue("dist") != "loadscope":
        return None  # pytest-xdist's own scheduler for the mode asked for
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in SPREAD else module

    return ModuleScheduling(config, log)


def _is_integration(item: pytest.Item) -> bool:
    return item.get_closest_marker("integration") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of the test is set up: refuse what would start Azurite outside integration tests."""
    try:
        folder = item.path.relative_to(ROOT / "tests").parts[0]
    except ValueError:
        folder = ""
    missing = [m for m in MARKED_FOLDERS.get(folder, ()) if item.get_closest_marker(m) is None]
    if missing:
        marks = ", ".join(f"pytest.mark.{m}" for m in MARKED_FOLDERS[folder])
        pytest.fail(
            f"{item.nodeid} is under tests/{folder} but not marked {missing}: add pytestmark = [{marks}]"
        )
    if "azurite" in getattr(item, "fixturenames", ()) and not _is_integration(item):
        pytest.fail(
            f"{item.nodeid} uses the azurite fixture but is not marked integration: mark it or move it to "
            'tests/integration, so that `pytest -m "not integration"` starts no Azurite'
        )


@pytest.fixture(autouse=True)
def _no_azurite_outside_integration(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """However a test not marked integration tries to start an Azurite (LocalServices, by hand), it fails."""
    if _is_integration(request.node):
        return
    from shared.host.azurite import Azurite

    def refuse(self: Azurite, timeout: float = 30.0) -> Azurite:
        pytest.fail(f"{request.node.nodeid} starts Azurite but is not marked integration")

    monkeypatch.setattr(Azurite, "start", refuse)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Azurite for the integration tests of one module (see `tests.azurite.fresh_azurite`)."""
    from tests.azurite import fresh_azurite

    yield from fresh_azurite(tmp_path_factory.mktemp("azurite"))


def _uses_azurite(items: list[pytest.Item]) -> bool:
    """Whether an integration test among `items` asks for the shared Azurite (others are refused it)."""
    return any("azurite" in getattr(item, "fixturenames", ()) and _is_integration(item) for item in items)


def _left_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Delete the containers created while this scope ran: the shared Azurite holds only what the running test
    wrote, so no test pays for the ones before it (Azurite scans every blob of the account to list or sweep)."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(request.getfixturevalue("azurite"))
    before = {container.name for container in service.list_containers()}
    yield
    for container in service.list_containers():
        if container.name not in before:
            service.delete_container(container.name)


@pytest.fixture(autouse=True, scope="module")
def _azurite_clean_after_module(request: pytest.FixtureRequest) -> Iterator[None]:
    mine = [item for item in request.session.items if item.path == request.path]
    if _uses_azurite(mine):
        yield from _left_clean(request)
    else:
        yield


@pytest.fixture(autouse=True)
def _azurite_clean_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    if _uses_azurite([request.node]):
        yield from _left_clean(request)
    else:
        yield


@pytest.fixture()
def blob_store(azurite: str):
    from shared.adapters.azure.storage import AzureBlobStore

    return AzureBlobStore.from_connection_string(azurite)


@pytest.fixture()
def unique() -> str:
    """A name prefix unique to the test, so tests sharing one Azurite never see each other's blobs."""
    return f"t{os.urandom(4).hex()}"


_GROUP_SECONDS: dict[str, float] = {}


def _group(nodeid: str) -> str:
    """tests/unit/domain/test_drift.py::test_x -> unit/domain; tests/integration/test_chaos.py -> integration/
    test_chaos (integration modules are each a group: they own the time)."""
    path = nodeid.split("::", 1)[0].removeprefix("tests/")
    parts = path.removesuffix(".py").split("/")
    return "/".join(parts) if parts[0] in ("integration", "e2e") else "/".join(parts[:-1]) or parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _GROUP_SECONDS[_group(report.nodeid)] = _GROUP_SECONDS.get(_group(report.nodeid), 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Time per test group (setup, call and teardown summed), slowest first: where the suite's minutes go."""
    if not _GROUP_SECONDS:
        return
    terminalreporter.section("time per test group")
    total = sum(_GROUP_SECONDS.values())
    for group, seconds in sorted(_GROUP_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {seconds / total:4.0%}  {group}")
    terminalreporter.write_line(f"{total:8.1f} s        total")
