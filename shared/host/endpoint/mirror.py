"""The workers that send mirrored copies of requests, owned by one router and stopped with it.

Copies are fire-and-forget: a slow mirror deployment fills the bounded queue, and further copies are dropped
(and counted) rather than piling up threads or delaying the live answers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

WORKERS = 4
QUEUE_SIZE = 64

Job = Callable[[], None]


class MirrorPool:
    def __init__(self, name: str, workers: int = WORKERS, size: int = QUEUE_SIZE) -> None:
        self._name = name
        self._workers = workers
        self._queue: queue.Queue[Job | None] = queue.Queue(size)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.dropped = 0

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._threads = [
                threading.Thread(target=self._run, name=f"{self._name}-mirror-{i}", daemon=True)
                for i in range(self._workers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Drop the copies not yet sent and end the workers once their copy in flight is done."""
        with self._lock:
            threads, self._threads = self._threads, []
        if not threads:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in threads:
            self._queue.put(None)  # one end marker per worker; the queue was just emptied, so they fit
        for thread in threads:
            thread.join(timeout)

    def submit(self, job: Job) -> bool:
        """Queue a copy; False (dropped) when the queue is full or the pool is not running."""
        if not self._threads:
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # one failed copy must not end the worker
                logger.exception("mirror copy failed", extra={"endpoint": self._name})
