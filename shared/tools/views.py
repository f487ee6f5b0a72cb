"""What `mlops status`, `lineage`, `history` and `dead-letters` print: the API's JSON as short sections and
tables for a person (`--json` prints the JSON itself).

Every field is read as it may come, not as it should: a missing key, a null, a number where a list belongs
prints as a dash or as the value it is, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from shared.domain.history import parse_time
from shared.tools.tables import cell, clip, fields, heading, table, terminal_columns


def get(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]…`, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def when(value: Any, zone: tzinfo | None = None) -> Any:
    """An ISO time as `YYYY-MM-DD HH:MM:SS` in `zone` (local when None); anything else as it is."""
    moment = parse_time(value)
    if moment is None:
        return value
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _fitted(text: str, columns: int) -> str:
    """Every line of `text` within `columns` (a section's own lines are cut already; notes may not be)."""
    return "\n".join(clip(line, columns) for line in text.splitlines())


def _section(title: str, body: str, columns: int) -> str:
    return f"{heading(title, columns)}\n{body}"


def _rows_or_none(
    title: str, headers: Sequence[str], rows: list[list[Any]], columns: int, empty: str = "none"
) -> str:
    if not rows:
        return heading(f"{title}: {empty}", columns)
    return _section(f"{title} ({len(rows)})", table(headers, rows, columns), columns)


def status(answer: Any, *, columns: int | None = None, zone: tzinfo | None = None) -> str:
    width = terminal_columns() if columns is None else columns
    production = get(answer, "production")
    model = get(answer, "model")
    if isinstance(production, dict):
        serving = f"{cell(get(production, 'model') or model)}:{cell(get(production, 'version'))}"
        previous = get(production, "previous")
        lines = [
            ("production", serving),
            ("deployment", get(production, "deployment")),
            ("release", get(production, "release")),
            ("since", when(get(production, "since"), zone)),
            ("rollback to", f"version {cell(get(previous, 'version'))}" if previous else None),
        ]
    else:
        lines = [("production", f"nothing serves {cell(model)} yet")]
    traffic = get(answer, "traffic")
    if isinstance(traffic, dict) and traffic:
        split = ", ".join(f"{cell(name)} {cell(share)}%" for name, share in traffic.items())
    else:
        split = "no deployments" if isinstance(traffic, dict) else traffic
    lines.append(("traffic", split))
    request = get(answer, "training_request")
    if isinstance(request, dict):
        causes = ", ".join(cell(c) for c in items(get(request, "causes"))) or "-"
        waiting = get(request, "waiting")
        summary = f"{cell(get(request, 'id'))}: {causes}, {len(items(get(request, 'events')))} event(s)"
        lines.append(("training request", summary + (f", waiting: {cell(waiting)}" if waiting else "")))
    else:
        lines.append(("training request", "none open"))
    runs = items(get(answer, "runs_in_flight"))
    lines.append(("runs in flight", ", ".join(cell(run) for run in runs) if runs else "none"))
    parts = [fields(lines, width)]
    releases = get(answer, "releases")
    if isinstance(releases, list):
        rows = [
            [get(r, "id"), get(r, "version"), get(r, "status"), when(get(r, "since"), zone)] for r in releases
        ]
    else:  # an older app: ids only
        rows = [[rid, None, None, None] for rid in items(get(answer, "active_releases"))]
    parts.append(
        _rows_or_none("Releases on their way", ["RELEASE", "VERSION", "STATUS", "SINCE"], rows, width)
    )
    stuck = [
        [get(s, "key"), get(s, "status"), when(get(s, "at"), zone), get(s, "attempts"), get(s, "reason")]
        for s in items(get(answer, "stuck"))
    ]
    parts.append(_rows_or_none("Stuck", ["KEY", "STATUS", "SINCE", "ATTEMPTS", "LAST ERROR"], stuck, width))
    decisions = [
        [when(get(d, "time"), zone), get(d, "actor"), get(d, "action"), get(d, "subject")]
        for d in items(get(answer, "recent_decisions"))
    ]
    parts.append(_rows_or_none("Recent decisions", ["TIME", "ACTOR", "ACTION", "SUBJECT"], decisions, width))
    return _fitted("\n\n".join(parts), width)


def lineage(answer: Any, *, columns: int | None = None, zone: tzinfo | None = None) -> str:
    width = terminal_columns() if columns is None else columns
    files = items(get(answer, "files"))
    rows_in = sum(f["rows"] for f in files if type(get(f, "rows")) is int)
    causes = ", ".join(cell(c) for c in items(get(answer, "causes"))) or "-"
    parts = [
        fields(
            [
                ("model", get(answer, "model")),
                ("sha256", get(answer, "model_sha256")),
                ("run", get(answer, "run_id")),
                (
                    "dataset version",
                    f"{cell(get(answer, 'dataset_version'))} ({len(files)} files, {rows_in} rows)",
                ),
                ("causes", f"{causes} ({len(items(get(answer, 'trigger_events')))} event(s))"),
                ("code version", get(answer, "code_version")),
                ("champion", get(answer, "champion") or "none (the first model)"),
            ],
            width,
        )
    ]
    file_rows = [[get(f, "name"), get(f, "rows"), get(f, "sha256")] for f in files]
    parts.append(_rows_or_none("Files", ["NAME", "ROWS", "SHA256"], file_rows, width))
    retracted = [[get(f, "name"), get(f, "sha256")] for f in items(get(answer, "retracted"))]
    if retracted:
        parts.append(_rows_or_none("Retracted since", ["NAME", "SHA256"], retracted, width))
    gates = [
        [get(g, "gate"), get(g, "value"), get(g, "threshold"), _verdict(get(g, "passed")), get(g, "reason")]
        for g in items(get(answer, "gates"))
    ]
    parts.append(_rows_or_none("Gates", ["GATE", "VALUE", "THRESHOLD", "RESULT", "REASON"], gates, width))
    parts.append(_metrics(get(answer, "metrics"), get(answer, "champion_metrics"), width))
    release = get(answer, "release")
    if isinstance(release, dict):
        steps = [
            [get(s, "status"), when(get(s, "at"), zone), _detail(get(s, "detail"))]
            for s in items(get(release, "history"))
        ]
        title = f"Release {cell(get(release, 'id'))}, now {cell(get(release, 'status'))}"
        parts.append(_rows_or_none(title, ["STATUS", "AT", "DETAIL"], steps, width))
    else:
        parts.append("Release: none (not released)")
    return _fitted("\n\n".join(parts), width)


def _verdict(passed: Any) -> str:
    return {True: "pass", False: "FAIL"}.get(passed, "-") if isinstance(passed, bool) else "-"


def _metrics(challenger: Any, champion: Any, columns: int) -> str:
    mine = challenger if isinstance(challenger, dict) else {}
    theirs = champion if isinstance(champion, dict) else {}
    rows = []
    for name in sorted({*mine, *theirs}, key=str):
        ours, best = mine.get(name), theirs.get(name)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ours, best))
        rows.append([name, ours, best, ours - best if numbers else None])
    return _rows_or_none("Metrics", ["METRIC", "CHALLENGER", "CHAMPION", "CHANGE"], rows, columns)


