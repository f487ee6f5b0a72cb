"""The catalog of accepted files: one record `catalog/<sha256>` per content, which every dataset version is
built from.

A content stays in the catalog while some landed version holds it (the same bytes under two names are one
entry with two holders). When every version holding it has been overwritten or deleted in landing, it is
retracted: it stays on record, with why, and later dataset versions leave it out. Landing up the same bytes
again brings it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from shared.state import keys
from shared.state.records import CatalogEntry, FileVersion, Retraction
from shared.state.store import StateStore


def add(state: StateStore, entry: CatalogEntry) -> CatalogEntry:
    """Record an accepted file version (once per content: another version with the same bytes is one more
    holder, and brings a retracted content back); the entry as stored. A content is most often new: it is
    created without looking first."""
    version = FileVersion(entry.name, entry.etag)

    def merged(found: CatalogEntry | None) -> CatalogEntry | None:
        if found is None:
            return entry
        if found.retracted is not None:
            return dataclasses.replace(found, name=entry.name, etag=entry.etag, holders=(), retracted=None)
        if version in found.versions():
            return None
        return dataclasses.replace(found, holders=(*found.holders, version))

    stored = state.update(keys.catalog_entry(entry.sha256), merged, fresh=True)
    assert stored is not None  # `merged` writes an entry whenever there is none
    return stored.record


def entries(state: StateStore) -> dict[str, CatalogEntry]:
    """Every content, retracted ones included."""
    return {s.record.sha256: s.record for s in state.list(keys.CATALOG)}


def current(state: StateStore) -> dict[str, CatalogEntry]:
    """The contents a new dataset version is built from."""
    return {sha: e for sha, e in entries(state).items() if e.retracted is None}


def entry(state: StateStore, sha256: str) -> CatalogEntry | None:
    stored = state.get(keys.catalog_entry(sha256))
    return stored.record if stored else None


def held(entry: CatalogEntry, landing: Mapping[str, str]) -> bool:
    """Whether a version holding the content is still in landing (`landing`: name -> ETag of what is there).
    An entry older than retractions knows no ETag: its name still being there is enough."""
    return any(v.name in landing and (not v.etag or landing[v.name] == v.etag) for v in entry.versions())


def retraction(entry: CatalogEntry, landing: Mapping[str, str], at: str, event_id: str) -> Retraction:
    """Why `entry`, which no landed version holds, leaves the catalog: its first version's fate."""
    now = landing.get(entry.name)
    fates = []
    for version in entry.versions():
        there = landing.get(version.name)
        fates.append(
            f"{version.name} overwritten by etag {there}" if there else f"{version.name} deleted at {at}"
        )
    if now:
        return Retraction("overwritten", "; ".join(fates), at, event_id, by_etag=now)
    return Retraction("deleted", "; ".join(fates), at, event_id)


def retract(state: StateStore, sha256: str, why: Retraction) -> bool:
    """Mark a content retracted; False if it was already (or is no longer in the catalog)."""
    done = False

    def marked(found: CatalogEntry | None) -> CatalogEntry | None:
        nonlocal done
        done = found is not None and found.retracted is None  # the last call is the one that counts
        if not done:
            return None
        return dataclasses.replace(found, retracted=why)

    state.update(keys.catalog_entry(sha256), marked)
    return done


def restore(state: StateStore, sha256: str) -> CatalogEntry | None:
    """Clear a retraction; the entry restored, or None if it was not retracted."""
    done: CatalogEntry | None = None

    def cleared(found: CatalogEntry | None) -> CatalogEntry | None:
        nonlocal done
        done = (
            None if found is None or found.retracted is None else dataclasses.replace(found, retracted=None)
        )
        return done

    state.update(keys.catalog_entry(sha256), cleared)
    return done


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
