"""The catalog of accepted files: one record `catalog/<sha256>` per content, which every dataset version is
built from."""

from __future__ import annotations

import dataclasses

from shared.state import keys
from shared.state.records import CatalogEntry
from shared.state.store import StateStore


def add(state: StateStore, entry: CatalogEntry) -> None:
    """Record an accepted file (once per content: the same bytes under two names are one entry)."""
    state.create(keys.catalog_entry(entry.sha256), entry)


def entries(state: StateStore) -> dict[str, CatalogEntry]:
    return {s.record.sha256: s.record for s in state.list(keys.CATALOG)}


def entry(state: StateStore, sha256: str) -> CatalogEntry | None:
    stored = state.get(keys.catalog_entry(sha256))
    return stored.record if stored else None


def mark_joined(state: StateStore, shas: list[str], dataset_version: str) -> None:
    """Note the first dataset version each file joined: "which files did this model see" stays answerable."""
    for sha in shas:
        state.update(
            keys.catalog_entry(sha),
            lambda found: (
                None
                if found is None or found.dataset_version
                else dataclasses.replace(found, dataset_version=dataset_version)
            ),
        )
