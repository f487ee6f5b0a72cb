"""JSON documents in the state container, updated with optimistic concurrency (ETags).

Each flow that spans events (a landed file, the open training request, a run, a release) is one document. A
writer reads the document and its ETag, decides, and writes back only if nobody changed it in between; a loser
re-reads and decides again. Creation uses if-none-match, so two workers cannot both create the same record.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.ports import BlobStore, PreconditionFailed


@dataclass(frozen=True)
class Document:
    key: str
    body: dict[str, Any]
    etag: str


class StateStore:
    def __init__(self, blobs: BlobStore, container: str, cache_size: int = 20_000) -> None:
        self._blobs = blobs
        self._container = container
        # Listing gives each document's ETag: a document whose ETag we have seen need not be read again.
        self._seen: OrderedDict[str, Document] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def get(self, key: str) -> Document | None:
        blob = self._blobs.read(self._container, _name(key))
        if blob is None:
            return None
        return Document(key=key, body=json.loads(blob.data), etag=blob.info.etag)

    def create(self, key: str, body: dict[str, Any]) -> Document | None:
        """Create the document unless it exists; None means somebody else created it first."""
        try:
            etag = self._blobs.write(self._container, _name(key), _dump(body), if_none_match=True)
        except PreconditionFailed:
            return None
        return Document(key=key, body=body, etag=etag)

    def replace(self, document: Document, body: dict[str, Any]) -> Document:
        """Write `body` over `document` if unchanged since read; raises PreconditionFailed otherwise."""
        etag = self._blobs.write(self._container, _name(document.key), _dump(body), if_match=document.etag)
        return Document(key=document.key, body=body, etag=etag)

    def put(self, key: str, body: dict[str, Any]) -> Document:
        """Unconditional write, for documents that have one writer."""
        etag = self._blobs.write(self._container, _name(key), _dump(body))
        return Document(key=key, body=body, etag=etag)

    def update(
        self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None], attempts: int = 20
    ) -> Document | None:
        """Apply `change` to the current body (None if absent) until the write wins; None return = no write."""
        for _ in range(attempts):
            current = self.get(key)
            body = change(None if current is None else json.loads(json.dumps(current.body)))
            if body is None:
                return current
            try:
                if current is None:
                    created = self.create(key, body)
                    if created is not None:
                        return created
                    continue
                return self.replace(current, body)
            except PreconditionFailed:
                continue
        raise PreconditionFailed(f"state/{key}: too much contention after {attempts} attempts")

    def delete(self, key: str, document: Document | None = None) -> None:
        """Delete; given the `document` read earlier, only if unchanged since (else PreconditionFailed)."""
        self._blobs.delete(self._container, _name(key), if_match=document.etag if document else None)

    def list(self, prefix: str) -> Iterator[Document]:
        for info in self._blobs.list(self._container, prefix):
            key = info.name.removesuffix(".json")
            with self._lock:
                cached = self._seen.get(key)
            if cached is not None and cached.etag == info.etag:
                yield cached  # writers build new bodies ({**body, ...}); nobody mutates a read one
                continue
            document = self.get(key)
            if document is not None:
                self._remember(document)
                yield document

    def _remember(self, document: Document) -> None:
        with self._lock:
            self._seen[document.key] = document
            self._seen.move_to_end(document.key)
            while len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)


def _name(key: str) -> str:
    return f"{key}.json"


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=1, sort_keys=True, default=str).encode()
