"""Event Grid's delivery semantics, locally: routing (event types, subject and advanced filters), at-least-once,
retries with back-off, dead letters."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.host.routing import Subscription
from shared.ports import BlobStore

log = logging.getLogger(__name__)


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    subscription: Subscription = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(default=1, compare=False)
    errors: list[str] = field(default_factory=list, compare=False)


class Dispatcher:
    """Routes published events to subscriptions and delivers them on worker threads."""

    def __init__(
        self,
        subscriptions: tuple[Subscription, ...],
        deliver: Callable[[str, Mapping[str, Any]], None],
        blobs: BlobStore,
        deadletter_container: str,
        retry_seconds: tuple[float, ...],
        workers: int = 4,
    ) -> None:
        self._subscriptions = subscriptions
        self._deliver = deliver
        self._blobs = blobs
        self._deadletter = deadletter_container
        self._retry_seconds = retry_seconds
        self._queue: list[Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"delivery-{i}", daemon=True) for i in range(workers)
        ]
        self.delivered = 0
        self.dead_lettered = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def publish(self, topic: str, events: list[dict[str, Any]]) -> int:
        """Accept events published to a topic; returns how many deliveries were queued."""
        queued = 0
        with self._cond:
            for event in events:
                for subscription in self._subscriptions:
                    if subscription.matches(topic, event):
                        heapq.heappush(
                            self._queue, Delivery(time.monotonic(), next(self._seq), subscription, event)
                        )
                        queued += 1
            self._cond.notify_all()
        if not queued:
            log.info("no subscription for published events", extra={"topic": topic, "count": len(events)})
        return queued

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead-lettered event, with its id (`subscription/event id`), reason and attempt count."""
        letters = []
        for info in self._blobs.list(self._deadletter):
            blob = self._blobs.read(self._deadletter, info.name)
            if blob is not None:
                letters.append({"id": info.name.removesuffix(".json"), **json.loads(blob.data)})
        return letters

    def replay(self, letter_id: str) -> bool:
        """Deliver a dead-lettered event again, to its subscription only; False if there is no such letter."""
        name = f"{letter_id}.json"
        blob = self._blobs.read(self._deadletter, name)
        if blob is None:
            return False
        record = json.loads(blob.data)
        subscription = next((s for s in self._subscriptions if s.name == record["subscription"]), None)
        if subscription is None:
            return False
        with self._cond:
            heapq.heappush(
                self._queue, Delivery(time.monotonic(), next(self._seq), subscription, record["event"])
            )
            self._cond.notify_all()
        self._blobs.delete(self._deadletter, name, if_match=blob.info.etag)
        return True

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and self._busy == 0

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._queue[0].due > time.monotonic()):
                    timeout = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                delivery = heapq.heappop(self._queue)
                self._busy += 1
            try:
                self._attempt(delivery)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        try:
            self._deliver(delivery.subscription.function, delivery.event)
        except Exception as error:
            delivery.errors.append(f"attempt {delivery.attempt}: {type(error).__name__}: {error}")
            # A failing function answers 500, which Event Grid always retries until attempts run out.
            if delivery.attempt > len(self._retry_seconds):
                self._dead_letter(delivery, error)
                return
            delay = self._retry_seconds[delivery.attempt - 1]
            with self._cond:
                delivery.attempt += 1
                delivery.due = time.monotonic() + delay
                heapq.heappush(self._queue, delivery)
                self._cond.notify_all()
            return
        with self._cond:
            self.delivered += 1

    def _dead_letter(self, delivery: Delivery, error: Exception) -> None:
        event_id = str(delivery.event.get("id", "unknown"))
        record = {
            "event": delivery.event,
            "subscription": delivery.subscription.name,
            "function": delivery.subscription.function,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded",
            "deliveryAttempts": delivery.attempt,
            "lastDeliveryOutcome": f"{type(error).__name__}: {error}",
            "errors": delivery.errors,
            "deadLetteredAt": datetime.now(UTC).isoformat(),
        }
        name = f"{delivery.subscription.name}/{event_id}.json"
        self._blobs.write(self._deadletter, name, json.dumps(record, indent=1, default=str).encode())
        log.error(
            "event dead-lettered", extra={"event_id": event_id, "function": delivery.subscription.function}
        )
        with self._cond:
            self.dead_lettered += 1
