"""What must hold after any mix of duplicates, reordering, lost events, crashes and concurrent workers.

Every landed file is in exactly one place: quarantine (with its reason), a dataset version, or retracted (its
name overwritten or deleted in landing: out of every version built since, with why and an audit entry).

`check(deps)` returns the violations (empty when all hold). With `settled=True` (after the system has had
time to finish: redeliveries and reconcile ticks), work in progress counts as a violation too.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from shared.deps import Deps
from shared.state import catalog as catalog_store
from shared.state import keys
from shared.state.datasets import load_manifest
from shared.state.records import FileStatus, LandedFile, Release, ReleaseStatus, Run, RunStatus


def check(deps: Deps, settled: bool = True) -> list[str]:
    problems: list[str] = []
    files = [s.record for s in deps.state.list(keys.FILES)]
    runs = [s.record for s in deps.state.list(keys.RUNS)]
    releases = [s.record for s in deps.state.list(keys.RELEASES)]
    entries = deps.audit.entries()
    problems += [f"audit: {p}" for p in deps.audit.verify()]
    problems += _files(deps, files, settled)
    problems += _runs(runs, entries, settled)
    problems += _retracted_stay_out(deps, runs)
    problems += _registry(deps, runs)
    problems += _one_version_per_run(deps, runs, releases)
    problems += _releases(releases, entries, settled)
    problems += _serving(deps, releases)
    problems += _audit_complete(files, runs, releases, entries)
    if settled:
        leased = (keys.FILES, keys.RUNS, keys.RELEASES)
        leftovers = [s.key.path for prefix in leased for s in deps.state.list(prefix) if s.outbox]
        problems += [f"{key}: decisions not yet in the audit log" for key in leftovers]
    return problems


def _files(deps: Deps, files: list[LandedFile], settled: bool) -> list[str]:
    problems = []
    containers = deps.settings.containers
    catalog = catalog_store.entries(deps.state)
    landing = {info.name: info.etag for info in deps.blobs.list(containers.landing)}
    manifests: dict[str, set[str]] = {}
    for record in files:
        name = record.blob
        if record.status is FileStatus.QUARANTINED:
            reason = deps.blobs.read(containers.quarantine, f"{name}.reason.json")
            if deps.blobs.info(containers.quarantine, name) is None or reason is None:
                problems.append(f"{name}: quarantined without the file and its reason in quarantine")
            elif not json.loads(reason.data).get("reasons"):
                problems.append(f"{name}: quarantine reason file gives no reason")
            landed = deps.blobs.info(containers.landing, name)
            if landed is not None and landed.etag == record.etag:
                problems.append(f"{name}: quarantined but still in landing")
        elif record.status is FileStatus.ACCEPTED:
            entry = catalog.get(record.sha256)
            version = entry.dataset_version if entry else None
            if entry is None:
                problems.append(f"{name}: accepted but not in the catalog")
                continue
            current = landing.get(name) == record.etag
            if entry.retracted is not None:
                # Its third place: out of future versions, with why (and in the versions built before).
                if current:
                    problems.append(f"{name}: retracted but still in landing")
                if not entry.retracted.why:
                    problems.append(f"{name}: retracted without saying why")
            elif settled and not catalog_store.held(entry, landing):
                problems.append(f"{name}: overwritten or deleted in landing but not retracted")
            if version:
                if version not in manifests:
                    manifest = load_manifest(deps.blobs, containers.datasets, version) or {"files": []}
                    manifests[version] = {f["sha256"] for f in manifest["files"]}
                if record.sha256 not in manifests[version]:
                    problems.append(f"{name}: its dataset version {version} does not list it")
            elif settled and entry.retracted is None:
                problems.append(f"{name}: accepted but in no dataset version")
        elif settled:
            problems.append(f"{name}: left {record.status}")
    if settled:
        for info in deps.blobs.list(containers.landing):
            if not deps.state.exists(keys.landed_file(info.name, info.etag)):
                problems.append(f"{info.name}: landed but never validated")
    return problems


def _runs(runs: list[Run], entries: list[Any], settled: bool) -> list[str]:
    problems = []
    versions = Counter(run.dataset_version for run in runs if run.status is not RunStatus.FAILED)
    problems += [f"dataset {v} trained {n} times" for v, n in versions.items() if n > 1]  # retries fail first
    started = Counter(e.subject for e in entries if e.action == "training.started")
    problems += [f"{run_id}: training.started recorded {n} times" for run_id, n in started.items() if n > 1]
    if settled:
        unfinished = (RunStatus.STARTING, RunStatus.COMPLETING)
        problems += [f"{r.run_id}: left {r.status}" for r in runs if r.status in unfinished]
    return problems


def _retracted_stay_out(deps: Deps, runs: list[Run]) -> list[str]:
    """No dataset version started after a content's retraction holds it, and each retraction is audited."""
    retracted = {e.sha256: e for e in catalog_store.entries(deps.state).values() if e.retracted is not None}
    problems = []
    for run in runs:
        for file in run.manifest.get("files", []):
            entry = retracted.get(file["sha256"])
            if entry is not None and run.submitted_at > entry.retracted.at:
                problems.append(f"{run.run_id}: trains on {entry.name}, retracted before it started")
    audited = {e.detail.get("sha256") for e in deps.audit.entries() if e.action == "file.retracted"}
    problems += [
        f"{e.name}: retracted without an audit entry" for sha, e in retracted.items() if sha not in audited
    ]
    return problems


