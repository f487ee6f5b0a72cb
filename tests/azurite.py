"""Azurite for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def fresh_azurite(folder: Path) -> Iterator[str]:
    """A connection string to a new in-memory Azurite, stopped afterwards.

    Why new ones and not one for the session: every 10 minutes Azurite sweeps the extents no blob refers to any
    more (each overwrite leaves one), deleting them one by one with a scan of all extents each: quadratic, so
    after a few thousand overwrites it holds the event loop for minutes and requests time out. An Azurite that
    lives for one module (about 1 s to start) never gets there."""
    from shared.host.azurite import Azurite, free_port

    server = Azurite(folder, free_port(), in_memory=True).start()
    try:
        yield server.connection_string
    finally:
        server.stop()
