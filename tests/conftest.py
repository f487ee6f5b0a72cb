"""Shared fixtures: Azurite for integration tests, started once per session on a free port, in memory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh in-memory Azurite; stopped at the end of the session."""
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
