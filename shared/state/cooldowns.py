"""Cooldowns: once an event of one cause (drift, degraded quality) has asked to retrain a model version, later
events of that cause for the same version ask again only after the cooldown. One record per model and cause,
changed by one compare-and-swap."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.state.keys import Key
from shared.state.records import Cooldown
from shared.state.store import StateStore


def claim(
    state: StateStore, key: Key[Cooldown], event_id: str, model_version: str, now: datetime, seconds: float
) -> Cooldown | None:
    """The earlier event whose request still covers this one (same model version, within the cooldown), or
    None after claiming the cooldown for `event_id`. A retry of the claiming event passes again."""
    if seconds <= 0:
        return None
    holder: Cooldown | None = None

    def change(current: Cooldown | None) -> Cooldown | None:
        nonlocal holder
        holder = None
        if current is not None and current.event == event_id:
            return None
        # another champion is another episode; an event that names no version belongs to the current one
        same_episode = current is not None and (
            not model_version or not current.model_version or current.model_version == model_version
        )
        if current is not None and same_episode and now < datetime.fromisoformat(current.until):
            holder = current
            return None
        until = (now + timedelta(seconds=seconds)).isoformat()
        return Cooldown(
            event=event_id, model_version=model_version, requested_at=now.isoformat(), until=until
        )

    state.update(key, change)
    return holder
