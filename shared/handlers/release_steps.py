"""The steps of a release, one per status that can move on by itself, and the traffic moves they share.

A step looks at the release and the world and answers the next status with its evidence, or None to wait
(for a deployment, an approver, the bake period). `advance` in `shared.handlers.release` runs them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.deps import Deps
from shared.domain.decisions import release as verdicts
from shared.handlers import release_shadow
from shared.handlers.release_owner import OWNER, WAIT, owning, standing
from shared.handlers.release_smoke import smoke_sample, warm_up
from shared.ports import ModelVersion, OutgoingEvent
from shared.state import keys, releases
from shared.state.lease import Held, decision
from shared.state.records import Production, Release, ReleaseStatus, ReleaseStep

MODEL_PROMOTED = "MLOps.ModelPromoted"
RELEASE_ROLLED_BACK = "MLOps.ReleaseRolledBack"
APPROVAL_REQUESTED = "MLOps.ApprovalRequested"

MODEL_SHA256_TAG = "mlops.model_sha256"  # the evaluated model's content hash, tagged at registration

Outcome = tuple[ReleaseStatus, dict[str, Any]] | None
Step = Callable[[Release, Deps], Outcome]

log = logging.getLogger(__name__)
# Statuses that a release leaves by itself within MLOPS_RELEASE_STEP_TIMEOUT_SECONDS, or it is stopped (an
# approval and a canary have deadlines of their own).
DEADLINED = frozenset(
    {
        ReleaseStatus.DEPLOYING,
        ReleaseStatus.SMOKE_TESTING,
        ReleaseStatus.APPROVED,
        ReleaseStatus.PROMOTING,
        ReleaseStatus.ROLLING_BACK,
    }
)


def gate(release: Release, deps: Deps, actor: str) -> tuple[bool, Outcome]:
    """Before a step: (True, None) to run it, else (False, the outcome instead; None to wait). A release that
    lost its endpoint to a newer release is superseded, its deployment removed."""
    state, reason = standing(release, deps, actor)
    if state in (OWNER, WAIT) or release.status is ReleaseStatus.ROLLING_BACK:
        return (
            state != WAIT,
            None,
        )  # a rollback finishes by itself: its step knows whether it owns the endpoint
    if not remove(release.deployment, deps):
        return False, None  # it still takes traffic: the owner, or the next reconcile tick, takes that away
    return False, (ReleaseStatus.SUPERSEDED, {"reason": reason})


def run_step(step: Step, release: Release, deps: Deps, proceed: bool) -> Outcome:
    """The step's outcome; past its status's deadline, a step that cannot move on now (waits, or fails) gives
    way to the rollback (a rollback past it is stuck), with the reason."""
    late = _overdue(release, deps)
    if late is None:
        return step(release, deps) if proceed else None
    problem = None
    if proceed:
        try:
            outcome = step(release, deps)
        except Exception as error:  # past the deadline a failing step is recorded, not retried for ever
            log.warning("release step failed past its deadline", extra={"release": release.id}, exc_info=True)
            outcome, problem = None, f"{type(error).__name__}: {error}"[:300]
        if outcome is not None:
            return outcome
    status, detail = late
    return status, {**detail, **({"last_error": problem} if problem else {})}


def _overdue(release: Release, deps: Deps) -> Outcome:
    settings = deps.settings.release
    limit = settings.step_timeout_seconds
    if release.status is ReleaseStatus.SHADOW:  # its bake ends it; this is for a step that cannot run at all
        limit += max(settings.shadow_seconds, settings.shadow_max_seconds)
    waited = _seconds_since(release.entered_at, deps)
    if (release.status not in DEADLINED and release.status is not ReleaseStatus.SHADOW) or waited <= limit:
        return None
    if release.status is ReleaseStatus.ROLLING_BACK:
        reason = (
            f"not rolled back within {limit:.0f} s (MLOPS_RELEASE_STEP_TIMEOUT_SECONDS): deployment "
            f"{release.deployment} may still exist and take traffic; see the endpoint"
        )
        return ReleaseStatus.STUCK, {"reason": reason}
    reason = (
        f"{release.status} for {waited:.0f} s, longer than MLOPS_RELEASE_STEP_TIMEOUT_SECONDS ({limit:.0f} s)"
    )
    return ReleaseStatus.ROLLING_BACK, {"reason": reason}


def integrity(model: ModelVersion, deps: Deps) -> tuple[str, str | None]:
    """Whether the registered files are the ones the job evaluated: ("verified" | "not recorded" | "not read",
    None) or ("mismatch", the reason to stop). "not recorded": registered without a hash (by hand, or before
    hashes were kept); "not read": the backend cannot read the files."""
    expected = model.tags.get(MODEL_SHA256_TAG)
    if not expected:
        return "not recorded", None
    actual = deps.registry.artifact_sha256(model)
    if actual is None:
        return "not read", None
    if actual != expected:
        return "mismatch", (
            f"the registered model's files are not the ones evaluated (sha256 {actual[:16]}, "
            f"evaluated {expected[:16]})"
        )
    return "verified", None


def _deploying(release: Release, deps: Deps) -> Outcome:
    deployment = deps.endpoints.deployment(release.deployment)
    model = deps.registry.get(release.model, release.version)
    if model is None:
        return ReleaseStatus.ROLLING_BACK, {"reason": "the model is no longer in the registry"}
    checked, problem = integrity(model, deps)
    if problem is not None:
        return ReleaseStatus.ROLLING_BACK, {"reason": problem}
    if deployment is None:
        # Its creation failed before it began, or the files did not check out: begin it now.
        deps.endpoints.begin_deployment(release.deployment, model)
        return None
    if deployment.state == "Succeeded":
        return ReleaseStatus.SMOKE_TESTING, {"integrity": checked}
    if deployment.state == "Failed":
        return ReleaseStatus.ROLLING_BACK, {"reason": f"deployment failed: {deployment.detail[:500]}"}
    return None


def _smoke_testing(release: Release, deps: Deps) -> Outcome:
    settings = deps.settings
    columns, rows, expected = smoke_sample(release, deps)
    answers: list[Any] = []
    errors: list[str] = []
    latencies: list[float] = []
    warmup = settings.release.smoke_warmup_requests
    warmup_errors = warm_up(release, columns, rows, warmup, deps)
    for row in rows:  # one request per row: errors and latency are per request, as clients see them
        payload = {"input_data": {"columns": columns, "index": [0], "data": [row]}}
        started = time.perf_counter()
        try:
            answer = deps.endpoints.invoke(payload, deployment=release.deployment)
        except Exception as error:  # any failure of the scoring service fails the test, with its message
            errors.append(f"{type(error).__name__}: {error}"[:300])
            continue
        finally:
            latencies.append((time.perf_counter() - started) * 1000)
        answers.append(answer[0] if isinstance(answer, list) and len(answer) == 1 else answer)
    verdict = verdicts.smoke(
        answers,
        errors,
        expected,
        latencies,
        settings.release.smoke_tolerance,
        settings.release.latency_slo_ms,
        warmup,
    )
    evidence = {**verdict.evidence, **({"warmup_errors": warmup_errors} if warmup_errors else {})}
    if not verdict.passed:
        return ReleaseStatus.ROLLING_BACK, {
            "reason": f"smoke test: {'; '.join(verdict.reasons)}",
            "smoke_test": evidence,
        }
    if settings.release.require_approval:
        approve = f"/api/releases/{release.id}/approve"
        publish(deps, APPROVAL_REQUESTED, release, f"{release.id}:approval", approve=approve)
        return ReleaseStatus.AWAITING_APPROVAL, {"smoke_test": evidence}
    return ReleaseStatus.APPROVED, {"smoke_test": evidence}


def _awaiting_approval(release: Release, deps: Deps) -> Outcome:
    waited = (deps.clock() - datetime.fromisoformat(release.entered_at)).total_seconds()
    if waited > deps.settings.release.approval_timeout_seconds:
        remove(release.deployment, deps)
        reason = f"not approved within {deps.settings.release.approval_timeout_seconds:.0f} s"
        return ReleaseStatus.EXPIRED, {"reason": reason}
    return None


def _approved(release: Release, deps: Deps) -> Outcome:
    production = releases.production(deps.state, release.model)
    if release_shadow.wanted(production, deps):
        return release_shadow.begin(release, deps)
    return _after_shadow(release, production, deps, {})


def _shadow(release: Release, deps: Deps) -> Outcome:
    production = releases.production(deps.state, release.model)
    return release_shadow.watch(release, production, deps, _after_shadow)


def _after_shadow(
    release: Release, production: Production | None, deps: Deps, evidence: dict[str, Any]
) -> Outcome:
    """The canary (its live share replaces any mirroring, as on Azure), or straight to promotion."""
    if production is None or deps.settings.release.canary_seconds <= 0:
        return ReleaseStatus.PROMOTING, evidence
    share = deps.settings.release.canary_percent
    with owning(release, deps) as owner:
        if not owner:
            return None  # busy, or superseded (the next step's gate says so)
        deps.endpoints.set_traffic({production.deployment: 100 - share, release.deployment: share})
    return ReleaseStatus.CANARY, {
        "percent": share,
        "bake_seconds": deps.settings.release.canary_seconds,
        **evidence,
    }


def _canary(release: Release, deps: Deps) -> Outcome:
    """Watch the canary; promote it once baked and it has served enough live requests, bake on until the
    deadline if it has not (or its metrics cannot be read), then roll it back saying what came."""
    settings = deps.settings.release
    baked = _seconds_since(release.entered_at, deps)
    deployment = deps.endpoints.deployment(release.deployment)
    healthy = deployment is not None and deployment.state == "Succeeded"
    stats, problem = release_shadow.deployment_stats(release.deployment, baked, deps)
    stats = release_shadow.without_probes(stats, release)
    verdict = verdicts.canary(stats or {}, healthy, settings.canary_max_error_rate, settings.latency_slo_ms)
    if not verdict.passed:
        return ReleaseStatus.ROLLING_BACK, {
            "reason": f"canary: {'; '.join(verdict.reasons)}",
            "evidence": verdict.evidence,
        }
    if baked < settings.canary_seconds:
        return None
    if verdicts.enough_evidence(stats, settings.canary_min_requests):
        return ReleaseStatus.PROMOTING, {"canary": stats, "min_requests": settings.canary_min_requests}
    if baked < max(settings.canary_max_seconds, settings.canary_seconds):
        return None  # the bake goes on until enough requests have come, up to the deadline
    if stats is None:
        reason = f"canary: its metrics could not be read in {baked:.0f} s: {problem}"
    else:
        reason = (
            f"canary: {stats.get('requests') or 0} live requests in {baked:.0f} s, fewer than the "
            f"{settings.canary_min_requests} required (MLOPS_CANARY_MIN_REQUESTS): no evidence to promote on"
        )
    return ReleaseStatus.ROLLING_BACK, {"reason": reason, "evidence": {"stats": stats, "healthy": healthy}}


def _promoting(release: Release, deps: Deps) -> Outcome:
    model = deps.registry.get(release.model, release.version)
    problem = integrity(model, deps)[1] if model is not None else "the model is no longer in the registry"
    if problem is not None:
        return ReleaseStatus.ROLLING_BACK, {"reason": problem}
    with owning(release, deps) as owner:
        if not owner:
            return None  # busy, or superseded (the next step's gate says so)
        current = releases.production(deps.state, release.model)
        if current and current.release != release.id and not verdicts.newer(release.version, current.version):
            reason = f"version {release.version} is not newer than production version {current.version}"
            return ReleaseStatus.ROLLING_BACK, {"reason": reason}
        previous = current
        if previous and previous.release == release.id:  # a retry after this step half-ran
            previous = previous.previous
        serve_only(release.deployment, deps)
        pointer = Production(
            model=release.model,
            version=release.version,
            deployment=release.deployment,
            release=release.id,
            since=deps.clock().isoformat(),
            previous=previous,
        )
        releases.set_production(deps.state, pointer)
        _prune(release.deployment, previous, deps)
        for other in releases.with_status(deps.state, release.model, ReleaseStatus.PRODUCTION):
            if other.id != release.id:  # one production release per model, whatever ran before
                releases.set_status(deps.state, other.id, ReleaseStatus.SUPERSEDED)
    publish(
        deps,
        MODEL_PROMOTED,
        release,
        f"{release.id}:promoted",
        previous=previous.model_id if previous else None,
    )
    return ReleaseStatus.PRODUCTION, {"previous": previous.version if previous else None}


def _rolling_back(release: Release, deps: Deps) -> Outcome:
    """Give production back its traffic (only the endpoint's owner touches traffic) and remove the deployment."""
    production = None
    with owning(release, deps) as owner:
        if owner is None:
            return None
        if owner:
            production = releases.production(deps.state, release.model)
            if production and production.release == release.id:  # a promotion half-ran before this
                production = _restore_previous(production, deps)
            if production:
                serve_only(production.deployment, deps)
            else:
                _drain(release.deployment, deps)
        if not remove(release.deployment, deps):
            return None  # it still takes traffic, and only the owner may change that
    serving = production.deployment if production else None
    publish(
        deps,
        RELEASE_ROLLED_BACK,
        release,
        f"{release.id}:rolled_back",
        reason=release.last_reason(),
        restored=production.model_id if serving and production else None,
    )
    return ReleaseStatus.ROLLED_BACK, {"restored": serving}


STEPS: dict[ReleaseStatus, Step] = {
    ReleaseStatus.DEPLOYING: _deploying,
    ReleaseStatus.SMOKE_TESTING: _smoke_testing,
    ReleaseStatus.AWAITING_APPROVAL: _awaiting_approval,
    ReleaseStatus.APPROVED: _approved,
    ReleaseStatus.SHADOW: _shadow,
    ReleaseStatus.CANARY: _canary,
    ReleaseStatus.PROMOTING: _promoting,
    ReleaseStatus.ROLLING_BACK: _rolling_back,
}


# --- shared by the steps and the manual decisions ----------------------------------------------------------------


def transition(
    held: Held[Release], status: ReleaseStatus, deps: Deps, actor: str, detail: dict[str, Any]
) -> None:
    """Change status and queue its audit entry in one write, then record it (once, by key)."""
    release = held.record
    history = (*release.history, ReleaseStep(status, deps.clock().isoformat(), detail))
    action = {
        ReleaseStatus.PRODUCTION: "release.promoted",
        ReleaseStatus.ROLLED_BACK: "release.rolled_back",
    }.get(status, f"release.{status}")
    entry = decision(
        actor,
        action,
        release.id,
        f"releases/{release.id}:{status}:{len(history)}",
        model=f"{release.model}:{release.version}",
        deployment=release.deployment,
        **detail,
    )
    held.change(dataclasses.replace(release, status=status, history=history), entry)
    held.flush()


def serve_only(deployment: str, deps: Deps) -> None:
    """All live traffic to `deployment`, none to any other."""
    deps.endpoints.set_traffic(
        {name: (100 if name == deployment else 0) for name in deps.endpoints.traffic()} | {deployment: 100}
    )


def remove(deployment: str, deps: Deps) -> bool:
    """Delete `deployment` unless it takes traffic (Azure refuses, and only the endpoint's owner moves traffic);
    returns whether it is gone."""
    if deps.endpoints.deployment(deployment) is None:
        return True
    if deps.endpoints.traffic().get(deployment):
        return False
    if deployment in deps.endpoints.mirror_traffic():
        # A shadow: its copies end first, and Azure takes a while to update the endpoint; deleted at a later look.
        deps.endpoints.set_mirror_traffic({})
        return False
    deps.endpoints.delete_deployment(deployment)
    return True


def publish(deps: Deps, event_type: str, release: Release, event_id: str, **data: Any) -> None:
    """Tell other systems; the id is the release step's, so a retried step repeats the same event."""
    payload = {
        "releaseId": release.id,
        "modelName": release.model,
        "modelVersion": release.version,
        "deployment": release.deployment,
        **data,
    }
    deps.publisher.publish([OutgoingEvent(event_type, f"releases/{release.id}", payload, id=event_id)])


def _restore_previous(production: Production, deps: Deps) -> Production | None:
    """The pointer back to the model before `production` (or none), and that release back in production."""
    previous = production.previous
    if previous is None:
        deps.state.delete(keys.production(production.model))
        return None
    releases.set_production(deps.state, dataclasses.replace(previous, since=deps.clock().isoformat()))
    releases.set_status(deps.state, previous.release, ReleaseStatus.PRODUCTION)
    return previous


def _seconds_since(moment: str, deps: Deps) -> float:
    return (deps.clock() - datetime.fromisoformat(moment)).total_seconds()


def _drain(deployment: str, deps: Deps) -> None:
    traffic = deps.endpoints.traffic()
    if traffic.get(deployment):
        deps.endpoints.set_traffic({name: 0 for name in traffic})


def _prune(serving: str, previous: Production | None, deps: Deps) -> None:
    """Keep production, the rollback target and releases still on their way; remove the rest."""
    keep = {serving}
    if previous and deps.settings.release.keep_deployments > 1:
        keep.add(previous.deployment)
    keep |= {release.deployment for release in releases.active(deps.state, listed=True)}
    for deployment in deps.endpoints.deployments():
        if deployment.name not in keep:
            deps.endpoints.delete_deployment(deployment.name)
