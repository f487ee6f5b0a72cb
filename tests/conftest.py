"""Shared fixtures: Azurite for integration tests, started once per session on a free port, in memory.

Azurite is for tests marked `integration` only (every module under tests/integration and tests/e2e is), so
`pytest -m "not integration"` starts none: an unmarked test that asks for the fixture, or starts an Azurite
some other way, fails with the reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["pytester"]  # tests/unit/test_test_markers.py runs pytest on pytest
MARKED_FOLDERS = {"integration": ("integration",), "e2e": ("integration", "e2e")}


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


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh in-memory Azurite, for integration tests; stopped at the session's end."""
    from shared.host.azurite import Azurite, free_port

    server = Azurite(tmp_path_factory.mktemp("azurite"), free_port(), in_memory=True).start()
    try:
        yield server.connection_string
    finally:
        server.stop()


@pytest.fixture()
def blob_store(azurite: str):
    from shared.adapters.azure.storage import AzureBlobStore

    return AzureBlobStore.from_connection_string(azurite)


@pytest.fixture()
def unique() -> str:
    """A name prefix unique to the test, so tests sharing one Azurite never see each other's blobs."""
    return f"t{os.urandom(4).hex()}"
