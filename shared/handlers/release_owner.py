"""One release at a time per endpoint: who may change its traffic and the production pointer.

The owner record (`release-owner/<model>`) names the newest release admitted. A release claims it when it first
moves (an ETag-guarded write under the record's lease) if it is newer than production and than the owner (or the
owner's release has finished); a release that is not is superseded, and an owner that lost to a newer one is
superseded at its next step (its deployment removed, the reason in its history and the audit log). Superseded is
final, so a release that lost the endpoint never gets it back.

Every traffic or production write happens while holding the owner record's lease and only by the owner
(`owning`), so two releases never interleave their writes. A stalled worker whose lease expired can still land a
late traffic call; `converge`, run by every reconcile tick, brings the traffic back to what the records say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.deps import Deps
from shared.domain.decisions.release import newer
from shared.state import keys, releases
from shared.state.lease import Held, decision, lease
from shared.state.records import Release, ReleaseOwner, ReleaseStatus

OWNER = "owner"
WAIT = "wait"
# The owner's own step is changing traffic: its status is about to follow the write, so leave it alone.
MOVING = frozenset({ReleaseStatus.APPROVED, ReleaseStatus.PROMOTING, ReleaseStatus.ROLLING_BACK})


def outranked(release: Release, deps: Deps, owner: ReleaseOwner | None = None) -> str | None:
    """Why `release` can never own its endpoint (a newer owner, or production already as new), else None."""
    if owner is None:
        stored = deps.state.get(keys.release_owner(release.model))
        owner = stored.record if stored else None
    if owner is not None and owner.release != release.id and _holds(owner, release, deps):
        return f"superseded by {owner.release}: the endpoint releases its newest model only"
    production = releases.production(deps.state, release.model)
    if production and production.release != release.id and not newer(release.version, production.version):
        return f"version {release.version} is not newer than production version {production.version}"
    return None


def standing(release: Release, deps: Deps, actor: str) -> tuple[str, str | None]:
    """(OWNER, None): `release` owns its endpoint (claimed now if it was free or older); (WAIT, None): the owner
    record is being changed, try later; ("superseded", reason): it never will."""
    key = keys.release_owner(release.model)
    stored = deps.state.get(key)
    if stored is not None and stored.record.release == release.id:
        return OWNER, None
    reason = outranked(release, deps, stored.record if stored else None)
    if reason is not None:
        return "superseded", reason

    def create() -> tuple[ReleaseOwner, tuple]:
        return _owner(release, deps), (_claimed(release, None, actor),)

    with lease(deps, key, create=create) as held:
        if held is None:
            return WAIT, None
        owner = held.record
        if owner.release == release.id:
            return OWNER, None
        if _holds(owner, release, deps):
            return "superseded", f"superseded by {owner.release}: the endpoint releases its newest model only"
        held.change(_owner(release, deps), _claimed(release, owner.release, actor))
        # The previous owner's canary share, if it had one, is void: production serves alone again.
        converge(held, deps, actor)
    return OWNER, None


@contextmanager
def owning(release: Release, deps: Deps) -> Iterator[bool | None]:
    """Hold the owner record while changing traffic or production: True if `release` owns the endpoint, False
    if it lost it, None if another worker holds the record now (try later)."""
    with lease(deps, keys.release_owner(release.model)) as held:
        yield None if held is None else held.record.release == release.id


def converge_traffic(deps: Deps, model: str, actor: str) -> dict[str, int] | None:
    """Bring the endpoint's traffic back to what the records say; returns the traffic set, if it had to."""
    stored = deps.state.get(keys.release_owner(model))
    if stored is None or _wanted(stored.record, deps) is None:
        return None  # as it should be (a look without the lease: most ticks change nothing)
    with lease(deps, keys.release_owner(model)) as held:
        if held is None:
            return None
        return converge(held, deps, actor)


def converge(held: Held[ReleaseOwner], deps: Deps, actor: str) -> dict[str, int] | None:
    """Under the owner record's lease: production serves alone, or with the owner's canary share while the
    owner bakes; a change is recorded with what was there."""
    wanted = _wanted(held.record, deps)
    if wanted is None:
        return None
    live = {name: share for name, share in deps.endpoints.traffic().items() if share}
    deps.endpoints.set_traffic(wanted)
    restored = {name: share for name, share in wanted.items() if share}
    deps.audit.record(
        actor,
        "traffic.restored",
        held.record.model,
        key=f"{held.key}:traffic:{deps.clock().isoformat()}:{sorted(live.items())}",
        found=live,
        restored=restored,
        owner=held.record.release,
        reason="the endpoint's traffic was not what the production record and the owning release say",
    )
    return wanted


def _wanted(owner: ReleaseOwner, deps: Deps) -> dict[str, int] | None:
    """The traffic to set (every deployment's share) when the endpoint's differs from what the records say."""
    desired = _desired(owner, deps)
    if desired is None:
        return None
    current = deps.endpoints.traffic()
    live = {name: share for name, share in current.items() if share}
    if live == {name: share for name, share in desired.items() if share}:
        return None
    if any(name not in current for name in desired):
        return None  # a deployment the records name is gone; the release that owns it deals with that
    return {name: desired.get(name, 0) for name in current}


def _desired(owner: ReleaseOwner, deps: Deps) -> dict[str, int] | None:
    production = releases.production(deps.state, owner.model)
    stored = deps.state.get(keys.release(owner.release))
    release = stored.record if stored else None
    if release is not None and release.status in MOVING:
        return None
    base = {production.deployment: 100} if production else {}
    if release is not None and release.status is ReleaseStatus.CANARY and production:
        share = _canary_share(release, deps)
        return {production.deployment: 100 - share, release.deployment: share}
    return base


def _canary_share(release: Release, deps: Deps) -> int:
    for step in reversed(release.history):
        if step.status is ReleaseStatus.CANARY and "percent" in step.detail:
            return int(step.detail["percent"])
    return deps.settings.release.canary_percent


def _holds(owner: ReleaseOwner, release: Release, deps: Deps) -> bool:
    """Whether `owner` keeps the endpoint from `release`: it is as new, and still on its way."""
    if newer(release.version, owner.version):
        return False
    stored = deps.state.get(keys.release(owner.release))
    return stored is None or stored.record.status.active


def _owner(release: Release, deps: Deps) -> ReleaseOwner:
    return ReleaseOwner(release.model, release.id, release.version, deps.clock().isoformat())


def _claimed(release: Release, previous: str | None, actor: str) -> Any:
    return decision(
        actor,
        "release.owns_endpoint",
        release.id,
        f"{keys.release_owner(release.model)}:{release.id}",
        model=f"{release.model}:{release.version}",
        previous_owner=previous,
    )
