"""Production traffic as Azure ML's data collector writes it, so one drift and quality check reads both backends.

Layout (in the inference container; in Azure a datastore of it is the collector's destination):

    modelDataCollector/{endpoint}/{deployment}/{collection}/{yyyy}/{MM}/{dd}/{HH}/{instance}.jsonl

with the collections `model_inputs` and `model_outputs`. Each line is one JSON object in the collector's
CloudEvents-style record format: `specversion`, `id`, `source`, `type` (`azureml.inference.<collection>`),
`datacontenttype`, `time`, `data` (the rows, as records `[{column: value}, ...]`), `correlationid`,
`xrequestid`, `modelversion`, `collectdatatype`, `agent`. The local endpoint adds `mirrored: true` on the
copies it mirrors to a shadow deployment, which never count as production traffic.

Inputs and outputs of one request share a `correlationid`; the n-th output row answers the n-th input row. A
row's id is `<correlationid>` for a request of one row, else `<correlationid>:<n>` (what late labels name).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ROOT = "modelDataCollector"
INPUTS = "model_inputs"
OUTPUTS = "model_outputs"
COLLECTIONS = (INPUTS, OUTPUTS)
AGENT = "mlops-functions/local-endpoint"
PREDICTION = "prediction"  # the output column of a model that answers one value per row
# The platform's own requests (smoke tests, scoring the drift reference) carry ids with this prefix: they are
# no production traffic, and every reader of captured traffic leaves them out.
PROBE_PREFIX = "mlops-probe-"
PROBE_HEADER = "x-ms-client-request-id"

_PATH = re.compile(
    rf"^{ROOT}/(?P<endpoint>[^/]+)/(?P<deployment>[^/]+)/(?P<collection>{INPUTS}|{OUTPUTS})/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/[^/]+\.jsonl$"
)


@dataclass(frozen=True)
class CapturePath:
    """Where a blob of captured traffic sits: whose traffic, which collection, which hour."""

    endpoint: str
    deployment: str
    collection: str
    hour: datetime


@dataclass(frozen=True)
class CapturedRecord:
    """One request's rows (inputs) or answers (outputs), as the data collector records it."""

    collection: str
    correlation_id: str
    time: datetime
    rows: tuple[dict[str, Any], ...]
    deployment: str = ""
    model_version: str = ""
    mirrored: bool = False


@dataclass
class ParsedLines:
    records: list[CapturedRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # lines that are not collector records, with why


def folder(endpoint: str, deployment: str, collection: str) -> str:
    return f"{ROOT}/{endpoint}/{deployment}/{collection}/"


def blob_path(endpoint: str, deployment: str, collection: str, at: datetime, instance: str) -> str:
    hour = at.astimezone(UTC)
    return f"{folder(endpoint, deployment, collection)}{hour:%Y/%m/%d/%H}/{instance}.jsonl"


def parse_path(name: str) -> CapturePath | None:
    """The parts of a collector blob's name, or None for any other blob."""
    found = _PATH.match(name)
    if found is None:
        return None
    try:
        hour = datetime(int(found["y"]), int(found["m"]), int(found["d"]), int(found["h"]), tzinfo=UTC)
    except ValueError:
        return None
    return CapturePath(found["endpoint"], found["deployment"], found["collection"], hour)


def probe_id() -> str:
    import uuid

    return f"{PROBE_PREFIX}{uuid.uuid4().hex}"


def is_probe(correlation_id: str) -> bool:
    return correlation_id.startswith(PROBE_PREFIX)


def row_id(correlation_id: str, index: int, rows: int) -> str:
    return correlation_id if rows == 1 else f"{correlation_id}:{index}"


def encode(record: CapturedRecord, source: str) -> bytes:
    """One JSON line in the collector's record format (non-finite numbers become null, as JSON has none)."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{record.correlation_id}-{record.collection}",
        "source": source,
        "type": f"azureml.inference.{record.collection}",
        "datacontenttype": "application/json",
        "time": record.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": [{k: _finite(v) for k, v in row.items()} for row in record.rows],
        "correlationid": record.correlation_id,
        "xrequestid": record.correlation_id,
        "modelversion": record.model_version or "default",
        "collectdatatype": "pandas.core.frame.DataFrame",
        "agent": AGENT,
    }
    if record.mirrored:
        body["mirrored"] = True
    return json.dumps(body, separators=(",", ":"), allow_nan=False, default=str).encode() + b"\n"


def decode(data: bytes, collection: str, deployment: str = "") -> ParsedLines:
    """The records of one collector blob; a line that is not a record is a problem, never an exception."""
    parsed = ParsedLines()
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed.records.append(_record(json.loads(line), collection, deployment))
        except (ValueError, TypeError, KeyError) as error:
            parsed.problems.append(f"line {number}: {error}"[:300])
    return parsed


def rows_of(records: list[CapturedRecord]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row id, row) for every row of the records."""
    for record in records:
        for index, row in enumerate(record.rows):
            yield row_id(record.correlation_id, index, len(record.rows)), row


def _record(raw: Any, collection: str, deployment: str) -> CapturedRecord:
    if not isinstance(raw, dict):
        raise TypeError("a record is a JSON object")
    correlation = raw.get("correlationid") or raw.get("xrequestid")
    if not isinstance(correlation, str) or not correlation:
        raise KeyError("no correlationid")
    rows = raw.get("data")
    if isinstance(rows, dict):  # one row logged as an object
        rows = [rows]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise TypeError("data is not a list of row objects")
    time = raw.get("time")
    if not isinstance(time, str):
        raise TypeError("time is not a timestamp")
    at = datetime.fromisoformat(time.replace("Z", "+00:00"))
    return CapturedRecord(
        collection=collection,
        correlation_id=correlation,
        time=at if at.tzinfo else at.replace(tzinfo=UTC),
        rows=tuple(rows),
        deployment=deployment,
        model_version=str(raw.get("modelversion") or ""),
        mirrored=raw.get("mirrored") is True,
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
