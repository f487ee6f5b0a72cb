"""A blob store that counts the storage operations passing through it, by operation and by place.

In Azure each operation is a billed transaction and a network round trip, and a handler's throughput is the
store's operation rate divided by the operations it spends; this is how the benches and tests count them.
A place is the container's role and the first segment of the blob's name (`state/files`, `audit/keys`,
`landing`), which says what the operation was for.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

from shared.ports import Blob, BlobInfo, BlobStore, BlobStream

OPERATIONS = ("read", "info", "write", "list", "find", "copy", "delete", "open")
LISTED = "listed"  # not an operation: a blob a listing yielded


class CountingBlobStore(BlobStore):
    """Delegates every call to `inner`, counting it. `roles` names containers (name -> role) for the places."""

    def __init__(self, inner: BlobStore, roles: Mapping[str, str] | None = None) -> None:
        self._inner = inner
        self._roles = dict(roles or {})
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    # --- counting ---------------------------------------------------------------------------------------------

    def _count(self, operation: str, container: str, name: str = "", prefix: bool = False) -> None:
        role = self._roles.get(container, container)
        head, _, rest = name.partition("/")
        place = f"{role}/{head}" if rest or (prefix and head) else role
        with self._lock:
            self.counts[operation, place] += 1

    def reset(self) -> Counter[tuple[str, str]]:
        """The counts so far, and start again from zero."""
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts

    # --- the store --------------------------------------------------------------------------------------------

    def ensure_containers(self, names: Sequence[str]) -> None:
        self._inner.ensure_containers(names)

    def read(self, container: str, name: str) -> Blob | None:
        self._count("read", container, name)
        return self._inner.read(container, name)

    def info(self, container: str, name: str) -> BlobInfo | None:
        self._count("info", container, name)
        return self._inner.info(container, name)

    def open(self, container: str, name: str) -> BlobStream | None:
        self._count("open", container, name)
        return self._inner.open(container, name)

    def copy(
        self,
        source_container: str,
        source_name: str,
        container: str,
        name: str,
        *,
        source_etag: str | None = None,
        if_none_match: bool = False,
    ) -> None:
        self._count("copy", container, name)
        self._inner.copy(
            source_container,
            source_name,
            container,
            name,
            source_etag=source_etag,
            if_none_match=if_none_match,
        )

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        self._count("write", container, name)
        return self._inner.write(
            container,
            name,
            data,
            if_none_match=if_none_match,
            if_match=if_match,
            content_type=content_type,
            tags=tags,
        )

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        """Counted as one `list`, and each blob it yields as one `listed` (Azure pages 5,000 to a request)."""
        self._count("list", container, prefix, prefix=True)
        for info in self._inner.list(container, prefix):
            self._count("listed", container, prefix, prefix=True)
            yield info

    def list_page(
        self, container: str, prefix: str = "", *, marker: str | None = None, limit: int = 5000
    ) -> tuple[list[BlobInfo], str | None]:
        """One `list` (one request in Azure for up to 5,000 blobs), each blob it yields one `listed`."""
        self._count("list", container, prefix, prefix=True)
        page, following = self._inner.list_page(container, prefix, marker=marker, limit=limit)
        for _ in page:
            self._count(LISTED, container, prefix, prefix=True)
        return page, following

    def find(self, container: str, tag: str, value: str) -> Iterator[str]:
        """One `find`, each name it yields one `listed`."""
        self._count("find", container, value, prefix=True)
        for name in self._inner.find(container, tag, value):
            self._count(LISTED, container, value, prefix=True)
            yield name

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        self._count("delete", container, name)
        self._inner.delete(container, name, if_match=if_match)

    def url(self, container: str, name: str) -> str:
        return self._inner.url(container, name)

    def close(self) -> None:
        self._inner.close()


def breakdown(counts: Counter[tuple[str, str]], per: float = 1.0) -> list[str]:
    """Lines for a report: the total, then by operation, then by place, each divided by `per`."""
    total = sum(count for (operation, _), count in counts.items() if operation != LISTED)
    by_operation: Counter[str] = Counter()
    by_place: Counter[str] = Counter()
    for (operation, place), count in counts.items():
        if operation == LISTED:
            continue
        by_operation[operation] += count
        by_place[place] += count
    lines = [f"storage ops per file {total / per:.1f}"]
    lines += [f"  {op:<8} {n / per:6.2f}" for op, n in by_operation.most_common()]
    lines += [f"  {place:<24} {n / per:6.2f}" for place, n in by_place.most_common()]
    return lines
