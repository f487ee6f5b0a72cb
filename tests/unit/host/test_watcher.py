"""The local host's watcher: new blob versions in the watched containers become BlobCreated events, each
announced once, none lost to a failing container or a failing publish."""

from __future__ import annotations

from typing import Any

import pytest

from shared.host.watcher import BlobWatcher
from tests.fakes import InMemoryBlobStore


def _watcher(
    blobs: InMemoryBlobStore, published: list[dict[str, Any]], containers: tuple[str, ...]
) -> BlobWatcher:
    return BlobWatcher(blobs, containers, "topic", published.extend)


def test_every_watched_container_is_announced_each_version_once() -> None:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["landing", "labels"])
    published: list[dict[str, Any]] = []
    watcher = _watcher(blobs, published, ("landing", "labels"))
    blobs.write("landing", "rows.csv", b"a\n1\n")
    blobs.write("labels", "truth.csv", b"correlation_id,target\nx,1\n")

    assert watcher.poll() == 2 and watcher.poll() == 0
    blobs.write("labels", "truth.csv", b"correlation_id,target\nx,2\n")  # a new version is a new blob
    assert watcher.poll() == 1
    subjects = [e["subject"] for e in published]
    assert subjects == [
        "/blobServices/default/containers/landing/blobs/rows.csv",
        "/blobServices/default/containers/labels/blobs/truth.csv",
        "/blobServices/default/containers/labels/blobs/truth.csv",
    ]


def test_a_container_that_cannot_be_listed_holds_up_no_other() -> None:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["landing"])  # the labels container is missing
    published: list[dict[str, Any]] = []
    blobs.write("landing", "rows.csv", b"a\n1\n")

    assert _watcher(blobs, published, ("labels", "landing")).poll() == 1
    assert published[0]["subject"].endswith("/landing/blobs/rows.csv")


def test_a_failed_publish_announces_the_blob_again_next_time() -> None:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["landing"])
    blobs.write("landing", "rows.csv", b"a\n1\n")
    attempts: list[int] = []

    def publish(events: list[dict[str, Any]]) -> None:
        attempts.append(len(events))
        if len(attempts) == 1:
            raise ConnectionError("the host's topic is down")

    watcher = BlobWatcher(blobs, ("landing",), "topic", publish)
    with pytest.raises(ConnectionError):
        watcher.poll()
    assert watcher.poll() == 1 and attempts == [1, 1]
