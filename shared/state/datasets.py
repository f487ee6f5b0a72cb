"""Dataset versions: immutable, content-addressed files and the manifests that list them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from shared.ports import BlobStore, PreconditionFailed
from shared.state.records import CatalogEntry


def file_path(sha256: str, name: str) -> str:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return f"files/{sha256}{suffix}"


def store_copy(
    blobs: BlobStore, source_container: str, name: str, etag: str, container: str, sha256: str
) -> str:
    """Copy an accepted file version under its content hash, server-side; identical content is stored once.
    LookupError if the version is gone before it was stored (and so cannot be trained on)."""
    path = file_path(sha256, name)
    try:
        blobs.copy(source_container, name, container, path, source_etag=etag, if_none_match=True)
    except PreconditionFailed:
        if blobs.info(container, path) is None:  # not "already stored": the source changed or vanished
            raise LookupError(f"{name} changed or vanished before it was stored") from None
    return path


def build_manifest(
    files: list[dict[str, Any]], schema: dict[str, str], retracted: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A manifest's id is the hash of its content, so the same files always make the same version. `retracted`
    lists the files that left the catalog and why (a version without any has no such key, and keeps the id
    it always had)."""
    ordered = sorted(files, key=lambda f: (f["sha256"], f["name"]))
    content: dict[str, Any] = {"files": ordered, "schema": dict(sorted(schema.items()))}
    if retracted:
        content["retracted"] = sorted(retracted, key=lambda f: (f["sha256"], f["name"]))
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return {"id": f"ds-{digest[:16]}", **content, "rows": sum(int(f["rows"]) for f in ordered)}


def retracted_files(entries: Iterable[CatalogEntry]) -> list[dict[str, Any]]:
    """The catalog's retracted files as a manifest lists them: which content, from which version, and why."""
    return [
        {
            "name": e.name,
            "sha256": e.sha256,
            "etag": e.etag,
            "reason": e.retracted.reason,
            "why": e.retracted.why,
            "at": e.retracted.at,
            "by_etag": e.retracted.by_etag,
            "dataset_version": e.dataset_version,
        }
        for e in entries
        if e.retracted is not None
    ]


def save_manifest(blobs: BlobStore, container: str, manifest: dict[str, Any]) -> str:
    name = f"manifests/{manifest['id']}.json"
    try:
        blobs.write(container, name, json.dumps(manifest, indent=1).encode(), if_none_match=True)
    except PreconditionFailed:
        return name  # content-addressed: an existing manifest of this id is identical
    return name


def load_manifest(blobs: BlobStore, container: str, dataset_version: str) -> dict[str, Any] | None:
    blob = blobs.read(container, f"manifests/{dataset_version}.json")
    return None if blob is None else json.loads(blob.data)
