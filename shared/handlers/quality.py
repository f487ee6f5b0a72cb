"""The scheduled quality check: late labels joined to what production served, the live metric of each model
version with its interval, compared with the version's offline holdout metric. A degraded production model
gets `MLOps.PerformanceDegraded` and a training request (cause `performance`), once per cooldown.

The join streams the rows served in the window (`shared.state.traffic`), deployment by deployment and hour by
hour, and looks each row's label up in the labels store, which files labels by the hour their row was served
(`shared.state.labels`): memory holds the joined values and a few hours of labels, never the traffic.

One record per model (`quality/checks/<model>`) holds the latest check. Its id and window are fixed when it
starts, so a retry after a crash repeats the same check (the same event id, training cause and feedback file
name) and each effect happens once:

    measuring --(verdicts into the audit log)--> decided --(event, cooldown, request)--> done

Nothing here subscribes to `MLOps.PerformanceDegraded`, so it has no route: the check asks for training itself,
and the event is for other systems (alerting, dashboards) on the custom topic.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.domain import quality
from shared.domain.decisions.gates import parse_absolute_gates
from shared.domain.decisions.quality import DEGRADED, choose_metric, judge
from shared.domain.labels import true_value
from shared.domain.messages import RequestTraining
from shared.handlers import release_shadow
from shared.handlers.training_requests import request_training
from shared.ports import OutgoingEvent, PreconditionFailed
from shared.state import cooldowns, keys, releases, traffic
from shared.state import labels as store
from shared.state.lease import Held, decision, lease
from shared.state.records import CheckStatus, Production, QualityCheck

PERFORMANCE_DEGRADED = "MLOps.PerformanceDegraded"
ACTOR = "quality_check"
FEEDBACK_FOLDER = "feedback/"
_UNVERSIONED = ("", "default")  # Azure's collector logs "default" as the model version: the deployment tells


@dataclass
class _Joined:
    """One model version's rows in the window: how many it served, and the labelled ones' values."""

    served: int = 0
    unscorable: int = 0  # labelled, but the answer or the label is not a value of the task
    truth: list[Any] = field(default_factory=list)
    predicted: list[Any] = field(default_factory=list)


class _Feedback:
    """The joined rows whose labels are new since the last check, as a CSV in the training data's columns (the
    served inputs' own columns when no schema is known yet)."""

    def __init__(self, columns: list[str], target: str) -> None:
        self.columns, self.target, self.rows = columns, target, 0
        self._text = io.StringIO()
        self._writer = csv.writer(self._text)

    def add(self, inputs: dict[str, Any], label: Any) -> None:
        if self.rows == 0:
            self.columns = self.columns or [*(c for c in inputs if c != self.target), self.target]
            self._writer.writerow(self.columns)
        values = [label if c == self.target else inputs.get(c) for c in self.columns]
        self._writer.writerow(["" if v is None else v for v in values])
        self.rows += 1

    def data(self) -> bytes:
        return self._text.getvalue().encode()


def check_quality(deps: Deps, actor: str = ACTOR) -> dict[str, Any] | None:
    """Run (or resume) the check; returns its summary (None when there is no model to check)."""
    settings = deps.settings
    production = releases.production(deps.state, settings.model_name)
    if production is None:
        deps.audit.record(actor, "quality.skipped", "production", reason="no model in production")
        return None
    with lease(
        deps, keys.quality_check(settings.model_name), create=lambda: (_new_check(deps, None), ())
    ) as held:
        if held is None:
            reason = "another quality check of this model is under way"
            deps.audit.record(actor, "quality.skipped", settings.model_name, reason=reason)
            return None
        if held.record.status is CheckStatus.DONE:
            held.change(_new_check(deps, held.record))
        if held.record.status is CheckStatus.MEASURING:
            _measure(held, production, deps, actor)
        check = held.record
        _act(check, deps, actor)
        held.change(dataclasses.replace(check, status=CheckStatus.DONE))
    return {"check": check.id, "since": check.since, "until": check.until, "versions": list(check.versions)}


def _new_check(deps: Deps, previous: QualityCheck | None) -> QualityCheck:
    """A check of the window ending now. The id is stored with it, so a retry reuses it rather than the clock."""
    settings = deps.settings
    until = deps.clock()
    since = until - timedelta(hours=settings.quality.window_hours)
    check_id = f"quality-{settings.model_name}-{until:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    feedback_since = previous.until if previous is not None else since.isoformat()
    return QualityCheck(
        check_id,
        settings.model_name,
        since.isoformat(),
        until.isoformat(),
        feedback_since,
        CheckStatus.MEASURING,
    )


