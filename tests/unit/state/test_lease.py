"""The one lease context: who may change a record, and what leaving it (normally, with an error, by dying)
leaves behind for the next worker and for the audit log."""

from __future__ import annotations

import dataclasses

import pytest

from shared.ports import PreconditionFailed
from shared.state import keys
from shared.state.lease import LEASE_SECONDS, LeaseLost, decision, lease, needs_attention
from shared.state.records import Release, ReleaseStatus
from shared.testing.faults import InjectedCrash
from tests.builders import actions
from tests.fakes import FakeDeps, make_deps

KEY = keys.release("m-v1")
RELEASE = Release("m-v1", "m", "1", "model-v1", ReleaseStatus.DEPLOYING, "evt-1")


def _created(deps: FakeDeps) -> None:
    with lease(
        deps, KEY, create=lambda: (RELEASE, (decision("t", "deployment.started", "m-v1", "k:started"),))
    ):
        pass


def test_an_absent_record_is_not_leased_unless_created() -> None:
    deps = make_deps()

    with lease(deps, KEY) as held:
        assert held is None
    assert deps.state.get(KEY) is None


def test_create_builds_the_record_only_when_it_is_absent() -> None:
    deps = make_deps()
    _created(deps)
    built = []

    with lease(deps, KEY, create=lambda: built.append(1) or (RELEASE, ())) as held:
        assert held is not None and held.record == RELEASE

    assert built == []
    assert [e.action for e in actions(deps, "deployment.started")] == ["deployment.started"]


def test_a_live_lease_keeps_a_second_worker_out_until_it_expires() -> None:
    deps = make_deps()
    _created(deps)

    with pytest.raises(PreconditionFailed), lease(deps, KEY) as first:  # its late give-back loses
        assert first is not None
        with lease(deps, KEY) as second:
            assert second is None
        deps.clock.advance(LEASE_SECONDS + 1)
        with lease(deps, KEY) as third:
            assert third is not None  # the first worker is presumed dead


def test_leaving_records_the_outbox_once_and_frees_the_lease() -> None:
    deps = make_deps()
    _created(deps)

    with lease(deps, KEY) as held:
        assert held is not None
        held.change(
            dataclasses.replace(RELEASE, status=ReleaseStatus.SMOKE_TESTING),
            decision("t", "a", "m-v1", "k:a"),
        )
        assert actions(deps, "a") == []  # queued, not yet recorded

    stored = deps.state.get(KEY)
    assert stored.record.status is ReleaseStatus.SMOKE_TESTING
    assert stored.lease is None and stored.outbox == ()
    assert len(actions(deps, "a")) == 1
    assert not needs_attention(stored, deps.clock())


def test_an_error_gives_the_lease_back_and_keeps_the_decisions_for_the_audit_log() -> None:
    deps = make_deps()
    _created(deps)

    with pytest.raises(RuntimeError, match="deployment refused"), lease(deps, KEY) as held:
        held.change(RELEASE, decision("t", "b", "m-v1", "k:b"))
        raise RuntimeError("deployment refused")

    stored = deps.state.get(KEY)
    assert stored.lease is None  # the retry the error causes may take over at once
    assert [d.action for d in stored.outbox] == ["b"]
    assert needs_attention(stored, deps.clock())
    with lease(deps, KEY):
        pass
    assert len(actions(deps, "b")) == 1


def test_a_worker_that_dies_leaves_its_lease_to_expire() -> None:
    deps = make_deps()
    _created(deps)

    with pytest.raises(InjectedCrash), lease(deps, KEY):
        raise InjectedCrash("killed")

    stored = deps.state.get(KEY)
    assert stored.lease is not None
    assert not needs_attention(stored, deps.clock())
    deps.clock.advance(LEASE_SECONDS + 1)
    assert needs_attention(deps.state.get(KEY), deps.clock())


def test_a_change_after_another_writer_took_over_fails_instead_of_overwriting() -> None:
    deps = make_deps()
    _created(deps)

    with pytest.raises(PreconditionFailed), lease(deps, KEY) as held:
        deps.clock.advance(LEASE_SECONDS + 1)
        with lease(deps, KEY) as other:
            other.change(dataclasses.replace(RELEASE, status=ReleaseStatus.ROLLING_BACK))
        held.change(dataclasses.replace(RELEASE, status=ReleaseStatus.PRODUCTION))

    assert deps.state.get(KEY).record.status is ReleaseStatus.ROLLING_BACK


