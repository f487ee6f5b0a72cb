"""Azurite for the integration tests."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.ports import Blob, BlobInfo, BlobStream


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


class StampedBySimulatedClock:
    """A blob store whose Last-Modified is the simulated clock's time of the write, as a storage service on the
    workers' clock would stamp it.

    Azurite stamps the wall clock, while a test moves its workers' clock on by hand (a lease expires by advancing
    it). A sweep that looks only at blobs changed since its last pass compares the two, and against a clock in
    the past every blob looks new: the sweep is never tested as it runs, and does a tick's worth of needless
    checks. A blob first seen here without a write through here (a server-side copy) is stamped when first seen:
    later than it was written, so a sweep looks at it rather than missing it."""

    def __init__(self, inner: Any, clock: Callable[[], datetime]) -> None:
        self._inner, self._clock = inner, clock
        self._stamps: dict[tuple[str, str, str], datetime] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _stamped(self, info: BlobInfo) -> BlobInfo:
        with self._lock:
            at = self._stamps.setdefault((info.container, info.name, info.etag), self._clock())
        return dataclasses.replace(info, last_modified=at)

    def write(self, container: str, name: str, data: bytes, **options: Any) -> str:
        at = self._clock()
        etag = self._inner.write(container, name, data, **options)
        with self._lock:
            self._stamps[(container, name, etag)] = at
        return str(etag)

    def read(self, container: str, name: str) -> Blob | None:
        blob = self._inner.read(container, name)
        return None if blob is None else dataclasses.replace(blob, info=self._stamped(blob.info))

    def info(self, container: str, name: str) -> BlobInfo | None:
        info = self._inner.info(container, name)
        return None if info is None else self._stamped(info)

    def open(self, container: str, name: str) -> BlobStream | None:
        stream = self._inner.open(container, name)
        return None if stream is None else dataclasses.replace(stream, info=self._stamped(stream.info))

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        return (self._stamped(info) for info in self._inner.list(container, prefix))

    def list_page(
        self, container: str, prefix: str = "", *, marker: str | None = None, limit: int = 5000
    ) -> tuple[list[BlobInfo], str | None]:
        page, following = self._inner.list_page(container, prefix, marker=marker, limit=limit)
        return [self._stamped(info) for info in page], following
