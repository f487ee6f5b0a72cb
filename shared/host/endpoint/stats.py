"""What each deployment answered, in memory in the router: requests, errors and a latency histogram per second.

The router is the only process that sees the answers, so it is the only one that counts them; everyone else
asks it (`GET /admin/stats/<deployment>`). Live answers and mirrored copies are counted apart.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LIVE = "live"
MIRROR = "mirror"
RETENTION_SECONDS = 3600
# Latencies are kept as log-spaced histogram bins (2 % wide): a second's buckets stay small under load, and
# a reported p95 is at most 2 % above the true one, never below.
_LATENCY_BASE_MS = 0.01
_LATENCY_RATIO = 1.02


def latency_bin(ms: float) -> int:
    if ms <= _LATENCY_BASE_MS:
        return 0
    # The small epsilon keeps a latency exactly on a bin edge in that bin despite rounding in log().
    return math.ceil(math.log(ms / _LATENCY_BASE_MS) / math.log(_LATENCY_RATIO) - 1e-9)


def bin_upper_ms(index: int) -> float:
    return _LATENCY_BASE_MS * _LATENCY_RATIO**index


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    latencies: Counter[int] = field(default_factory=Counter)


def empty_summary() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None}


def _summarize(buckets: list[_Bucket]) -> dict[str, Any]:
    summary = empty_summary()
    histogram: Counter[int] = Counter()
    for bucket in buckets:
        summary["requests"] += bucket.requests
        summary["errors"] += bucket.errors
        histogram.update(bucket.latencies)
    if summary["requests"]:
        summary["error_rate"] = summary["errors"] / summary["requests"]
    if histogram:
        rank = math.ceil(0.95 * sum(histogram.values()))  # nearest-rank percentile
        seen = 0
        for index in sorted(histogram):
            seen += histogram[index]
            if seen >= rank:
                summary["p95_ms"] = round(bin_upper_ms(index), 2)
                break
    return summary


class LiveStats:
    """Per deployment, per kind (live or mirror), per epoch second: requests, errors, latency bins.

    Seconds older than `retention` are dropped as new ones arrive, so memory is bounded by the number of
    deployments times the retention, whatever the load. `clock` is the wall clock (tests pass their own).
    """

    def __init__(self, retention: float = RETENTION_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.retention = retention
        self._clock = clock
        self._lock = threading.Lock()
        # deployment -> kind -> epoch second -> bucket
        self._data: dict[str, dict[str, dict[int, _Bucket]]] = {}
        self._pruned_at = 0

    def record(self, deployment: str, kind: str, ok: bool, latency_ms: float) -> None:
        second = int(self._clock())
        with self._lock:
            seconds = self._data.setdefault(deployment, {}).setdefault(kind, {})
            bucket = seconds.get(second)
            if bucket is None:
                bucket = seconds[second] = _Bucket()
            bucket.requests += 1
            bucket.errors += 0 if ok else 1
            bucket.latencies[latency_bin(latency_ms)] += 1
            if second != self._pruned_at:  # at most once a second
                self._prune(second)

    def summary(self, deployment: str, since_seconds: float) -> dict[str, Any]:
        """`{"requests", "errors", "error_rate", "p95_ms", "mirror": {the same}}` over the last `since_seconds`
        (whole seconds: the second the window starts in counts), at most `retention` back."""
        if not since_seconds >= 0:  # NaN too
            raise ValueError(f"since_seconds must not be negative, got {since_seconds!r}")
        now = self._clock()
        cutoff = max(math.floor(now - since_seconds), math.floor(now - self.retention))
        with self._lock:
            kinds = self._data.get(deployment, {})
            live = [b for s, b in kinds.get(LIVE, {}).items() if s >= cutoff]
            mirror = [b for s, b in kinds.get(MIRROR, {}).items() if s >= cutoff]
            summary = _summarize(live)
            summary["mirror"] = _summarize(mirror)
        return summary

    def forget(self, deployment: str) -> None:
        """Drop a deployment's history, so a deployment re-created under the same name starts clean."""
        with self._lock:
            self._data.pop(deployment, None)

    def _prune(self, now: int) -> None:
        self._pruned_at = now
        oldest = now - self.retention
        for kinds in self._data.values():
            for seconds in kinds.values():
                for second in [s for s in seconds if s < oldest]:
                    del seconds[second]
