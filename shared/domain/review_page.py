"""The review page an approver reads before deciding a release: pure HTML from the release record and the
model's lineage (both plain JSON, as `GET /api/releases/{id}` answers them), every value escaped.

Evidence in the release history is rendered generically (each step's detail as a key/value table), so a new
kind of evidence shows without a change here; the sections below only pick out what an approver looks for first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from html import escape
from string import Template
from typing import Any
from urllib.parse import urlsplit

from shared.domain.review_assets import SCRIPT, STYLE

AWAITING_APPROVAL = "awaiting_approval"
HTML_TYPES = ("text/html", "application/xhtml+xml")

_PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Release $title</title><style>$style</style></head>
<body>
<h1>Release <code id="release-id">$title</code></h1>
<p>Model <code>$model</code> on deployment <code>$deployment</code>:
<span class="status" id="status">$status</span></p>
$decision
$sections
<script>$script</script>
</body></html>
""")


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks HTML above JSON (a browser's does; curl's `*/*` and a client's
    `application/json` do not: a tie answers JSON, the API's own type)."""
    ranges: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and math.isfinite(quality):
            media = media.lower()
            ranges[media] = max(ranges.get(media, 0.0), quality)

    def rank(exact: Iterable[str], family: str) -> float:
        found = [ranges[m] for m in exact if m in ranges]
        if found:
            return max(found)
        return ranges.get(family, ranges.get("*/*", 0.0))

    return rank(HTML_TYPES, "text/*") > rank(("application/json",), "application/*")


def render(release: Mapping[str, Any], lineage: Mapping[str, Any] | None, *, local: bool) -> str:
    """The page for one release. `local`: no sign-in exists, so the page asks for the approver's name."""
    lineage = lineage or {}
    status = str(release.get("status", ""))
    history = release.get("history")
    steps = [s for s in history if isinstance(s, Mapping)] if isinstance(history, list) else []
    sections = [
        _history(steps),
        _evidence(steps),
        _gates(lineage.get("gates")),
        _metrics(lineage),
        _slices(lineage.get("slices")),
        _fairness(lineage.get("fairness"), lineage.get("gates")),
        _cause(lineage),
        _lineage(lineage),
    ]
    return _PAGE.substitute(
        title=escape(str(release.get("id", ""))),
        model=escape(f"{release.get('model', '')}:{release.get('version', '')}"),
        deployment=escape(str(release.get("deployment", ""))),
        status=escape(status),
        decision=_decision(status, local),
        sections="\n".join(sections),
        style=STYLE,
        script=SCRIPT,
    )


def _decision(status: str, local: bool) -> str:
    if status != AWAITING_APPROVAL:
        return f'<p id="no-decision">Nothing to decide: this release is {escape(status)}.</p>'
    who = (
        "<p><label>Approver (sent as <code>x-mlops-approver</code>; empty: MLOPS_LOCAL_APPROVER) "
        '<input id="approver" autocomplete="username"></label></p>'
        if local
        else "<p>You are identified by your App Service sign-in; the API checks your app role.</p>"
    )
    return (
        '<section id="decision"><h2>Decision</h2>'
        f"{who}"
        '<p><label for="comment">Comment (kept in the audit log)</label>'
        '<textarea id="comment" maxlength="1000"></textarea></p>'
        '<button id="approve" type="button">Approve</button>'
        '<button id="reject" type="button">Reject</button>'
        '<p id="answer" role="status" aria-live="polite"></p></section>'
    )


def _history(steps: list[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(s.get('status', '')))}</td><td>{escape(str(s.get('at', '')))}</td>"
        f"<td>{_value(s.get('detail') or {})}</td></tr>"
        for s in steps
    )
    return (
        '<h2>History</h2><table id="history"><tr><th>step</th><th>time</th><th>detail</th></tr>'
        f"{rows}</table>"
    )


def _evidence(steps: list[Mapping[str, Any]]) -> str:
    """Smoke test, shadow and canary, each from where the release steps record it."""

    def detail(step: Mapping[str, Any]) -> Mapping[str, Any]:
        found = step.get("detail")
        return found if isinstance(found, Mapping) else {}

    smoke = next((detail(s)["smoke_test"] for s in reversed(steps) if "smoke_test" in detail(s)), None)
    shadow_start = next((detail(s) for s in steps if s.get("status") == "shadow"), None)
    shadow = next((detail(s)["shadow"] for s in steps if "shadow" in detail(s)), None)
    canary_start = next((detail(s) for s in steps if s.get("status") == "canary"), None)
    canary = next((detail(s)["canary"] for s in steps if "canary" in detail(s)), None)
    parts = [
        _block("Smoke test", "smoke", smoke),
        _block("Shadow traffic", "shadow", _merged(shadow_start, shadow)),
        _block("Canary", "canary", _merged(canary_start, canary)),
    ]
    return "<h2>Evidence</h2>" + "".join(parts)


def _merged(start: Mapping[str, Any] | None, result: Any) -> Any:
    if start is None and result is None:
        return None
    merged: dict[str, Any] = dict(start or {})
    if result is not None:
        merged["result"] = result
    return merged