def _registry(deps: Deps, runs: list[Run]) -> list[str]:
    problems = []
    for run in runs:
        if run.status is RunStatus.REGISTERED:
            model = deps.registry.find_by_run(deps.settings.model_name, run.run_id)
            if model is None or model.version != run.model_version:
                problems.append(f"{run.run_id}: registered, but the registry disagrees")
    return problems


def _one_version_per_run(deps: Deps, runs: list[Run], releases: list[Release]) -> list[str]:
    """At most one model version per run, and a release only for the version its run names."""
    name = deps.settings.model_name
    problems = []
    named = {}
    for run in runs:
        versions = [m.version for m in deps.registry.run_versions(name, run.run_id)]
        if len(versions) > 1:
            problems.append(
                f"{run.run_id}: registered {len(versions)} times (versions {', '.join(versions)})"
            )
        named[run.run_id] = run.model_version
    for release in releases:
        model = deps.registry.get(release.model, release.version)
        run_id = model.tags.get("mlops.run_id") if model else None
        if run_id in named and named[run_id] != release.version:
            problems.append(f"{release.id}: released, but run {run_id} names version {named[run_id]}")
    return problems


def _releases(releases: list[Release], entries: list[Any], settled: bool) -> list[str]:
    problems = []
    per_version = Counter(r.version for r in releases)
    problems += [f"model version {v} released {n} times" for v, n in per_version.items() if n > 1]
    promoted = Counter(e.subject for e in entries if e.action == "release.promoted")
    problems += [f"{rid}: promoted {n} times" for rid, n in promoted.items() if n > 1]
    serving = Counter(r.model for r in releases if r.status is ReleaseStatus.PRODUCTION)
    problems += [f"{model}: {n} releases in production" for model, n in serving.items() if n > 1]
    return problems


def _serving(deps: Deps, releases: list[Release]) -> list[str]:
    """Traffic is what the production record says once no release is on its way, and every canary that was
    promoted served at least the minimum of live requests first."""
    problems = []
    minimum = deps.settings.release.canary_min_requests
    for release in releases:
        seen = {step.status for step in release.history}
        if ReleaseStatus.PRODUCTION in seen and ReleaseStatus.CANARY in seen:
            evidence = next(
                (s.detail.get("canary") for s in release.history if s.status is ReleaseStatus.PROMOTING), None
            )
            requests = evidence.get("requests") if isinstance(evidence, dict) else None
            if not isinstance(requests, int) or requests < minimum:
                problems.append(
                    f"{release.id}: promoted after a canary with {requests} requests (< {minimum})"
                )
    if not any(r.status.active for r in releases):
        stored = deps.state.get(keys.production(deps.settings.model_name))
        expected = {stored.record.deployment: 100} if stored else {}
        live = {name: share for name, share in deps.endpoints.traffic().items() if share}
        if live != expected:
            problems.append(f"traffic {live} is not what the production record says ({expected})")
    return problems


def _audit_complete(
    files: list[LandedFile], runs: list[Run], releases: list[Release], entries: list[Any]
) -> list[str]:
    recorded = {(e.action, e.subject) for e in entries}
    expected = {
        ("file.accepted" if f.status is FileStatus.ACCEPTED else "file.quarantined", f.blob)
        for f in files
        if f.status.final
    }
    expected |= {("training.started", r.run_id) for r in runs if r.status is not RunStatus.STARTING}
    expected |= {("challenger.rejected", r.run_id) for r in runs if r.status is RunStatus.REJECTED}
    promoted = [r for r in releases if any(s.status is ReleaseStatus.PRODUCTION for s in r.history)]
    expected |= {("release.promoted", r.id) for r in promoted}
    problems = [f"audit log lacks {action} for {subject}" for action, subject in sorted(expected - recorded)]
    counted = Counter(e.key for e in entries if e.key)
    problems += [f"audit entry {key} recorded {n} times" for key, n in counted.items() if n > 1]
    return problems