def _measure(held: Held[QualityCheck], production: Production, deps: Deps, actor: str) -> None:
    check = held.record
    joined, feedback, counts = _join(deps, check)
    joined.setdefault(production.version, _Joined())  # the champion is reported even when nothing joined
    window = {"since": check.since, "until": check.until, "hours": deps.settings.quality.window_hours}
    read = {
        "blobs": counts.blobs,
        "records": counts.records,
        "unparsed_lines": counts.unparsed_lines,
        "unanswered_rows": counts.unanswered_rows,
        "mirrored_records": counts.mirrored_records,
    }
    versions, decisions = [], []
    for version in sorted(joined, key=_version_order):
        entry = _judge(deps, version, joined[version], production)
        versions.append(entry)
        subject = entry["model"]
        decisions.append(
            decision(
                actor,
                "quality.checked",
                subject,
                f"{check.id}:{subject}",
                check=check.id,
                window=window,
                read=read,
                **entry,
            )
        )
    if feedback is not None:
        decisions.append(_land_feedback(deps, check, feedback, actor))
    held.change(dataclasses.replace(check, status=CheckStatus.DECIDED, versions=tuple(versions)), *decisions)
    held.flush()  # the verdicts reach the audit log before the effects they call for


def _join(deps: Deps, check: QualityCheck) -> tuple[dict[str, _Joined], _Feedback | None, traffic.ReadCounts]:
    """Served rows of the window, each looked up in the labels store, grouped by the model version that served
    it; and the feedback rows when feedback is on."""
    settings = deps.settings
    task = settings.training.task
    since, until = datetime.fromisoformat(check.since), datetime.fromisoformat(check.until)
    feedback_since = datetime.fromisoformat(check.feedback_since)
    endpoint, container = settings.endpoint_name, settings.containers.inference
    version_of = {
        stored.record.deployment: stored.record.version for stored in deps.state.list(keys.RELEASES)
    }
    feedback = (
        _Feedback(_training_columns(deps), settings.training.target)
        if settings.quality.feedback_to_landing
        else None
    )
    lookups: dict[str, store.Lookup] = {}
    joined: dict[str, _Joined] = {}
    counts = traffic.ReadCounts()
    names = traffic.deployments(deps.blobs, container, endpoint)
    copy = release_shadow.shadowed(deps, names)
    for row in traffic.served_rows(deps.blobs, container, endpoint, names, since, until, counts):
        if copy(row.deployment, row.time):
            counts.mirrored_records += 1  # a shadow's copy (Azure does not mark them): nobody's answer
            continue
        version = (
            row.model_version if row.model_version not in _UNVERSIONED else version_of.get(row.deployment, "")
        )
        rows = joined.setdefault(version or f"unknown ({row.deployment})", _Joined())
        rows.served += 1
        if row.deployment not in lookups:
            lookups[row.deployment] = store.Lookup(deps.blobs, settings.containers.datasets, row.deployment)
        label = lookups[row.deployment].get(row.row_id, row.time)
        if label is None:
            continue
        if feedback is not None and feedback_since < label.accepted_at <= until:
            feedback.add(row.inputs, label.value)
        truth, predicted = true_value(task, label.value), quality.prediction(task, row.outputs)
        if truth is None or predicted is None:
            rows.unscorable += 1
            continue
        rows.truth.append(truth)
        rows.predicted.append(predicted)
    return joined, feedback, counts


def _judge(deps: Deps, version: str, rows: _Joined, production: Production) -> dict[str, Any]:
    """The numbers of one model version and its verdict, as recorded (plain JSON)."""
    settings = deps.settings
    offline, primary, note = _offline(deps, version)
    data = quality.sample(settings.training.task, rows.truth, rows.predicted)
    points = quality.points(data)
    metric, choice = choose_metric(primary, points, offline, list(points))
    floors = parse_absolute_gates(settings.gates.absolute)
    measured = {}
    if data.rows >= settings.quality.min_rows:
        options = {
            "level": settings.training.confidence_level,
            "resamples": settings.training.bootstrap_resamples,
            "seed": settings.training.seed,
        }
        wanted = {metric, *(gate.metric for gate in floors)} & set(points)
        measured = quality.intervals(data, {name: points[name] for name in sorted(wanted)}, **options)
    verdict = judge(
        measured.get(metric) if metric else None,
        rows=data.rows,
        greater_is_better=quality.greater_is_better(metric or primary),
        offline=offline.get(metric) if metric else None,
        margin=settings.quality.margin,
        min_rows=settings.quality.min_rows,
        floors=floors,
        measured=measured,
    )
    live = measured.get(metric) if metric else None
    return {
        "model": f"{settings.model_name}:{version}",
        "version": version,
        "in_production": version == production.version,
        "served": rows.served,
        "joined": data.rows,
        "unscorable": rows.unscorable,
        "metric": metric,
        "primary_metric": primary,
        "live": live.as_dict() if live else None,
        "live_value": points.get(metric) if metric else None,
        "live_metrics": points,
        "offline": offline.get(metric) if metric else None,
        "offline_metrics": offline,
        "margin": settings.quality.margin,
        **verdict.as_dict(),
        "notes": [n for n in (note, choice) if n],
    }