def _fail_once(deps: FakeDeps, message: str = "boom") -> None:
    with pytest.raises(RuntimeError), lease(deps, KEY) as held:
        assert held is not None
        raise RuntimeError(message)


def test_a_record_that_keeps_failing_is_set_aside_as_stuck_with_an_audit_entry() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="3")
    _created(deps)

    for attempt in range(3):
        _fail_once(deps, f"boom {attempt}")

    stored = deps.state.get(KEY)
    assert stored is not None and stored.stuck is not None and stored.lease is None
    assert "failed 3 times" in stored.stuck.reason and "boom 2" in stored.stuck.reason
    [entry] = actions(deps, "record.stuck")
    assert entry.subject == "releases/m-v1" and entry.detail["attempts"] == 3
    with lease(deps, KEY) as held:
        assert held is None  # no delivery or tick takes it again
    assert not needs_attention(stored, deps.clock())


def test_a_success_clears_the_count_so_only_failures_in_a_row_set_a_record_aside() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="3")
    _created(deps)

    for _ in range(4):
        _fail_once(deps)
        _fail_once(deps)
        with lease(deps, KEY) as held:
            assert held is not None

    stored = deps.state.get(KEY)
    assert stored is not None and stored.stuck is None and stored.failures is None


def test_a_worker_that_dies_holding_the_lease_counts_as_a_failed_attempt() -> None:
    from shared.state.lease import _acquire

    deps = make_deps(MLOPS_MAX_ATTEMPTS="2")
    _created(deps)
    for _ in range(2):  # a worker takes the lease and dies: nothing gives it back
        assert _acquire(deps, KEY, None) is not None
        deps.clock.advance(LEASE_SECONDS + 1)

    with lease(deps, KEY) as held:
        assert held is None

    stored = deps.state.get(KEY)
    assert stored is not None and stored.stuck is not None
    assert "stopped before finishing" in stored.stuck.reason


def test_a_record_failing_past_the_deadline_is_set_aside_even_with_few_attempts() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="100", MLOPS_STUCK_AFTER_SECONDS="3600")
    _created(deps)
    _fail_once(deps)
    deps.clock.advance(3601)
    _fail_once(deps)

    stored = deps.state.get(KEY)
    assert stored is not None and stored.stuck is not None and stored.stuck.attempts == 2


def test_a_stuck_record_released_by_an_operator_is_handled_again() -> None:
    from shared.state.lease import release_stuck

    deps = make_deps(MLOPS_MAX_ATTEMPTS="1")
    _created(deps)
    _fail_once(deps)
    assert release_stuck(deps, KEY, "operator") is True
    assert release_stuck(deps, KEY, "operator") is False

    with lease(deps, KEY) as held:
        assert held is not None
    assert [e.actor for e in actions(deps, "record.released")] == ["operator"]


def test_renewing_keeps_a_slow_worker_s_lease_past_the_first_expiry() -> None:
    deps = make_deps()
    _created(deps)

    with lease(deps, KEY) as held:
        deps.clock.advance(LEASE_SECONDS - 10)
        held.renew()  # right before a slow external call
        deps.clock.advance(LEASE_SECONDS - 10)
        with lease(deps, KEY) as other:
            assert other is None  # without the renewal the lease would have expired 100 s ago
        held.change(dataclasses.replace(RELEASE, status=ReleaseStatus.SMOKE_TESTING))

    assert deps.state.get(KEY).record.status is ReleaseStatus.SMOKE_TESTING


def test_renewing_a_lease_another_worker_took_over_stops_the_slow_worker() -> None:
    deps = make_deps()
    _created(deps)

    with pytest.raises(LeaseLost), lease(deps, KEY) as held:
        deps.clock.advance(LEASE_SECONDS + 1)  # slow: the lease expired
        with lease(deps, KEY) as other:
            other.change(dataclasses.replace(RELEASE, status=ReleaseStatus.ROLLING_BACK))
        held.renew()
        raise AssertionError("a worker that lost its lease went on")

    stored = deps.state.get(KEY)
    assert stored.record.status is ReleaseStatus.ROLLING_BACK and stored.lease is None
