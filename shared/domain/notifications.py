"""Notifications for the people who run the system: what an event of ours says, in the shape each receiver reads.

Pure code. An event published on the custom topic (approval requested, promoted, rolled back, performance
degraded, drift detected, run failed, files quarantined) becomes one `Notification`: a title saying what
happened, a line saying what to do, facts and links. Its body is then rendered per receiver:

- Microsoft Teams (an incoming webhook on `*.webhook.office.com`, or a Workflows / Power Automate URL on
  `*.logic.azure.com` or `*.powerplatform.com`): a message with one Adaptive Card attachment;
- Slack (`hooks.slack.com`): `text` (the fallback and the notification text) and `blocks`;
- any other URL: JSON `{"id", "kind", "time", "subject", "summary", "data"}`, signed with HMAC-SHA256 over the
  raw body and the shared secret in `x-mlops-signature: sha256=<hex>` (`signature`, `verify`).

Event data is what another process wrote: any JSON value may sit in any field. Every value is read as text
or a number here, never trusted to have a shape, so rendering cannot fail on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlparse

SIGNATURE_HEADER = "x-mlops-signature"
MAX_TEXT = 300  # characters of one value shown in a message
MAX_ITEMS = 5  # reasons, columns or files listed in a message


class Kind(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    PERFORMANCE_DEGRADED = "performance_degraded"
    DRIFT_DETECTED = "drift_detected"
    RUN_FAILED = "run_failed"
    FILES_QUARANTINED = "files_quarantined"


# The custom-topic event types, as the handlers publish them, and the kind of notification each is.
EVENT_KINDS: dict[str, Kind] = {
    "MLOps.ApprovalRequested": Kind.APPROVAL_REQUESTED,
    "MLOps.ModelPromoted": Kind.PROMOTED,
    "MLOps.ReleaseRolledBack": Kind.ROLLED_BACK,
    "MLOps.PerformanceDegraded": Kind.PERFORMANCE_DEGRADED,
    "MLOps.DriftDetected": Kind.DRIFT_DETECTED,
    "MLOps.RunFailed": Kind.RUN_FAILED,
    "MLOps.FilesQuarantined": Kind.FILES_QUARANTINED,
}


def kind_of(event_type: str) -> Kind | None:
    return {name.lower(): kind for name, kind in EVENT_KINDS.items()}.get(event_type.lower())


class Target(StrEnum):
    TEAMS = "teams"
    SLACK = "slack"
    SIGNED_JSON = "json"


def target_of(url: str) -> Target:
    """Which receiver a webhook URL is, by its host."""
    host = (urlparse(url).hostname or "").lower()
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com")):
        return Target.TEAMS
    if host == "hooks.slack.com":
        return Target.SLACK
    return Target.SIGNED_JSON


def label_of(url: str) -> str:
    """A URL as logs and the audit log may name it: its host only, since the path of a Teams or Slack webhook
    is its secret."""
    return urlparse(url).hostname or "(no host)"


@dataclass(frozen=True)
class Notification:
    id: str
    kind: Kind
    time: str
    subject: str
    title: str
    summary: str  # what happened and what to do, in a sentence or two
    facts: tuple[tuple[str, str], ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (title, URL)
    data: dict[str, Any] = field(default_factory=dict)
    suppressed: int = 0  # notifications of this kind held back by the cooldown since the last one


# --- reading event data safely --------------------------------------------------------------------------------


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """Any JSON value as display text: strings as they are, numbers as numbers, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        shown = value
    elif isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, int | float):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    else:
        try:
            shown = json.dumps(value, default=str, ensure_ascii=False)[: limit + 1]
        except (ValueError, RecursionError):
            shown = type(value).__name__
    shown = shown.encode("utf-8", "replace").decode("utf-8").strip()  # a lone surrogate becomes "?"
    return shown if len(shown) <= limit else f"{shown[: limit - 1]}…"


def texts(value: Any, limit: int = MAX_ITEMS) -> list[str]:
    """A list's items (or one value) as display texts, at most `limit`."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return [shown for item in items[:limit] if (shown := text(item))]


def storable(data: Any) -> dict[str, Any]:
    """Event data as a record can hold it: an object of JSON values, lone surrogates replaced ({} for
    anything else, or for data nested past what JSON libraries read)."""
    if not isinstance(data, Mapping):
        return {}
    try:
        raw = json.dumps(data, default=str, ensure_ascii=False).encode("utf-8", "replace")
        return json.loads(raw)
    except (ValueError, RecursionError):
        return {}


def _field(data: Mapping[str, Any], name: str) -> Any:
    lowered = name.lower()
    return next((value for key, value in data.items() if str(key).lower() == lowered), None)


def _link(base: str, path: str) -> str:
    return f"{base}{path}" if base else path


def _release_page(release: str) -> str:
    """The release's review page (GET /api/releases/{id}), the id quoted: it came in an event."""
    return f"/api/releases/{quote(str(release), safe='')}"


