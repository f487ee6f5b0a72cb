"""The labels store: accepted true values, filed by the deployment and hour that served their rows.

    labels/{deployment}/{yyyy}/{MM}/{dd}/{HH}/{accepted at}-{file sha256[:16]}.jsonl

in the datasets container, each line `{"id": <row id>, "value": <true value>}`. A label file's labels are
matched to served rows when it lands, so each goes to the folder of the hour its row was served in; the
quality check, reading the served rows of a deployment hour by hour, keeps only a few hours of labels in
memory. A later file's value for the same row wins (names sort by acceptance time): a correction.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.ports import BlobStore, PreconditionFailed

PREFIX = "labels/"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_CACHED_HOURS = 3  # rows of one hour may be joined with the next hour's answers: keep a few hours at hand


@dataclass(frozen=True)
class Label:
    value: object
    accepted_at: datetime


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def folder(deployment: str, hour: datetime) -> str:
    return f"{PREFIX}{deployment}/{hour_of(hour):%Y/%m/%d/%H}/"


def write(
    blobs: BlobStore,
    container: str,
    accepted_at: datetime,
    sha256: str,
    by_hour: Mapping[tuple[str, datetime], Iterable[tuple[str, object]]],
) -> tuple[str, ...]:
    """File one accepted label file's labels, (deployment, hour) -> [(row id, value)]; returns the blobs.
    Names derive from the file, so writing again (a resumed handler) stores nothing twice."""
    names = []
    stamp = accepted_at.astimezone(UTC).strftime(_STAMP)
    for (deployment, hour), labels in sorted(by_hour.items()):
        name = f"{folder(deployment, hour)}{stamp}-{sha256[:16]}.jsonl"
        lines = "".join(json.dumps({"id": i, "value": v}, separators=(",", ":")) + "\n" for i, v in labels)
        with contextlib.suppress(PreconditionFailed):  # written by an earlier attempt: same name, same labels
            blobs.write(
                container, name, lines.encode(), content_type="application/x-ndjson", if_none_match=True
            )
        names.append(name)
    return tuple(names)


class Lookup:
    """The labels of one deployment's rows, read an hour folder at a time as the rows ask for them."""

    def __init__(self, blobs: BlobStore, container: str, deployment: str) -> None:
        self._blobs = blobs
        self._container = container
        self._names: dict[str, list[str]] = {}
        for info in blobs.list(container, f"{PREFIX}{deployment}/"):
            hour_folder, _, _ = info.name.rpartition("/")
            self._names.setdefault(hour_folder + "/", []).append(info.name)
        self._deployment = deployment
        self._loaded: OrderedDict[str, dict[str, Label]] = OrderedDict()
        self._last_hour: datetime | None = None
        self._last_folder = ""

    def get(self, row_id: str, served_at: datetime) -> Label | None:
        hour = hour_of(served_at)
        if hour != self._last_hour:  # rows come hour by hour: name the folder once per hour
            self._last_hour, self._last_folder = hour, folder(self._deployment, hour)
        return self._hour(self._last_folder).get(row_id)

    def _hour(self, name: str) -> dict[str, Label]:
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        labels: dict[str, Label] = {}
        for blob_name in sorted(self._names.get(name, [])):  # oldest acceptance first: later ones win
            blob = self._blobs.read(self._container, blob_name)
            if blob is None:
                continue
            accepted_at = _accepted_at(blob_name)
            for line in blob.data.splitlines():
                entry = json.loads(line)
                labels[str(entry["id"])] = Label(entry["value"], accepted_at)
        self._loaded[name] = labels
        while len(self._loaded) > _CACHED_HOURS:
            self._loaded.popitem(last=False)
        return labels


def _accepted_at(name: str) -> datetime:
    stamp = name.rsplit("/", 1)[-1].split("-", 1)[0]
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
