"""Releases: a persisted state machine from registered model to production, advanced by events and ticks.

    deploying -> smoke_testing -> [awaiting_approval ->] approved -> [canary ->] promoting -> production
    any failure on the way -> rolling_back -> rolled_back        (awaiting_approval -> rejected | expired)
    a newer release registered on the way -> superseded           a rollback past its deadline -> stuck

One release at a time per endpoint: the newest registered owns its traffic and the production pointer
(`release_owner`); older ones on their way give way. Every status on the way has a deadline.

A new deployment takes no live traffic until it has answered the smoke test exactly as the model did
offline, within the latency SLO. With a model already in production, it then serves a canary share for the
bake period while its live error rate and latency are watched. Production keeps the previous deployment for
instant rollback. Each step finishes at once or leaves the release where the next `reconcile` tick picks it
up: no handler waits for a deployment that takes minutes in Azure. The steps are in `release_steps`.
"""

from __future__ import annotations

import dataclasses

from shared import telemetry
from shared.deps import Deps
from shared.domain.decisions.release import newer
from shared.domain.messages import ModelRegistered
from shared.handlers import release_owner
from shared.handlers.release_steps import (
    RELEASE_ROLLED_BACK,
    STEPS,
    gate,
    integrity,
    publish,
    remove,
    run_step,
    serve_only,
    transition,
)
from shared.handlers.run_version import RUN_TAG, not_the_runs_version
from shared.ports import ModelVersion
from shared.state import keys, releases
from shared.state.lease import decision, lease
from shared.state.records import Release, ReleaseStatus, ReleaseStep
from shared.state.releases import deployment_name, release_id

ACTOR = "on_model_registered"


def on_model_registered(message: ModelRegistered, deps: Deps) -> None:
    if message.model_name != deps.settings.model_name:
        deps.audit.record(
            ACTOR,
            "event.ignored",
            f"{message.model_name}:{message.model_version}",
            key=f"ignored:{message.envelope.id}",
            event_id=message.envelope.id,
            reason="not the model this app manages",
        )
        return
    model = deps.registry.get(message.model_name, message.model_version)
    if model is None:  # the event can outrun the registry's read replica: fail, so Event Grid retries
        raise LookupError(f"model {message.model_name}:{message.model_version} is not in the registry")
    if (duplicate := not_the_runs_version(model, deps)) is not None:
        deps.audit.record(
            ACTOR,
            "event.ignored",
            model.id,
            key=f"ignored:{message.envelope.id}",
            event_id=message.envelope.id,
            reason=duplicate,
        )
        return
    start_release(model, message.envelope.id, deps, ACTOR)
    rid = release_id(model.name, model.version)
    advance(rid, deps, ACTOR)
    give_way(rid, deps, ACTOR)


def give_way(rid: str, deps: Deps, actor: str) -> None:
    """Once `rid` owns its endpoint, the older releases still on their way are superseded now (a release
    another worker is moving is superseded at its next step)."""
    stored = deps.state.get(keys.release(rid))
    owner = deps.state.get(keys.release_owner(stored.record.model)) if stored else None
    if stored is None or owner is None or owner.record.release != rid:
        return
    for other in releases.active(deps.state):
        if other.model == stored.record.model and newer(stored.record.version, other.version):
            advance(other.id, deps, actor)


def start_release(model: ModelVersion, event_id: str, deps: Deps, actor: str) -> None:
    """Create the release (once per model version) and begin its deployment; a redelivery resumes it. It joins
    the trace of the run that trained the model."""
    run_id = model.tags.get(RUN_TAG, "")
    run = deps.state.get(keys.run(run_id)) if run_id else None
    parent = run.record.trace if run is not None else None
    rid = release_id(model.name, model.version)
    with telemetry.span(
        "release.start", parent, event_id=event_id, release_id=rid, model_version=model.version
    ):
        _start_release(model, event_id, deps, actor, telemetry.traceparent())


def _start_release(model: ModelVersion, event_id: str, deps: Deps, actor: str, trace: str | None) -> None:
    rid = release_id(model.name, model.version)
    deployment = deployment_name(model.version)
    key = keys.release(rid)

    release = Release(
        id=rid,
        model=model.name,
        version=model.version,
        deployment=deployment,
        status=ReleaseStatus.DEPLOYING,
        event_id=event_id,
        history=(ReleaseStep(ReleaseStatus.DEPLOYING, deps.clock().isoformat()),),
        trace=trace,
    )
    # A newer release owns the endpoint (or production is as new): `advance` supersedes this one, undeployed.
    outranked = release_owner.outranked(release, deps) is not None

    def create() -> tuple[Release, tuple]:
        started = decision(
            actor,
            "deployment.started",
            rid,
            f"{key}:deployment.started",
            event_id=event_id,
            deployment=deployment,
        )
        return release, () if outranked else (started,)

    with lease(deps, key, create=create) as held:
        deploying = held is not None and held.record.status is ReleaseStatus.DEPLOYING
        if deploying and not outranked and integrity(model, deps)[1] is None:  # else `advance` says why
            deps.endpoints.begin_deployment(deployment, model)  # idempotent by name