def _block(title: str, anchor: str, value: Any) -> str:
    body = _none("not recorded") if value is None else _value(value)
    return f'<h3>{escape(title)}</h3><div id="{anchor}">{body}</div>'


def _gates(gates: Any) -> str:
    if not isinstance(gates, list) or not gates:
        return f'<h2>Gates</h2><div id="gates">{_none("no gate verdicts recorded")}</div>'
    rows = "".join(
        f"<tr><td>{_text(g.get('gate'))}</td>{_verdict(g.get('passed'))}<td class=n>{_number(g.get('value'))}"
        f"</td><td class=n>{_number(g.get('threshold'))}</td><td>{_text(g.get('reason'))}</td></tr>"
        for g in gates
        if isinstance(g, Mapping)
    )
    return (
        '<h2>Gates</h2><table id="gates"><tr><th>gate</th><th>verdict</th><th>value</th><th>threshold</th>'
        f"<th>reason</th></tr>{rows}</table>"
    )


def _metrics(lineage: Mapping[str, Any]) -> str:
    challenger = lineage.get("metrics") if isinstance(lineage.get("metrics"), Mapping) else {}
    champion = lineage.get("champion_metrics")
    champion = champion if isinstance(champion, Mapping) else {}
    comparison = lineage.get("comparison") if isinstance(lineage.get("comparison"), Mapping) else {}
    primary = lineage.get("primary_metric") or comparison.get("metric")
    against = escape(str(lineage.get("champion") or "no champion"))
    rows = []
    for metric in sorted({*challenger, *champion}):
        new, old = challenger.get(metric), champion.get(metric)
        difference = new - old if _finite(new) and _finite(old) else None
        interval = ""
        if metric == comparison.get("metric") and comparison:
            interval = _interval(comparison)
        label = f"{escape(str(metric))}{' (primary)' if metric == primary else ''}"
        rows.append(
            f"<tr><td>{label}</td><td class=n>{_number(new)}</td><td class=n>{_number(old)}</td>"
            f"<td class=n>{_number(difference)}</td><td>{interval}</td></tr>"
        )
    if not rows:
        return f'<h2>Challenger against champion</h2><div id="metrics">{_none("no metrics recorded")}</div>'
    return (
        f"<h2>Challenger against champion</h2><p>Champion: <code>{against}</code></p>"
        '<table id="metrics"><tr><th>metric</th><th>challenger</th><th>champion</th><th>difference</th>'
        f"<th>bootstrap interval of the difference</th></tr>{''.join(rows)}</table>"
    )


def _interval(comparison: Mapping[str, Any]) -> str:
    low, high = comparison.get("ci_low"), comparison.get("ci_high")
    if not (_finite(low) and _finite(high)):
        why = comparison.get("reason") or "no interval"
        return _none(str(why))
    level = comparison.get("level")
    share = f"{float(level):.0%} " if _finite(level) else ""
    return (
        f"{share}[{_number(low)}, {_number(high)}], p = {_number(comparison.get('p_value'))}, "
        f"{escape(str(comparison.get('valid_resamples', '')))} resamples"
    )


def _slices(slices: Any) -> str:
    if not isinstance(slices, list):
        return f'<h2>Slices</h2><div id="slices">{_none("not evaluated")}</div>'
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_text(s.get(k))}</td>"
            if k in ("column", "value")
            else f"<td class=n>{_number(s.get(k))}</td>"
            for k in ("column", "value", "rows", "champion", "challenger", "difference", "low", "high")
        )
        + f'<td class="{_slice_class(s.get("verdict"))}">{_text(s.get("verdict"))}</td></tr>'
        for s in slices
        if isinstance(s, Mapping)
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("column", "value", "rows", "champion", "challenger", "difference", "low", "high", "verdict")
    )
    return f'<h2>Slices</h2><table id="slices"><tr>{head}</tr>{rows}</table>'


def _slice_class(verdict: Any) -> str:
    return {"ok": "pass", "worse": "fail"}.get(str(verdict), "none")