# --- what each kind says --------------------------------------------------------------------------------------


def notification(
    *,
    id: str,
    event_type: str,
    subject: str,
    time: str,
    data: Any,
    public_url: str = "",
    suppressed: int = 0,
) -> Notification | None:
    """The notification an event of ours makes, or None for an event type that is not one of the kinds."""
    kind = kind_of(event_type)
    if kind is None:
        return None
    values = data if isinstance(data, Mapping) else {}

    def get(name: str) -> str:
        return text(_field(values, name))

    model = " v".join(part for part in (get("modelName"), get("modelVersion")) if part)
    title, summary, facts, links = _WORDS[kind](get, values, public_url.rstrip("/"))
    if model:
        facts = (("Model", model), *facts)
    if suppressed:
        summary += f" ({suppressed} more like this held back by the cooldown since the last notification.)"
    return Notification(
        id=id,
        kind=kind,
        time=time,
        subject=subject,
        title=title,
        summary=summary,
        facts=tuple((name, value) for name, value in facts if value),
        links=links,
        data=dict(values),
        suppressed=suppressed,
    )


Words = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def _approval(get: Any, data: Mapping[str, Any], base: str) -> Words:
    release = get("releaseId")
    approve = get("approve") or f"/api/releases/{release}/approve"
    review = _link(base, _release_page(release))
    return (
        f"Approval requested: release {release}",
        f"Release {release} passed its smoke test and waits for an approver. Review it on its page "
        f"({review}) and approve or reject it there, or POST {_link(base, approve)} (or …/reject) as an "
        "approver.",
        (
            ("Release", release),
            ("Deployment", get("deployment")),
            ("Approve", f"POST {_link(base, approve)}"),
        ),
        (("Review", review),),
    )


def _promoted(get: Any, data: Mapping[str, Any], base: str) -> Words:
    release = get("releaseId")
    return (
        f"Promoted: release {release} serves production",
        "The new model takes all live traffic. Nothing to do; watch its live quality. "
        f"Roll back with POST {_link(base, f'/api/releases/{release}/rollback')} if needed.",
        (("Release", release), ("Deployment", get("deployment")), ("Previous", get("previous"))),
        (("Status", _link(base, "/api/status")),),
    )


def _rolled_back(get: Any, data: Mapping[str, Any], base: str) -> Words:
    release = get("releaseId")
    restored = get("restored")
    serving = f"{restored} serves production again" if restored else "no model serves production"
    return (
        f"Rolled back: release {release}",
        f"Release {release} was rolled back ({get('reason') or 'no reason given'}); {serving}. "
        "Look at the reason before the next release.",
        (("Release", release), ("Reason", get("reason")), ("Restored", restored)),
        (("Release page", _link(base, _release_page(release))), ("Status", _link(base, "/api/status"))),
    )


def _degraded(get: Any, data: Mapping[str, Any], base: str) -> Words:
    metric = get("metric")
    reasons = "; ".join(texts(_field(data, "reasons")))
    return (
        f"Performance degraded: live {metric or 'metric'} below expectations",
        "Production's live metric fell significantly below its offline holdout metric or a floor; "
        "retraining was asked for. Check the labels and recent inputs.",
        (
            ("Metric", metric),
            ("Live", get("liveValue")),
            ("Offline", get("offlineValue")),
            ("Rows", get("rows")),
            ("Why", reasons),
        ),
        (),
    )


def _drift(get: Any, data: Mapping[str, Any], base: str) -> Words:
    columns = texts(_field(data, "driftedColumns"))
    report = get("htmlReportUrl") or get("reportUrl")
    return (
        "Drift detected in production inputs",
        "Recent inputs differ from the champion's training data; retraining was asked for. "
        "Open the report to see which columns moved.",
        (("Drift share", get("driftShare")), ("Drifted columns", ", ".join(columns)), ("Report", report)),
        (),
    )


