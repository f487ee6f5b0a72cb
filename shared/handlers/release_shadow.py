"""The shadow stage: with a model in production, a new deployment first answers mirrored copies of live requests.

Nobody sees its answers. For the bake period (MLOPS_SHADOW_SECONDS) its mirrored copies' errors and latency are
read from the endpoint's metrics, and its captured answers are paired with production's on the same requests (by
correlation id, else by the input row itself) and compared. A shadow that errs, is slow or disagrees with
production more than allowed is rolled back before any client sees it; one that passes goes on to its canary.
Without enough mirrored requests by MLOPS_SHADOW_MAX_SECONDS it is rolled back: no evidence, no promotion.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.domain.decisions import shadow as judge
from shared.handlers.release_owner import owning
from shared.state import keys, releases, traffic
from shared.state.records import Production, Release, ReleaseStatus

Outcome = tuple[ReleaseStatus, dict[str, Any]] | None
Next = Callable[[Release, Production, Deps, dict[str, Any]], Outcome]

log = logging.getLogger(__name__)
ATTEMPTS = 3  # reads of a deployment's metrics per tick; a tick with none readable counts as no evidence
MAX_ROWS = 5000  # shadow rows compared per look: enough for any agreement figure, bounded reads


def shadowed(deps: Deps, deployments: Sequence[str]) -> Callable[[str, datetime], bool]:
    """Whether a captured row of a deployment was a mirrored copy: served while that deployment's release was a
    shadow. Azure's collector does not mark copies, so the quality check and late labels ask this; one read per
    deployment named."""
    periods: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for name in deployments:
        version = releases.version_of(name)
        if version is None:
            continue
        stored = deps.state.get(keys.release(releases.release_id(deps.settings.model_name, version)))
        if stored is None or stored.record.deployment != name:
            continue
        history = stored.record.history
        for index, step in enumerate(history):
            if step.status is ReleaseStatus.SHADOW:
                after = history[index + 1].at if index + 1 < len(history) else None
                end = datetime.fromisoformat(after) if after else None
                periods.setdefault(name, []).append((datetime.fromisoformat(step.at), end))

    def copy(deployment: str, at: datetime) -> bool:
        return any(start <= at and (end is None or at < end) for start, end in periods.get(deployment, ()))

    return copy


def wanted(production: Production | None, deps: Deps) -> bool:
    return production is not None and deps.settings.release.shadow_seconds > 0


def begin(release: Release, deps: Deps) -> Outcome:
    """Mirror a share of production's requests to the new deployment (only the endpoint's owner may)."""
    share = deps.settings.release.shadow_percent
    with owning(release, deps) as owner:
        if not owner:
            return None  # busy, or superseded (the next step's gate says so)
        deps.endpoints.set_mirror_traffic({release.deployment: share})
    return ReleaseStatus.SHADOW, {"percent": share, "bake_seconds": deps.settings.release.shadow_seconds}


def watch(release: Release, production: Production | None, deps: Deps, then: Next) -> Outcome:
    """Judge the shadow so far; once baked on enough requests, hand it to `then` with its evidence."""
    settings = deps.settings.release
    began = datetime.fromisoformat(release.entered_at)
    baked = (deps.clock() - began).total_seconds()
    deployment = deps.endpoints.deployment(release.deployment)
    healthy = deployment is not None and deployment.state == "Succeeded"
    stats, problem = deployment_stats(release.deployment, baked, deps)
    mirror = _mirrored(stats, release)
    agreement = _agreement_or_problem(release, production, began, deps)
    enough = settings.shadow_min_requests
    # Judged on enough evidence only: one differing answer among the first three rows says nothing yet.
    counted = int(mirror.get("requests") or 0) >= enough
    paired = int(agreement.get("pairs") or 0) >= enough
    limits = {
        "max_error_rate": settings.canary_max_error_rate,
        "slo_ms": settings.latency_slo_ms,
        "min_agreement": settings.shadow_min_agreement if paired else None,
        "max_difference": settings.shadow_max_difference if paired else None,
    }
    verdict = judge.verdict(agreement, mirror if counted else {}, healthy, limits)
    evidence = {**verdict.evidence, "mirror": mirror, "baked_seconds": round(baked, 1)}
    if not verdict.passed:
        return ReleaseStatus.ROLLING_BACK, {
            "reason": f"shadow: {'; '.join(verdict.reasons)}",
            "shadow": evidence,
        }
    if baked < settings.shadow_seconds:
        return None
    if counted and paired:
        if production is None:  # production went away while it baked: nothing to compare with any more
            return ReleaseStatus.PROMOTING, {"shadow": evidence}
        return then(release, production, deps, {"shadow": evidence})
    if baked < max(settings.shadow_max_seconds, settings.shadow_seconds):
        return None  # the bake goes on until enough requests have come, up to the deadline
    if stats is None:
        reason = f"shadow: its metrics could not be read in {baked:.0f} s: {problem}"
    else:
        reason = (
            f"shadow: {mirror.get('requests') or 0} mirrored requests and {agreement.get('pairs', 0)} rows paired "
            f"with production in {baked:.0f} s, fewer than the {enough} required (MLOPS_SHADOW_MIN_REQUESTS)"
        )
    return ReleaseStatus.ROLLING_BACK, {"reason": reason, "shadow": evidence}


def _mirrored(stats: dict[str, Any] | None, release: Release) -> dict[str, Any]:
    """The shadow's mirrored copies: counted apart where the endpoint tells them apart (locally), else all its
    requests but the smoke test's (Azure's metrics do not; a shadow serves no live traffic)."""
    if stats is None:
        return {}
    mirror = stats.get("mirror") or {}
    if mirror.get("requests"):
        return mirror
    return without_probes({k: v for k, v in stats.items() if k != "mirror"}, release) or {}


def deployment_stats(name: str, seconds: float, deps: Deps) -> tuple[dict[str, Any] | None, str | None]:
    """A deployment's statistics over the last `seconds`, read up to ATTEMPTS times; else the last error."""
    problem = None
    for _ in range(ATTEMPTS):
        try:
            return deps.endpoints.stats(name, since_seconds=max(seconds, 1.0)), None
        except Exception as error:  # any failure to read metrics is missing evidence, bounded by the deadline
            problem = f"{type(error).__name__}: {error}"[:300]
    return None, problem


