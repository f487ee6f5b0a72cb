"""What production served, read back from the inference container in the data collector's layout.

`served_rows` joins each request's input rows to its answers by correlation id, hour folder by hour folder, so
memory holds one hour of one deployment at a time, never the whole window. Copies mirrored to a shadow
deployment are skipped: they were never anybody's answer. Lines that are not collector records and inputs
without answers are counted, not fatal (a crashed writer, a hand-made file).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain import capture
from shared.ports import BlobStore


@dataclass(frozen=True)
class ServedRow:
    """One row a deployment answered: its id (what late labels name), when, the input and the answer."""

    row_id: str
    time: datetime
    deployment: str
    model_version: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class ReadCounts:
    """What a read skipped, so a check can say what it did not see."""

    blobs: int = 0
    records: int = 0
    unparsed_lines: int = 0
    unanswered_rows: int = 0
    mirrored_records: int = 0
    probe_records: int = 0  # the platform's own requests (smoke tests, scoring the drift reference)
    problems: list[str] = field(default_factory=list)  # the first few, for the audit log

    def note(self, problem: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(problem)


def deployments(blobs: BlobStore, container: str, endpoint: str) -> list[str]:
    """The deployments that have captured traffic under `endpoint`."""
    prefix = f"{capture.ROOT}/{endpoint}/"
    found = {info.name[len(prefix) :].split("/", 1)[0] for info in blobs.list(container, prefix)}
    return sorted(found)


def hour_rows(blobs: BlobStore, container: str, endpoint: str, deployment: str) -> dict[datetime, int]:
    """Input rows per hour folder that `deployment` was asked to answer (mirrored copies not counted)."""
    counts: dict[datetime, int] = {}
    ignored = ReadCounts()
    for info in blobs.list(container, capture.folder(endpoint, deployment, capture.INPUTS)):
        path = capture.parse_path(info.name)
        if path is None:
            continue
        rows = sum(
            len(r.rows) for r in _records(blobs, container, info.name, capture.INPUTS, deployment, ignored)
        )
        counts[path.hour] = counts.get(path.hour, 0) + rows
    return counts


def served_rows(
    blobs: BlobStore,
    container: str,
    endpoint: str,
    deployment_names: Sequence[str],
    since: datetime,
    until: datetime | None = None,
    counts: ReadCounts | None = None,
    mirrored: bool = False,
) -> Iterator[ServedRow]:
    """Rows served by `deployment_names` from `since` (inclusive) to `until` (exclusive), oldest hour first.
    `mirrored`: the rows a shadow answered instead (every record but probes: Azure's collector does not mark a
    shadow's copies, and a shadow serves no live traffic)."""
    counts = counts if counts is not None else ReadCounts()
    for deployment in deployment_names:
        hours = _hours(blobs, container, endpoint, deployment, since, until)
        for hour in sorted(hours):
            yield from _join(blobs, container, deployment, hours[hour], since, until, counts, mirrored)


def _hours(
    blobs: BlobStore, container: str, endpoint: str, deployment: str, since: datetime, until: datetime | None
) -> dict[datetime, dict[str, list[str]]]:
    """Blob names per hour folder and collection. An answer logged just after the hour turned lands in the next
    folder, so each hour's outputs are joined with the next hour's too."""
    first = since.replace(minute=0, second=0, microsecond=0)
    hours: dict[datetime, dict[str, list[str]]] = {}
    for collection in capture.COLLECTIONS:
        for info in blobs.list(container, capture.folder(endpoint, deployment, collection)):
            path = capture.parse_path(info.name)
            if path is None or path.hour < first or (until is not None and path.hour >= until):
                continue
            hours.setdefault(path.hour, {c: [] for c in capture.COLLECTIONS})[collection].append(info.name)
    for hour, names in hours.items():
        later = hours.get(hour + timedelta(hours=1))
        names["next_outputs"] = list(later[capture.OUTPUTS]) if later else []
    return hours


def _join(
    blobs: BlobStore,
    container: str,
    deployment: str,
    names: dict[str, list[str]],
    since: datetime,
    until: datetime | None,
    counts: ReadCounts,
    mirrored: bool = False,
) -> Iterator[ServedRow]:
    answers: dict[str, capture.CapturedRecord] = {}
    for name in names[capture.OUTPUTS] + names["next_outputs"]:
        for record in _records(
            blobs, container, name, capture.OUTPUTS, deployment, counts, count=False, mirrored=mirrored
        ):
            answers.setdefault(record.correlation_id, record)
    for name in names[capture.INPUTS]:
        for record in _records(blobs, container, name, capture.INPUTS, deployment, counts, mirrored=mirrored):
            if record.time < since or (until is not None and record.time >= until):
                continue
            answer = answers.get(record.correlation_id)
            if answer is None or len(answer.rows) != len(record.rows):
                counts.unanswered_rows += len(record.rows)
                continue
            for index, (row, out) in enumerate(zip(record.rows, answer.rows, strict=True)):
                yield ServedRow(
                    row_id=capture.row_id(record.correlation_id, index, len(record.rows)),
                    time=record.time,
                    deployment=deployment,
                    model_version=record.model_version or answer.model_version,
                    inputs=row,
                    outputs=out,
                )


def _records(
    blobs: BlobStore,
    container: str,
    name: str,
    collection: str,
    deployment: str,
    counts: ReadCounts,
    count: bool = True,
    mirrored: bool = False,
) -> Iterator[capture.CapturedRecord]:
    blob = blobs.read(container, name)
    if blob is None:
        return  # removed by retention between the listing and the read
    parsed = capture.decode(blob.data, collection, deployment)
    if count:
        counts.blobs += 1
    counts.unparsed_lines += len(parsed.problems)
    for problem in parsed.problems[:2]:
        counts.note(f"{name}: {problem}")
    for record in parsed.records:
        if record.mirrored and not mirrored:
            counts.mirrored_records += count
            continue
        if capture.is_probe(record.correlation_id):
            counts.probe_records += count
            continue
        counts.records += count
        yield record
