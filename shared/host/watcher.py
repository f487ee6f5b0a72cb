"""Turns new blobs in the watched containers (landing, labels) into Microsoft.Storage.BlobCreated events, as
Event Grid's storage system topic does, in the documented schema."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.domain.messages import BLOB_CREATED
from shared.ports import BlobInfo, BlobStore

log = logging.getLogger(__name__)


def blob_created_event(info: BlobInfo, url: str, topic: str) -> dict[str, Any]:
    return {
        "topic": topic,
        "subject": f"/blobServices/default/containers/{info.container}/blobs/{info.name}",
        "eventType": BLOB_CREATED,
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "id": str(uuid.uuid4()),
        "data": {
            "api": "PutBlob",
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": info.etag,
            "contentType": "text/csv" if info.name.endswith(".csv") else "application/octet-stream",
            "contentLength": info.size,
            "blobType": "BlockBlob",
            "url": url,
            "sequencer": f"{int(info.last_modified.timestamp() * 1e6):032d}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


class BlobWatcher:
    def __init__(
        self,
        blobs: BlobStore,
        containers: Sequence[str],
        topic: str,
        publish: Callable[[list[dict[str, Any]]], Any],
        interval: float = 0.5,
    ) -> None:
        self._blobs = blobs
        self._containers = tuple(containers)
        self._topic = topic
        self._publish = publish
        self._interval = interval
        self._seen: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="blob-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poll(self) -> int:
        """Announce every blob version not seen before; returns how many. A container that cannot be listed
        is tried again next time and holds up no other; a version counts as seen once it is published."""
        announced = 0
        for container in self._containers:
            try:
                found = [
                    ((container, info.name, info.etag), info)
                    for info in self._blobs.list(container)
                    if (container, info.name, info.etag) not in self._seen
                ]
            except Exception:
                log.exception(
                    "listing a watched container failed; trying again", extra={"container": container}
                )
                continue
            if found:
                self._publish(
                    [blob_created_event(i, self._blobs.url(container, i.name), self._topic) for _, i in found]
                )
                self._seen.update(key for key, _ in found)
                announced += len(found)
        return announced

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:
                log.exception("watched containers poll failed; trying again")