def _fairness(fairness: Any, gates: Any) -> str:
    """Fairness as the evaluation records it: both differences for challenger and champion, the groups and
    those too small to judge; the verdict is the gate's (none when it only records)."""
    if not isinstance(fairness, Mapping):
        return f'<h2>Fairness</h2><div id="fairness">{_none("not evaluated")}</div>'
    column = fairness.get("column")
    verdicts = [
        g
        for g in (gates if isinstance(gates, list) else [])
        if isinstance(g, Mapping) and f"_difference across {column}" in str(g.get("gate", ""))
    ]
    gated = [g for g in verdicts if g.get("threshold") is not None]
    verdict = (
        f"limit {_number(gated[0].get('threshold'))}; verdict "
        f"<span class={_class(all(g.get('passed') for g in gated))}>{_passed(all(g.get('passed') for g in gated))}"
        "</span>"
        if gated
        else _none("recorded, not gated")
    )
    summary = (
        f"<p>Column <code>{_text(column)}</code>, positive class <code>{_text(fairness.get('positive'))}</code>; "
        f"{verdict}</p>"
    )
    if fairness.get("reason"):
        summary += f"<p>{_text(fairness.get('reason'))}</p>"
    models = {"challenger": fairness.get("challenger"), "champion": fairness.get("champion")}
    rows = "".join(
        f"<tr><td>{metric}</td>"
        + "".join(
            f"<td class=n>{_number(m.get(metric)) if isinstance(m, Mapping) else _none('-')}</td>"
            for m in models.values()
        )
        + "</tr>"
        for metric in ("demographic_parity_difference", "equalized_odds_difference")
    )
    table = f"<table><tr><th>metric</th><th>challenger</th><th>champion</th></tr>{rows}</table>"
    rates = models["challenger"].get("rates") if isinstance(models["challenger"], Mapping) else None
    return (
        f'<h2>Fairness</h2><div id="fairness">{summary}{table}'
        f"<h3>Challenger's rates by group</h3>{_value(rates)}"
        f"<h3>Holdout rows by group</h3>{_value(fairness.get('groups'))}"
        f"<h3>Too small to judge</h3>{_value(fairness.get('too_small'))}</div>"
    )


def _cause(lineage: Mapping[str, Any]) -> str:
    """Why the model was trained, with the drift report(s) that asked for it."""
    causes = lineage.get("causes") if isinstance(lineage.get("causes"), list) else []
    links = []
    steps = lineage.get("steps") if isinstance(lineage.get("steps"), list) else []
    for step in steps:
        detail = step.get("detail") if isinstance(step, Mapping) else None
        if not isinstance(detail, Mapping) or step.get("action") != "training.requested":
            continue
        cause = str(detail.get("cause", ""))
        if cause != "drift" and not cause.startswith("monitor"):
            continue
        for key in ("report", "report_html"):
            if (link := _link(detail.get(key))) is not None:
                links.append(f"<li>{escape(cause)} ({escape(key)}): {link}</li>")
    reports = f'<ul id="drift-reports">{"".join(links)}</ul>' if links else ""
    listed = ", ".join(escape(str(c)) for c in causes) or _none("none recorded")
    return f'<h2>Why it was trained</h2><p id="causes">Causes: {listed}</p>{reports}'


def _link(url: Any) -> str | None:
    """A link for an http(s) URL only: a recorded `javascript:` URL stays text."""
    if not isinstance(url, str) or not url:
        return None
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f"<code>{escape(url)}</code>"
    return f'<a href="{escape(url, quote=True)}" rel="noreferrer noopener">{escape(url)}</a>'


def _lineage(lineage: Mapping[str, Any]) -> str:
    facts = {
        "dataset version": lineage.get("dataset_version"),
        "run": lineage.get("run_id"),
        "code version": lineage.get("code_version"),
        "code": lineage.get("code"),
        "model sha256": lineage.get("model_sha256"),
        "trigger events": lineage.get("trigger_events"),
    }
    files = lineage.get("files") if isinstance(lineage.get("files"), list) else []
    rows = "".join(
        f"<tr><td>{_text(f.get('name'))}</td><td class=n>{_number(f.get('rows'))}</td>"
        f"<td><code>{_text(f.get('sha256'))}</code></td></tr>"
        for f in files
        if isinstance(f, Mapping)
    )
    table = (
        f'<table id="files"><tr><th>file</th><th>rows</th><th>sha256</th></tr>{rows}</table>'
        if rows
        else _none("no data files recorded")
    )
    return f'<h2>Lineage</h2><div id="lineage">{_value(facts)}</div><h3>Data files</h3>{table}'


# --- values -------------------------------------------------------------------------------------------------------


def _value(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: a mapping as a key/value table, nested up to three levels, then as JSON."""
    if isinstance(value, Mapping) and value and depth < 3:
        rows = "".join(
            f"<tr><th>{escape(str(k))}</th><td>{_value(v, depth + 1)}</td></tr>" for k, v in value.items()
        )
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, Mapping) and not value:
        return _none("none")
    if isinstance(value, bool) or value is None:
        return _none("none") if value is None else ("yes" if value else "no")
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return escape(", ".join(str(v) for v in value)) if value else _none("none")
    return f"<code>{escape(json.dumps(value, default=str, sort_keys=True))}</code>"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _none("—") if value is None else _text(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else escape(str(value))


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def _text(value: Any) -> str:
    return _none("—") if value is None else escape(str(value))


def _none(text: str) -> str:
    return f'<span class="none">{escape(text)}</span>'


def _passed(passed: Any) -> str:
    return (
        {True: "passed", False: "failed"}.get(passed, "not decided")
        if isinstance(passed, bool | None)
        else "?"
    )


def _class(passed: Any) -> str:
    return "pass" if passed is True else "fail" if passed is False else "none"


def _verdict(passed: Any) -> str:
    return f'<td class="{_class(passed)}">{escape(_passed(passed))}</td>'
