"""What must hold after any mix of duplicates, reordering, lost events, crashes and concurrent workers.

`check(deps)` returns the violations (empty when all hold). With `settled=True` (after the system has had
time to finish: redeliveries and reconcile ticks), work in progress counts as a violation too.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from shared.deps import Deps
from shared.handlers.data import record_key
from shared.handlers.training import PRODUCTION_KEY
from shared.state.datasets import load_manifest
from shared.state.requests import catalog as catalog_of


def check(deps: Deps, settled: bool = True) -> list[str]:
    problems: list[str] = []
    files = [d.body for d in deps.state.list("files/")]
    runs = [d.body for d in deps.state.list("runs/")]
    releases = [d.body for d in deps.state.list("releases/") if d.key != PRODUCTION_KEY]
    entries = deps.audit.entries()
    problems += [f"audit: {p}" for p in deps.audit.verify()]
    problems += _files(deps, files, settled)
    problems += _runs(runs, entries, settled)
    problems += _registry(deps, runs)
    problems += _releases(releases, entries, settled)
    problems += _audit_complete(files, runs, releases, entries)
    if settled:
        leftovers = [d.key for d in deps.state.list("") if d.body.get("outbox")]
        problems += [f"{key}: decisions not yet in the audit log" for key in leftovers]
    return problems


def _files(deps: Deps, files: list[dict[str, Any]], settled: bool) -> list[str]:
    problems = []
    containers = deps.settings.containers
    catalog = catalog_of(deps)
    manifests: dict[str, set[str]] = {}
    for record in files:
        name = record["blob"]
        if record["status"] == "quarantined":
            reason = deps.blobs.read(containers.quarantine, f"{name}.reason.json")
            if deps.blobs.info(containers.quarantine, name) is None or reason is None:
                problems.append(f"{name}: quarantined without the file and its reason in quarantine")
            elif not json.loads(reason.data).get("reasons"):
                problems.append(f"{name}: quarantine reason file gives no reason")
            landed = deps.blobs.info(containers.landing, name)
            if landed is not None and landed.etag == record["etag"]:
                problems.append(f"{name}: quarantined but still in landing")
        elif record["status"] == "accepted":
            entry = catalog.get(record["sha256"])
            version = entry.get("dataset_version") if entry else None
            if entry is None:
                problems.append(f"{name}: accepted but not in the catalog")
            elif version:
                if version not in manifests:
                    manifest = load_manifest(deps.blobs, containers.datasets, version) or {"files": []}
                    manifests[version] = {f["sha256"] for f in manifest["files"]}
                if record["sha256"] not in manifests[version]:
                    problems.append(f"{name}: its dataset version {version} does not list it")
            elif settled:
                problems.append(f"{name}: accepted but in no dataset version")
        elif settled:
            problems.append(f"{name}: left {record['status']}")
    if settled:
        for info in deps.blobs.list(containers.landing):
            if deps.state.get(record_key(info.name, info.etag)) is None:
                problems.append(f"{info.name}: landed but never validated")
    return problems


def _runs(runs: list[dict[str, Any]], entries: list[Any], settled: bool) -> list[str]:
    problems = []
    versions = Counter(run["dataset_version"] for run in runs)
    problems += [f"dataset {v} trained {n} times" for v, n in versions.items() if n > 1]
    started = Counter(e.subject for e in entries if e.action == "training.started")
    problems += [f"{run_id}: training.started recorded {n} times" for run_id, n in started.items() if n > 1]
    if settled:
        problems += [
            f"{r['run_id']}: left {r['status']}" for r in runs if r["status"] in ("starting", "completing")
        ]
    return problems


def _registry(deps: Deps, runs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for run in runs:
        if run["status"] == "registered":
            model = deps.registry.find_by_run(deps.settings.model_name, run["run_id"])
            if model is None or model.version != run.get("model_version"):
                problems.append(f"{run['run_id']}: registered, but the registry disagrees")
    return problems


def _releases(releases: list[dict[str, Any]], entries: list[Any], settled: bool) -> list[str]:
    problems = []
    per_version = Counter(r["version"] for r in releases)
    problems += [f"model version {v} released {n} times" for v, n in per_version.items() if n > 1]
    promoted = Counter(e.subject for e in entries if e.action == "release.promoted")
    problems += [f"{rid}: promoted {n} times" for rid, n in promoted.items() if n > 1]
    return problems


def _audit_complete(
    files: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    releases: list[dict[str, Any]],
    entries: list[Any],
) -> list[str]:
    recorded = {(e.action, e.subject) for e in entries}
    expected = {
        ("file.accepted" if f["status"] == "accepted" else "file.quarantined", f["blob"])
        for f in files
        if f["status"] in ("accepted", "quarantined")
    }
    expected |= {("training.started", r["run_id"]) for r in runs if r["status"] != "starting"}
    expected |= {("challenger.rejected", r["run_id"]) for r in runs if r["status"] == "rejected"}
    expected |= {
        ("release.promoted", r["id"]) for r in releases if r["status"] in ("production", "superseded")
    }
    problems = [f"audit log lacks {action} for {subject}" for action, subject in sorted(expected - recorded)]
    keys = Counter(e.key for e in entries if e.key)
    problems += [f"audit entry {key} recorded {n} times" for key, n in keys.items() if n > 1]
    return problems
