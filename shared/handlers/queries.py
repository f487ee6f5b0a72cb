"""Answers to "what is in production, and why is this model here?" (read-only)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from shared.deps import Deps
from shared.domain import history as timeline
from shared.domain.decisions import segments
from shared.handlers.release import release_id
from shared.handlers.stuck import stuck
from shared.handlers.training import runs_in_flight
from shared.state import keys, releases, requests
from shared.state.datasets import load_manifest
from shared.state.store import to_json

# What `release_id` makes of a model name and version: anything else names no release, and is not looked up
# (a state key is a blob name: `..` or `/` in it would name some other record).
RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def status(deps: Deps) -> dict[str, Any]:
    production = releases.production(deps.state, deps.settings.model_name)
    request = requests.open_request(deps.state)
    on_their_way = releases.active(deps.state)
    return {
        "model": deps.settings.model_name,
        "production": to_json(production),
        "traffic": deps.endpoints.traffic(),
        "training_request": to_json(request),
        "runs_in_flight": [run.run_id for run in runs_in_flight(deps)],
        "active_releases": [release.id for release in on_their_way],
        "releases": [  # the same releases, with where each is and since when
            {"id": r.id, "version": r.version, "status": str(r.status), "since": r.history[-1].at}
            for r in on_their_way
            if r.history
        ],
        "stuck": stuck(deps),
        "recent_decisions": [
            {"time": e.time, "actor": e.actor, "action": e.action, "subject": e.subject}
            for e in deps.audit.recent(10)
        ],
    }


def lineage(name: str, version: str, deps: Deps) -> dict[str, Any] | None:
    """The chain from data files to production for one model version, each step with time and decision."""
    model = deps.registry.get(name, version)
    if model is None:
        return None
    tags = model.tags
    stored_run = deps.state.get(keys.run(tags.get("mlops.run_id", "")))
    run = stored_run.record if stored_run else None
    evaluation = run.evaluation if run is not None and isinstance(run.evaluation, dict) else {}
    dataset_version = tags.get("mlops.dataset_version", "")
    manifest = load_manifest(deps.blobs, deps.settings.containers.datasets, dataset_version) or {}
    rid = release_id(name, version)
    release = deps.state.get(keys.release(rid))
    subjects = {model.id, rid}
    if run is not None:
        subjects |= {run.run_id, *run.request.events}
    subjects |= {f["name"] for f in manifest.get("files", [])}
    subjects |= {f["name"] for f in manifest.get("retracted", [])}
    steps = [
        {"time": e.time, "actor": e.actor, "action": e.action, "subject": e.subject, "detail": e.detail}
        for e in deps.audit.entries()
        if e.subject in subjects
    ]
    return {
        "model": model.id,
        "run_id": tags.get("mlops.run_id"),
        "dataset_version": dataset_version,
        "files": manifest.get("files", []),
        "retracted": manifest.get("retracted", []),
        "causes": tags.get("mlops.causes", "").split(",") if tags.get("mlops.causes") else [],
        "trigger_events": json.loads(tags.get("mlops.trigger_events", "[]")),
        "metrics": json.loads(tags.get("mlops.metrics", "null")),
        "champion": tags.get("mlops.champion") or None,
        "champion_metrics": json.loads(tags.get("mlops.champion_metrics", "null")),
        "gates": json.loads(tags.get("mlops.gates", "[]")),
        "primary_metric": tags.get("mlops.primary_metric") or None,
        "comparison": json.loads(tags.get("mlops.comparison") or "null"),
        "code_version": tags.get("mlops.code_version") or None,
        "code": json.loads(tags.get("mlops.code") or "null"),
        "model_sha256": tags.get("mlops.model_sha256") or None,
        "slices": _slices(evaluation, deps),
        "fairness": evaluation.get("fairness"),
        "release": to_json(release.record) if release else None,
        "steps": steps,
    }


def _slices(evaluation: dict[str, Any], deps: Deps) -> list[dict[str, Any]] | None:
    """The evaluation's slices, each with the gate's verdict: "worse", "ok", or why it was not judged."""
    found = evaluation.get("slices")
    if not isinstance(found, list):
        return None
    greater = evaluation.get("greater_is_better") is not False
    tolerance = deps.settings.slices.tolerance
    return [
        {**entry, "verdict": segments.judged(entry, tolerance, greater)}
        for entry in found
        if isinstance(entry, dict)
    ]


def release_review(rid: str, deps: Deps) -> dict[str, Any] | None:
    """One release as an approver reviews it: the record and its model's lineage; None if there is no such
    release."""
    if not RELEASE_ID.fullmatch(rid) or ".." in rid:
        return None
    stored = deps.state.get(keys.release(rid))
    if stored is None:
        return None
    record = stored.record
    return {"release": to_json(record), "lineage": lineage(record.model, record.version, deps)}


def history(deps: Deps, at: datetime | None = None, model: str | None = None) -> dict[str, Any]:
    """What served production when, from the audit log's release decisions; with `at` (aware), what served
    then (`serving` is None when nothing did)."""
    name = model or deps.settings.model_name
    found = timeline.derive(deps.audit.entries(), name)
    answer: dict[str, Any] = {
        "model": name,
        "periods": [period.to_json() for period in found.periods],
        "ignored_entries": found.ignored,
    }
    if at is not None:
        serving = found.at(at)
        answer["at"] = at.astimezone(UTC).isoformat()
        answer["serving"] = serving.to_json() if serving else None
    return answer
