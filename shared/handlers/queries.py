"""Answers to "what is in production, and why is this model here?" (read-only)."""

from __future__ import annotations

import json
from typing import Any

from shared.deps import Deps
from shared.handlers.release import active_releases, release_id
from shared.handlers.training import PRODUCTION_KEY, runs_in_flight
from shared.state.datasets import load_manifest
from shared.state.requests import open_request


def status(deps: Deps) -> dict[str, Any]:
    production = deps.state.get(PRODUCTION_KEY)
    request = open_request(deps)
    return {
        "model": deps.settings.model_name,
        "production": production.body if production else None,
        "traffic": deps.endpoints.traffic(),
        "training_request": request,
        "runs_in_flight": [run["run_id"] for run in runs_in_flight(deps)],
        "active_releases": active_releases(deps),
        "recent_decisions": [
            {"time": e.time, "actor": e.actor, "action": e.action, "subject": e.subject}
            for e in deps.audit.entries()[-10:]
        ],
    }


def lineage(name: str, version: str, deps: Deps) -> dict[str, Any] | None:
    """The chain from data files to production for one model version, each step with time and decision."""
    model = deps.registry.get(name, version)
    if model is None:
        return None
    tags = model.tags
    run = deps.state.get(f"runs/{tags.get('mlops.run_id', '')}")
    dataset_version = tags.get("mlops.dataset_version", "")
    manifest = load_manifest(deps.blobs, deps.settings.containers.datasets, dataset_version) or {}
    rid = release_id(name, version)
    release = deps.state.get(f"releases/{rid}")
    run_body = run.body if run else {}
    subjects = {model.id, rid, run_body.get("run_id"), *run_body.get("request", {}).get("events", [])}
    subjects |= {f["name"] for f in manifest.get("files", [])}
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
        "causes": tags.get("mlops.causes", "").split(",") if tags.get("mlops.causes") else [],
        "trigger_events": json.loads(tags.get("mlops.trigger_events", "[]")),
        "metrics": json.loads(tags.get("mlops.metrics", "null")),
        "champion": tags.get("mlops.champion") or None,
        "champion_metrics": json.loads(tags.get("mlops.champion_metrics", "null")),
        "gates": json.loads(tags.get("mlops.gates", "[]")),
        "release": release.body if release else None,
        "steps": steps,
    }
