"""What serves production, and the release records that a promotion or rollback touches besides its own."""

from __future__ import annotations

import dataclasses

from shared.state import keys
from shared.state.records import Production, Release, ReleaseStatus
from shared.state.store import StateStore

DEPLOYMENT_PREFIX = "model-v"


def release_id(model_name: str, version: str) -> str:
    return f"{model_name}-v{version}"


def deployment_name(version: str) -> str:
    return f"{DEPLOYMENT_PREFIX}{version}"


def version_of(deployment: str) -> str | None:
    """The model version a deployment this app created serves (`deployment_name` read back), else None."""
    return deployment[len(DEPLOYMENT_PREFIX) :] if deployment.startswith(DEPLOYMENT_PREFIX) else None


def production(state: StateStore, model_name: str) -> Production | None:
    stored = state.get(keys.production(model_name))
    return stored.record if stored else None


def set_production(state: StateStore, pointer: Production) -> None:
    """Only the release holding the promotion writes the pointer, so the write is unconditional."""
    state.put(keys.production(pointer.model), pointer)


def set_status(state: StateStore, release_id: str, status: ReleaseStatus) -> None:
    """Mark another release (the one a promotion supersedes, or a rollback restores)."""
    state.update(
        keys.release(release_id),
        lambda found: None if found is None else dataclasses.replace(found, status=status),
    )


def active(state: StateStore, *, listed: bool = False) -> list[Release]:
    """Releases on their way (a stuck one is not: it is set aside), from the index of open work; `listed`: from
    a listing of every release, which also holds one started a moment ago (the index trails the writes)."""
    found = state.list(keys.RELEASES) if listed else state.open(keys.RELEASES)
    return [s.record for s in found if s.record.status.active and s.stuck is None]


def with_status(state: StateStore, model_name: str, status: ReleaseStatus) -> list[Release]:
    return [
        stored.record
        for stored in state.list(keys.RELEASES)
        if stored.record.model == model_name and stored.record.status is status
    ]
