"""Kill every handler right after each of its side effects: redelivery and reconcile must reach the same end
state as a run without the fault, and every invariant must hold."""

from __future__ import annotations

import pytest

from shared.testing import faults, invariants
from tests.fakes import make_deps
from tests.scenario import prepare, recover, snapshot, steps


def _run(crash_step: str | None = None, after: int = 0) -> tuple[dict, list[str], bool]:
    deps = make_deps(MLOPS_QUIET_PERIOD_SECONDS="10")
    prepare(deps)
    crashed = False
    for name, step in steps(deps):
        if name == crash_step:
            faulty, _ = faults.inject(deps, after)
            try:
                step(faulty)
            except faults.InjectedCrash:
                crashed = True
        else:
            step(deps)
        recover(deps, step)
    return snapshot(deps), invariants.check(deps), crashed


REFERENCE, REFERENCE_PROBLEMS, _ = _run()


def test_the_fault_free_run_reaches_production_and_keeps_every_invariant() -> None:
    assert REFERENCE_PROBLEMS == []
    assert REFERENCE["state"]["production/mlops-model.json"]["record"]["version"] == "1"
    assert REFERENCE["blobs"]["quarantine"] == ["bad.csv", "bad.csv.reason.json"]


def _effects_of(step_name: str) -> int:
    """How many side effects the step makes when nothing goes wrong."""
    deps = make_deps(MLOPS_QUIET_PERIOD_SECONDS="10")
    prepare(deps)
    for name, step in steps(deps):
        if name == step_name:
            faulty, fault = faults.inject(deps, after=10_000)
            step(faulty)
            return fault.effects
        step(deps)
        recover(deps, step)
    raise AssertionError(step_name)


CASES = [(name, k) for name, _ in steps(make_deps()) for k in range(1, _effects_of(name) + 1)]


@pytest.mark.parametrize(("step_name", "after"), CASES, ids=[f"{n}-after-{k}" for n, k in CASES])
def test_a_crash_after_any_side_effect_changes_nothing_in_the_end(step_name: str, after: int) -> None:
    end, problems, crashed = _run(step_name, after)
    assert crashed
    assert problems == []
    assert end == REFERENCE
