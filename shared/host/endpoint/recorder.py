"""The local endpoint's data collector: every answered request, written in Azure ML's layout, off the request path.

`record` only puts the raw request and answer on a bounded queue (a full queue drops and counts). One writer
thread, owned by the recorder and started and stopped with the router, parses them into `model_inputs` and
`model_outputs` records and writes one JSON-lines blob per deployment, collection and hour for each batch. A
write that fails (storage down) drops that batch, counts it and logs it; scoring never waits for storage and
memory never holds more than the queue. Copies mirrored to a shadow deployment are recorded as such.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain import capture
from shared.domain.capture import CapturedRecord

log = logging.getLogger(__name__)

QUEUE_RECORDS = 10_000
BATCH_RECORDS = 500
BATCH_SECONDS = 1.0

Sink = Callable[[str, bytes], None]  # blob name, JSON lines


@dataclass(frozen=True)
class Exchange:
    """One answered request, as the front end saw it."""

    deployment: str
    model_version: str
    correlation_id: str
    at: datetime
    request: bytes
    answer: bytes
    mirrored: bool = False


@dataclass
class RecorderCounts:
    recorded: int = 0  # requests written
    dropped: int = 0  # requests lost: queue full or storage refused the write
    unreadable: int = 0  # requests whose body or answer was not rows (nothing to record)
    failed_writes: int = 0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class TrafficRecorder:
    def __init__(
        self,
        endpoint: str,
        sink: Sink,
        source: str = "",
        queue_records: int = QUEUE_RECORDS,
        batch_records: int = BATCH_RECORDS,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self._sink = sink
        self._source = source or f"/local/onlineEndpoints/{endpoint}"
        self._queue: queue.Queue[Exchange] = queue.Queue(maxsize=queue_records)
        self._batch_records = batch_records
        self._batch_seconds = batch_seconds
        self.counts = RecorderCounts()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, exchange: Exchange) -> None:
        """Queue one answered request; never blocks the caller."""
        try:
            self._queue.put_nowait(exchange)
        except queue.Full:
            self.counts.add(dropped=1)
            if self.counts.dropped % 1000 == 1:
                log.warning("capture queue full; requests dropped", extra={"dropped": self.counts.dropped})

    def start(self) -> TrafficRecorder:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"capture-{self.endpoint}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout=30)
        self._thread = None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests, the demo); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while not (self._stopping.is_set() and self._queue.empty()):
            batch = self._next_batch()
            if batch:
                try:
                    self._write(batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()

    def _next_batch(self) -> list[Exchange]:
        batch: list[Exchange] = []
        deadline = time.monotonic() + self._batch_seconds
        while len(batch) < self._batch_records:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (self._stopping.is_set() and self._queue.empty()):
                break
            try:
                batch.append(self._queue.get(timeout=min(timeout, 0.1)))
            except queue.Empty:
                continue
        return batch

    def _write(self, batch: list[Exchange]) -> None:
        """One outputs blob and one inputs blob per deployment and hour of the batch; the answers first, so a
        reader that sees a request's inputs finds its answer, and inputs are not written without theirs."""
        groups: dict[tuple[str, str], dict[str, list[bytes]]] = {}
        instance = uuid.uuid4().hex
        for exchange in batch:
            records = _records(exchange)
            if records is None:
                self.counts.add(unreadable=1)
                continue
            source = f"{self._source}/deployments/{exchange.deployment}"
            group = groups.setdefault((exchange.deployment, f"{exchange.at:%Y%m%d%H}"), {})
            for record in records:
                name = capture.blob_path(
                    self.endpoint, exchange.deployment, record.collection, exchange.at, instance
                )
                group.setdefault(name, []).append(capture.encode(record, source))
        for group in groups.values():
            outputs, inputs = sorted(group, key=lambda name: f"/{capture.INPUTS}/" in name)
            requests = len(group[inputs])
            try:
                self._sink(outputs, b"".join(group[outputs]))
                self._sink(inputs, b"".join(group[inputs]))
            except Exception as error:  # storage is another service: scoring goes on, the loss is counted
                self.counts.add(dropped=requests, failed_writes=1)
                self.counts.last_error = f"{type(error).__name__}: {error}"[:300]
                log.warning(
                    "capture write failed; requests dropped",
                    extra={"blob": inputs, "dropped": requests, "error": self.counts.last_error},
                )
            else:
                self.counts.add(recorded=requests)


def _records(exchange: Exchange) -> tuple[CapturedRecord, CapturedRecord] | None:
    """The input rows and the answers of one request, or None when they are not rows answered one by one."""
    try:
        body = json.loads(exchange.request)
        answer = json.loads(exchange.answer)
        data = body["input_data"]
        columns, rows = data["columns"], data["data"]
        inputs = tuple(dict(zip(columns, row, strict=True)) for row in rows)
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(answer, list) or len(answer) != len(inputs):
        return None
    outputs = tuple(a if isinstance(a, dict) else {capture.PREDICTION: a} for a in answer)
    common = {
        "correlation_id": exchange.correlation_id,
        "time": exchange.at,
        "deployment": exchange.deployment,
        "model_version": exchange.model_version,
        "mirrored": exchange.mirrored,
    }
    return (
        CapturedRecord(capture.INPUTS, rows=inputs, **common),
        CapturedRecord(capture.OUTPUTS, rows=outputs, **common),
    )


def now() -> datetime:
    return datetime.now(UTC)