def _run_failed(get: Any, data: Mapping[str, Any], base: str) -> Words:
    run = get("runId")
    return (
        f"Training run failed: {run}",
        f"Run {run} failed after {get('attempt') or '?'} of {get('maxAttempts') or '?'} tries and will not be "
        "retried; a new trigger (new data, POST /api/retrain, new code) starts again. Read the reason and the "
        "run's log.",
        (
            ("Run", run),
            ("Reason", get("reason")),
            ("Stage", get("stage")),
            ("Status", get("status")),
            ("Dataset", get("datasetVersion")),
        ),
        (("Status", _link(base, "/api/status")),),
    )


def _quarantined(get: Any, data: Mapping[str, Any], base: str) -> Words:
    count = get("count") or "?"
    reasons = "; ".join(texts(_field(data, "reasons")))
    files = ", ".join(texts(_field(data, "files")))
    return (
        f"{count} landed file(s) quarantined",
        "Files failed validation and were moved to the quarantine container, each beside a .reason.json. "
        "Fix them at the source and land them again.",
        (("Files", files), ("Reasons", reasons), ("Since", get("since")), ("Until", get("until"))),
        (),
    )


_WORDS = {
    Kind.APPROVAL_REQUESTED: _approval,
    Kind.PROMOTED: _promoted,
    Kind.ROLLED_BACK: _rolled_back,
    Kind.PERFORMANCE_DEGRADED: _degraded,
    Kind.DRIFT_DETECTED: _drift,
    Kind.RUN_FAILED: _run_failed,
    Kind.FILES_QUARANTINED: _quarantined,
}


# --- bodies -----------------------------------------------------------------------------------------------------


def teams_body(note: Notification) -> dict[str, Any]:
    """A message with one Adaptive Card (1.4, the version Teams renders in webhooks and workflows)."""
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _card_text(note.title),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": _card_text(note.summary), "wrap": True},
            {
                "type": "FactSet",
                "facts": [{"title": name, "value": _card_text(value)} for name, value in note.facts],
            },
        ],
    }
    actions = [
        {"type": "Action.OpenUrl", "title": title, "url": url}
        for title, url in note.links
        if url.startswith(("https://", "http://"))  # Teams refuses a card whose action URL is a bare path
    ]
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def _card_text(text: str) -> str:
    """Values from events (file names, columns, reasons) as text in a card: no markdown link of theirs."""
    return text.replace("](", "]\u200b(")


def _slack_text(text: str) -> str:
    """Slack's escaping for mrkdwn: a value from an event can neither link (`<url|text>`) nor ping (`<!channel>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(note: Notification) -> dict[str, Any]:
    facts = "\n".join(f"*{name}:* {_slack_text(value)}" for name, value in note.facts)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": note.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_text(note.summary)[:3000]}},
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": facts[:3000]}})
    links = " · ".join(
        f"<{url}|{title}>" for title, url in note.links if url.startswith(("https://", "http://"))
    )
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    return {"text": _slack_text(f"{note.title}: {note.summary}"), "blocks": blocks}


def generic_body(note: Notification) -> dict[str, Any]:
    return {
        "id": note.id,
        "kind": note.kind.value,
        "time": note.time,
        "subject": note.subject,
        "summary": f"{note.title}. {note.summary}",
        "suppressed": note.suppressed,
        "data": note.data,
    }


def render(note: Notification, url: str, secret: str) -> tuple[bytes, dict[str, str]]:
    """The body to POST to `url` and its headers (the signature for signed JSON, when there is a secret)."""
    target = target_of(url)
    body = {Target.TEAMS: teams_body, Target.SLACK: slack_body, Target.SIGNED_JSON: generic_body}[target](
        note
    )
    raw = json.dumps(body, default=str, ensure_ascii=False).encode("utf-8", "replace")
    headers = {"content-type": "application/json"}
    if target is Target.SIGNED_JSON:
        headers["x-mlops-event-id"] = "".join(c if " " <= c <= "~" else "?" for c in note.id)[:200]
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, raw)
    return raw, headers


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the HMAC over the raw body and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header.strip())


# --- when to call again -------------------------------------------------------------------------------------------


def retry_delay(retries: int, base_seconds: float, cap_seconds: float = 6 * 3600) -> float:
    """The wait after the `retries`-th failed call by the tick (1, 2, ...): doubling from `base_seconds`."""
    return float(min(cap_seconds, base_seconds * 2 ** max(0, retries - 1)))
