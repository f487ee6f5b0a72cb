"""The router's live statistics: counts, error rate and p95 per deployment, per second, within retention."""

from __future__ import annotations

import math

import pytest

from shared.host.endpoint.stats import LIVE, MIRROR, LiveStats, bin_upper_ms, latency_bin

EMPTY = {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None}


class Clock:
    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_p95_is_the_95th_percentile_at_most_one_bin_above() -> None:
    stats = LiveStats(clock=Clock())
    for ms in range(1, 101):
        stats.record("one", LIVE, ms <= 90, float(ms))

    summary = stats.summary("one", 60)

    assert (summary["requests"], summary["errors"], summary["error_rate"]) == (100, 10, 0.1)
    assert 95.0 <= summary["p95_ms"] <= 95.0 * 1.02
    assert summary["mirror"] == EMPTY


@pytest.mark.parametrize("ms", [0.0, 0.005, 0.01, 0.5, 1.0, 7.3, 180.0, 999.9, 60_000.0])
def test_a_latency_falls_in_a_bin_whose_upper_edge_is_at_most_2_percent_above(ms: float) -> None:
    upper = bin_upper_ms(latency_bin(ms))
    assert upper >= ms or math.isclose(upper, ms)
    assert upper <= max(ms, 0.01) * 1.02 + 1e-12


def test_live_answers_and_mirrored_copies_are_counted_apart() -> None:
    stats = LiveStats(clock=Clock())
    stats.record("green", MIRROR, True, 5.0)
    stats.record("green", MIRROR, False, 7.0)
    stats.record("blue", LIVE, True, 3.0)

    green = stats.summary("green", 60)

    assert (green["requests"], green["p95_ms"]) == (0, None)
    assert (green["mirror"]["requests"], green["mirror"]["errors"], green["mirror"]["error_rate"]) == (
        2,
        1,
        0.5,
    )
    assert stats.summary("blue", 60)["requests"] == 1
    assert stats.summary("never-deployed", 60) == {**EMPTY, "mirror": EMPTY}


def test_the_window_counts_whole_seconds_back_from_now() -> None:
    clock = Clock(1000.5)
    stats = LiveStats(clock=clock)
    stats.record("one", LIVE, True, 1.0)  # second 1000
    clock.now = 1003.2
    stats.record("one", LIVE, True, 1.0)  # second 1003

    assert stats.summary("one", 0)["requests"] == 1  # this second only
    assert stats.summary("one", 2.0)["requests"] == 1  # from 1001.2: seconds 1001 to 1003
    assert stats.summary("one", 2.5)["requests"] == 2  # from 1000.7: the second it starts in counts


def test_old_seconds_are_dropped_after_the_retention() -> None:
    clock = Clock(5000.0)
    stats = LiveStats(retention=10, clock=clock)
    stats.record("one", LIVE, False, 1.0)
    clock.now += 11
    stats.record("other", LIVE, True, 1.0)  # a new second prunes every deployment's old ones

    assert stats.summary("one", 3600)["requests"] == 0  # never further back than the retention
    assert stats._data["one"][LIVE] == {}  # and the memory is freed


def test_forget_starts_a_deployment_clean() -> None:
    stats = LiveStats(clock=Clock())
    stats.record("one", LIVE, False, 1.0)

    stats.forget("one")
    stats.forget("never-recorded")

    assert stats.summary("one", 60)["requests"] == 0


@pytest.mark.parametrize("since", [-1.0, float("nan")])
def test_a_window_must_not_be_negative(since: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        LiveStats().summary("one", since)