def _offline(deps: Deps, version: str) -> tuple[dict[str, float], str, str]:
    """The version's holdout metrics and primary metric, as registered (`lineage_tags`), and a note when they
    cannot be had."""
    primary = deps.settings.training.primary_metric
    model = deps.registry.get(deps.settings.model_name, version) if version.isdigit() else None
    if model is None:
        return {}, primary, f"version {version} is not in the registry: no offline metrics to compare with"
    try:
        metrics = json.loads(model.tags.get("mlops.metrics") or "{}")
    except ValueError:
        metrics = None
    if not isinstance(metrics, dict):
        return {}, primary, "the registered mlops.metrics tag is not a JSON object"
    numbers = {
        str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return numbers, str(model.tags.get("mlops.primary_metric") or primary), ""


def _act(check: QualityCheck, deps: Deps, actor: str) -> None:
    """Announce a degraded production model and ask for training, unless a request of the same episode still
    covers it. Every step is keyed by the check, so a resumed check repeats none."""
    settings = deps.settings
    for entry in check.versions:
        if entry.get("verdict") != DEGRADED or not entry.get("in_production"):
            continue  # versions no longer (or not yet) serving production are measured, never acted on
        version, subject = str(entry["version"]), str(entry["model"])
        event_id = f"{check.id}:v{version}"
        deps.publisher.publish([_degraded_event(check, entry, event_id)])
        deps.audit.record(
            actor,
            "quality.published",
            subject,
            key=f"{event_id}:published",
            event_type=PERFORMANCE_DEGRADED,
            event_id=event_id,
        )
        key = keys.quality_cooldown(settings.model_name)
        seconds = settings.quality.cooldown_seconds
        holder = cooldowns.claim(deps.state, key, event_id, version, deps.clock(), seconds)
        if holder is not None:
            deps.audit.record(
                actor,
                "quality.cooldown",
                subject,
                key=f"{event_id}:cooldown",
                event_id=event_id,
                requested_by=holder.event,
                cooldown_until=holder.until,
            )
            continue
        detail = {
            "model": subject,
            "check": check.id,
            "metric": entry["metric"],
            "live": entry["live"],
            "offline": entry["offline"],
            "reasons": entry["reasons"],
        }
        request_training(RequestTraining("performance", event_id, detail), deps, actor)


def _degraded_event(check: QualityCheck, entry: dict[str, Any], event_id: str) -> OutgoingEvent:
    live = entry.get("live") or {}
    return OutgoingEvent(
        event_type=PERFORMANCE_DEGRADED,
        subject=f"models/{check.model}/versions/{entry['version']}",
        data={
            "modelName": check.model,
            "modelVersion": entry["version"],
            "metric": entry["metric"],
            "liveValue": live.get("value"),
            "ciLow": live.get("low"),
            "ciHigh": live.get("high"),
            "confidenceLevel": live.get("level"),
            "rows": entry["joined"],
            "offlineValue": entry["offline"],
            "margin": entry["margin"],
            "reasons": entry["reasons"],
            "checkId": check.id,
            "window": {"since": check.since, "until": check.until},
        },
        id=event_id,
    )


def _land_feedback(deps: Deps, check: QualityCheck, feedback: _Feedback, actor: str) -> Any:
    """Land the new joined rows as a CSV for the normal data flow (validation, dataset version, holdout by row
    hash), named by the check's window so a retry lands nothing twice."""
    settings = deps.settings
    since, until = (datetime.fromisoformat(t) for t in (check.feedback_since, check.until))
    name = f"{FEEDBACK_FOLDER}{check.model}-{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}.csv"
    key = f"{check.id}:feedback"
    if feedback.rows < settings.data.min_rows:
        reason = f"{feedback.rows} new labelled rows, fewer than MLOPS_MIN_ROWS ({settings.data.min_rows})"
        return decision(actor, "quality.feedback_skipped", check.model, key, check=check.id, reason=reason)
    with contextlib.suppress(PreconditionFailed):  # landed by an earlier attempt of this check
        deps.blobs.write(
            settings.containers.landing, name, feedback.data(), content_type="text/csv", if_none_match=True
        )
    return decision(
        actor,
        "quality.feedback_landed",
        check.model,
        key,
        check=check.id,
        blob=name,
        rows=feedback.rows,
        columns=feedback.columns,
    )


def _training_columns(deps: Deps) -> list[str]:
    """The training data's columns: the declared schema's, else the frozen one's; [] when neither is known."""
    settings = deps.settings
    if settings.data.schema is not None:
        columns = list(settings.data.schema.columns)
    else:
        frozen = deps.state.get(keys.SCHEMA)
        columns = list(frozen.record.columns) if frozen is not None else []
    target = settings.training.target
    return columns if not columns or target in columns else [*columns, target]


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)