def without_probes(stats: dict[str, Any] | None, release: Release) -> dict[str, Any] | None:
    """The requests a deployment answered since its stage began, without the platform's own: a smoke test sent
    less than a minute before the stage began may fall in its first metrics minute (Azure Monitor counts whole
    minutes), and is no evidence."""
    smoke = next((s for s in reversed(release.history) if "smoke_test" in s.detail), None)
    if stats is None or smoke is None:
        return stats
    began = datetime.fromisoformat(release.entered_at)
    if (began - datetime.fromisoformat(smoke.at)).total_seconds() >= 60:
        return stats
    evidence = smoke.detail["smoke_test"]
    probes = int(evidence.get("requests", 0)) + int(evidence.get("warmup", 0))
    counted = int(stats.get("requests") or 0)
    return {**stats, "requests": max(0, counted - probes), "counted": counted, "probes_excluded": probes}


def _agreement_or_problem(
    release: Release, production: Production | None, since: datetime, deps: Deps
) -> dict[str, Any]:
    """The agreement so far; captured traffic that cannot be read now is no evidence (the deadline bounds it)."""
    if production is None:
        return {"pairs": 0}
    try:
        return _agreement(release, production, since, deps)
    except Exception as error:  # storage or a foreign capture file: no evidence this tick, said in the record
        log.warning("shadow traffic could not be read", extra={"release": release.id}, exc_info=True)
        return {"pairs": 0, "problem": f"{type(error).__name__}: {error}"[:300]}


def _agreement(release: Release, production: Production, since: datetime, deps: Deps) -> dict[str, Any]:
    """The shadow's captured answers paired with production's for the same input rows since it began."""
    settings = deps.settings
    container, endpoint = settings.containers.inference, settings.endpoint_name
    column = settings.drift.prediction_column
    # Production's answer to a request can be logged just before the copy reached the shadow.
    start = since - timedelta(minutes=1)
    served = traffic.served_rows(deps.blobs, container, endpoint, [production.deployment], start)
    by_id: dict[str, Any] = {}
    by_input: dict[str, Any] = {}
    for row in served:
        value = judge.answer(row.outputs, column)
        by_id[row.row_id] = value
        by_input.setdefault(_fingerprint(row.inputs), value)
    shadow = traffic.served_rows(deps.blobs, container, endpoint, [release.deployment], since, mirrored=True)
    pairs: list[tuple[Any, Any]] = []
    unmatched = 0
    for row in shadow:
        if len(pairs) >= MAX_ROWS:
            break
        if row.row_id in by_id:
            live = by_id[row.row_id]
        elif (key := _fingerprint(row.inputs)) in by_input:
            live = by_input[key]
        else:
            unmatched += 1
            continue
        pairs.append((live, judge.answer(row.outputs, column)))
    return {**judge.compare(pairs, settings.training.task), "unmatched": unmatched}


def _fingerprint(inputs: dict[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)