def advance(rid: str, deps: Deps, actor: str) -> ReleaseStatus:
    """Move the release as far as it can go now; returns its status."""
    stored = deps.state.get(keys.release(rid))
    parent = stored.record.trace if stored is not None else None
    version = stored.record.version if stored is not None else None
    with telemetry.span("release.advance", parent, release_id=rid, model_version=version):
        return _advance(rid, deps, actor)


def _advance(rid: str, deps: Deps, actor: str) -> ReleaseStatus:
    key = keys.release(rid)
    with lease(deps, key) as held:
        if held is None:
            current = deps.state.get(key)
            if current is None:
                raise LookupError(f"release {rid} does not exist")
            return current.record.status  # another worker is moving it
        while (step := STEPS.get(held.record.status)) is not None:
            proceed, outcome = gate(held.record, deps, actor)
            if outcome is None:
                outcome = run_step(step, held.record, deps, proceed)
            if outcome is None:
                break  # waiting for something outside: a deployment, an approver, the bake period
            transition(held, outcome[0], deps, actor, outcome[1])
        return held.record.status


def decide_approval(rid: str, approved: bool, approver: str, comment: str, deps: Deps) -> tuple[int, str]:
    """An approver's decision; returns an HTTP status and a message (200, 404 or 409)."""
    key = keys.release(rid)
    if not deps.state.exists(key):
        return 404, f"release {rid} does not exist"
    actor = "approve" if approved else "reject"
    with lease(deps, key) as held:
        if held is None:
            return 409, f"release {rid} is being changed; try again"
        status = held.record.status
        if status is not ReleaseStatus.AWAITING_APPROVAL:
            return 409, f"release {rid} is {status}, not awaiting approval"
        if not approved:
            remove(held.record.deployment, deps)
        verdict = ReleaseStatus.APPROVED if approved else ReleaseStatus.REJECTED
        transition(held, verdict, deps, actor, {"approver": approver, "comment": comment})
    advance(rid, deps, actor)
    return 200, f"release {rid} {'approved' if approved else 'rejected'} by {approver}"


def roll_back(rid: str, requested_by: str, reason: str, deps: Deps) -> tuple[int, str]:
    """Manual rollback: a release on its way is stopped; the production release gives way to the previous one."""
    key = keys.release(rid)
    if not deps.state.exists(key):
        return 404, f"release {rid} does not exist"
    with lease(deps, key) as held:
        if held is None:
            return 409, f"release {rid} is being changed; try again"
        release = held.record
        detail = {"requested_by": requested_by, "reason": reason or "manual rollback"}
        if release.status is ReleaseStatus.PRODUCTION:
            refused, restored = _restore_previous(release, deps)
            if refused is not None:
                return 409, refused
            publish(deps, RELEASE_ROLLED_BACK, release, f"{rid}:rolled_back", restored=restored, **detail)
            transition(held, ReleaseStatus.ROLLED_BACK, deps, "rollback", detail)
        elif release.status.active and release.status is not ReleaseStatus.ROLLING_BACK:
            transition(held, ReleaseStatus.ROLLING_BACK, deps, "rollback", detail)
        else:
            return 409, f"release {rid} is {release.status}; there is nothing to roll back"
    advance(rid, deps, "rollback")
    return 200, f"release {rid} rolled back by {requested_by}"


def _restore_previous(release: Release, deps: Deps) -> tuple[str | None, str | None]:
    """Production back to the model before `release`, holding the endpoint: (why not, None) or (None, the
    model restored)."""
    rid = release.id
    key = keys.release_owner(release.model)
    with lease(deps, key) as owner:
        if owner is None and deps.state.exists(key):
            return f"the endpoint of release {rid} is being changed; try again", None
        on_its_way = owner.record.release if owner and owner.record.release != rid else None
        if (
            on_its_way
            and (current := deps.state.get(keys.release(on_its_way)))
            and current.record.status.active
        ):
            return f"release {on_its_way} is on its way on this endpoint; roll it back first", None
        production = releases.production(deps.state, release.model)
        previous = production.previous if production else None
        if previous is None:
            return f"release {rid} has no previous production model to roll back to", None
        serve_only(previous.deployment, deps)
        releases.set_production(deps.state, dataclasses.replace(previous, since=deps.clock().isoformat()))
        releases.set_status(deps.state, previous.release, ReleaseStatus.PRODUCTION)
        remove(release.deployment, deps)
    return None, previous.model_id


def converge_traffic(deps: Deps, actor: str) -> dict[str, int] | None:
    """Each tick: the endpoint's traffic back to what the production record (and a baking canary) say."""
    return release_owner.converge_traffic(deps, deps.settings.model_name, actor)


def active_releases(deps: Deps) -> list[str]:
    return [release.id for release in releases.active(deps.state)]
