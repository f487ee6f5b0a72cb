"""The steps of a release, one per status that can move on by itself, and the traffic moves they share.

A step looks at the release and the world and answers the next status with its evidence, or None to wait
(for a deployment, an approver, the bake period). `advance` in `shared.handlers.release` runs them.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.deps import Deps
from shared.domain.decisions import release as verdicts
from shared.ports import ModelVersion, OutgoingEvent
from shared.state import releases
from shared.state.datasets import load_manifest
from shared.state.lease import Held, decision
from shared.state.records import Production, Release, ReleaseStatus, ReleaseStep

MODEL_PROMOTED = "MLOps.ModelPromoted"
RELEASE_ROLLED_BACK = "MLOps.ReleaseRolledBack"
APPROVAL_REQUESTED = "MLOps.ApprovalRequested"

MODEL_SHA256_TAG = "mlops.model_sha256"  # the evaluated model's content hash, tagged at registration

Outcome = tuple[ReleaseStatus, dict[str, Any]] | None
Step = Callable[[Release, Deps], Outcome]


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
    columns, rows, expected = _smoke_sample(release, deps)
    answers: list[Any] = []
    errors: list[str] = []
    latencies: list[float] = []
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
    )
    if not verdict.passed:
        return ReleaseStatus.ROLLING_BACK, {
            "reason": f"smoke test: {'; '.join(verdict.reasons)}",
            "smoke_test": verdict.evidence,
        }
    if settings.release.require_approval:
        approve = f"/api/releases/{release.id}/approve"
        publish(deps, APPROVAL_REQUESTED, release, f"{release.id}:approval", approve=approve)
        return ReleaseStatus.AWAITING_APPROVAL, {"smoke_test": verdict.evidence}
    return ReleaseStatus.APPROVED, {"smoke_test": verdict.evidence}


def _awaiting_approval(release: Release, deps: Deps) -> Outcome:
    waited = (deps.clock() - datetime.fromisoformat(release.entered_at)).total_seconds()
    if waited > deps.settings.release.approval_timeout_seconds:
        remove(release.deployment, deps)
        reason = f"not approved within {deps.settings.release.approval_timeout_seconds:.0f} s"
        return ReleaseStatus.EXPIRED, {"reason": reason}
    return None


def _approved(release: Release, deps: Deps) -> Outcome:
    production = releases.production(deps.state, release.model)
    if production is None or deps.settings.release.canary_seconds <= 0:
        return ReleaseStatus.PROMOTING, {}
    share = deps.settings.release.canary_percent
    deps.endpoints.set_traffic({production.deployment: 100 - share, release.deployment: share})
    return ReleaseStatus.CANARY, {"percent": share, "bake_seconds": deps.settings.release.canary_seconds}


def _canary(release: Release, deps: Deps) -> Outcome:
    settings = deps.settings
    baked = (deps.clock() - datetime.fromisoformat(release.entered_at)).total_seconds()
    deployment = deps.endpoints.deployment(release.deployment)
    stats = deps.endpoints.stats(release.deployment, since_seconds=max(baked, 1.0))
    verdict = verdicts.canary(
        stats,
        deployment is not None and deployment.state == "Succeeded",
        settings.release.canary_max_error_rate,
        settings.release.latency_slo_ms,
    )
    if not verdict.passed:
        return ReleaseStatus.ROLLING_BACK, {
            "reason": f"canary: {'; '.join(verdict.reasons)}",
            "evidence": verdict.evidence,
        }
    if baked >= settings.release.canary_seconds:
        return ReleaseStatus.PROMOTING, {"canary": stats}
    return None


def _promoting(release: Release, deps: Deps) -> Outcome:
    model = deps.registry.get(release.model, release.version)
    problem = integrity(model, deps)[1] if model is not None else "the model is no longer in the registry"
    if problem is not None:
        return ReleaseStatus.ROLLING_BACK, {"reason": problem}
    current = releases.production(deps.state, release.model)
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
    if previous:
        releases.set_status(deps.state, previous.release, ReleaseStatus.SUPERSEDED)
    publish(
        deps,
        MODEL_PROMOTED,
        release,
        f"{release.id}:promoted",
        previous=previous.model_id if previous else None,
    )
    return ReleaseStatus.PRODUCTION, {"previous": previous.version if previous else None}


def _rolling_back(release: Release, deps: Deps) -> Outcome:
    production = releases.production(deps.state, release.model)
    serving = production.deployment if production and production.release != release.id else None
    if serving:
        serve_only(serving, deps)
    else:
        _drain(release.deployment, deps)
    remove(release.deployment, deps)
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


def remove(deployment: str, deps: Deps) -> None:
    if deps.endpoints.deployment(deployment) is not None:
        _drain(deployment, deps)
        deps.endpoints.delete_deployment(deployment)


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


def _drain(deployment: str, deps: Deps) -> None:
    traffic = deps.endpoints.traffic()
    if traffic.get(deployment):
        deps.endpoints.set_traffic({name: 0 for name in traffic})


def _prune(serving: str, previous: Production | None, deps: Deps) -> None:
    """Keep production, the rollback target and releases still on their way; remove the rest."""
    keep = {serving}
    if previous and deps.settings.release.keep_deployments > 1:
        keep.add(previous.deployment)
    keep |= {release.deployment for release in releases.active(deps.state)}
    for deployment in deps.endpoints.deployments():
        if deployment.name not in keep:
            deps.endpoints.delete_deployment(deployment.name)


def _smoke_sample(release: Release, deps: Deps) -> tuple[list[str], list[list[Any]], list[Any] | None]:
    """Holdout rows and the model's offline predictions, from its training run; else rows of its data."""
    model = deps.registry.get(release.model, release.version)
    run_id = model.tags.get("mlops.run_id") if model else None
    if run_id:
        try:
            smoke = deps.jobs.results(run_id).evaluation.get("smoke")
        except LookupError:
            smoke = None
        if smoke and smoke.get("data"):
            rows = smoke["data"][: deps.settings.release.smoke_test_rows]
            return smoke["columns"], rows, smoke["predictions"][: len(rows)]
    return (*_dataset_rows(model, deps), None)


def _dataset_rows(model: ModelVersion | None, deps: Deps) -> tuple[list[str], list[list[Any]]]:
    import pandas as pd

    if model is None:
        raise LookupError("the release's model is not in the registry")
    manifest = load_manifest(
        deps.blobs, deps.settings.containers.datasets, model.tags["mlops.dataset_version"]
    )
    first = manifest["files"][0]
    blob = deps.blobs.read(deps.settings.containers.datasets, first["path"])
    reader = pd.read_parquet if first["path"].endswith(".parquet") else pd.read_csv
    frame = reader(io.BytesIO(blob.data))
    features = frame.drop(columns=[deps.settings.training.target]).head(deps.settings.release.smoke_test_rows)
    return list(features.columns), features.astype(object).where(features.notna(), None).to_numpy().tolist()