def _detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return cell(detail)
    return ", ".join(f"{cell(k)}={cell(v)}" for k, v in detail.items() if v not in (None, "", [], {})) or "-"


def dead_letters(answer: Any, *, columns: int | None = None, zone: tzinfo | None = None) -> str:
    width = terminal_columns() if columns is None else columns
    letters = items(answer)
    rows = [
        [
            get(letter, "id"),
            get(letter, "subscription"),
            get(letter, "event", "eventType") or get(letter, "event", "type"),
            get(letter, "deliveryAttempts"),
            when(get(letter, "deadLetteredAt"), zone),
            get(letter, "lastDeliveryOutcome"),
        ]
        for letter in letters
    ]
    headers = ["ID", "SUBSCRIPTION", "EVENT TYPE", "ATTEMPTS", "DEAD-LETTERED", "LAST ERROR"]
    shown = table(headers, rows, width) if rows else "no dead-lettered events"
    return _fitted(f"{shown}\n{len(rows)} dead-lettered event(s)" if rows else shown, width)


def history(answer: Any, *, columns: int | None = None, zone: tzinfo | None = None) -> str:
    width = terminal_columns() if columns is None else columns
    model = cell(get(answer, "model"))
    ignored = get(answer, "ignored_entries")
    note = f"\n({cell(ignored)} audit entries about releases could not be read)" if ignored else ""
    if isinstance(answer, dict) and "at" in answer:
        at = when(get(answer, "at"), zone)
        serving = get(answer, "serving")
        if not isinstance(serving, dict):
            return _fitted(f"nothing was in production for {model} at {cell(at)}{note}", width)
        body = fields(
            [
                ("at", at),
                ("serving", f"{model}:{cell(get(serving, 'version'))}"),
                ("deployment", get(serving, "deployment")),
                ("release", get(serving, "release")),
                ("from", when(get(serving, "since"), zone)),
                ("until", when(get(serving, "until"), zone) or "now"),
                ("how", _how(serving)),
            ],
            width,
        )
        return _fitted(body + note, width)
    rows = [
        [
            when(get(p, "since"), zone),
            when(get(p, "until"), zone) or "now",
            get(p, "version"),
            get(p, "deployment"),
            get(p, "release"),
            _how(p),
        ]
        for p in items(get(answer, "periods"))
    ]
    if not rows:
        return _fitted(f"nothing has served production for {model}{note}", width)
    headers = ["FROM", "UNTIL", "VERSION", "DEPLOYMENT", "RELEASE", "HOW"]
    return _fitted(
        _section(f"Production history of {model}", table(headers, rows, width), width) + note, width
    )


def _how(period: Any) -> str:
    by = cell(get(period, "by"))
    if get(period, "how") == "restored":
        reason = get(period, "reason")
        return f"restored by a rollback, by {by}" + (f" ({cell(reason)})" if reason else "")
    approved = get(period, "approved_by")
    return f"promoted by {by}" + (f", approved by {cell(approved)}" if approved else "")
