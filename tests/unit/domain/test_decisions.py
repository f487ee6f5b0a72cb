"""Pure decisions: quality gates over an evaluation, and when a coalesced training request may start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.decisions.coalescing import Timing, ready_to_start
from shared.domain.decisions.gates import AbsoluteGate, GatePolicy, decide, parse_absolute_gates


def evaluation(
    challenger: dict[str, float],
    champion: dict[str, float] | None = None,
    primary: str = "rmse",
    greater_is_better: bool = False,
) -> dict[str, Any]:
    return {
        "primary_metric": primary,
        "greater_is_better": greater_is_better,
        "challenger": challenger,
        "champion": champion,
    }


# --- gate specs -----------------------------------------------------------------------------------------------


def test_gate_spec_parses_every_operator_and_spacing() -> None:
    gates = parse_absolute_gates("r2>=0.1, rmse <= 70,mae<5e1 ,  roc_auc>0.5")

    assert gates == (
        AbsoluteGate("r2", ">=", 0.1),
        AbsoluteGate("rmse", "<=", 70.0),
        AbsoluteGate("mae", "<", 50.0),
        AbsoluteGate("roc_auc", ">", 0.5),
    )


def test_an_empty_gate_spec_means_no_absolute_gates() -> None:
    assert parse_absolute_gates("") == ()
    assert parse_absolute_gates(" , ") == ()


@pytest.mark.parametrize(
    "spec", ["r2", "r2=0.1", "r2==0.1", "r2>=", "r2>=high", ">=0.1", "r2>=0.1;rmse<=2", "1r2>=0"]
)
def test_a_bad_gate_spec_raises_value_error(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_absolute_gates(spec)


# --- the first model: absolute gates only ---------------------------------------------------------------------


def test_first_model_passes_when_every_absolute_gate_holds() -> None:
    decision = decide(evaluation({"r2": 0.4, "rmse": 50.0}), parse_absolute_gates("r2>=0.1,rmse<=70"), 0.05)

    assert decision.passed
    assert decision.reasons == []
    assert len(decision.verdicts) == 2  # no comparison without a champion


def test_first_model_fails_an_absolute_gate_with_its_numbers() -> None:
    decision = decide(evaluation({"r2": 0.05, "rmse": 50.0}), parse_absolute_gates("r2>=0.1,rmse<=70"), 0.0)

    assert not decision.passed
    assert decision.reasons == ["r2=0.05 fails r2>=0.1"]


def test_an_absolute_gate_boundary_counts_as_met_for_inclusive_and_failed_for_strict_operators() -> None:
    metrics = evaluation({"r2": 0.1})

    assert decide(metrics, parse_absolute_gates("r2>=0.1"), 0.0).passed
    assert not decide(metrics, parse_absolute_gates("r2>0.1"), 0.0).passed


def test_a_gated_metric_that_was_not_measured_fails_with_a_reason() -> None:
    decision = decide(evaluation({"rmse": 10.0}), parse_absolute_gates("r2>=0.1"), 0.0)

    assert not decision.passed
    assert decision.reasons == ["metric r2 was not measured"]


# --- against a champion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary", "greater_is_better", "challenger", "champion", "passed"),
    [
        ("rmse", False, 9.0, 10.0, True),  # lower error is better
        ("rmse", False, 11.0, 10.0, False),
        ("rmse", False, 10.0, 10.0, False),  # equal is not an improvement
        ("roc_auc", True, 0.85, 0.80, True),
        ("roc_auc", True, 0.75, 0.80, False),
        ("roc_auc", True, 0.80, 0.80, False),
    ],
)
def test_challenger_must_beat_champion_on_the_primary_metric(
    primary: str, greater_is_better: bool, challenger: float, champion: float, passed: bool
) -> None:
    decision = decide(
        evaluation({primary: challenger}, {primary: champion}, primary, greater_is_better), (), 0.0
    )

    assert decision.passed is passed
    [verdict] = decision.verdicts
    assert verdict.passed is passed
    assert (": better by" in verdict.reason) is passed
    assert f"vs champion {champion:.4g}" in verdict.reason


def test_min_improvement_is_relative_to_the_champion() -> None:
    barely = evaluation({"rmse": 9.8}, {"rmse": 10.0})  # 2 % better
    clearly = evaluation({"rmse": 9.0}, {"rmse": 10.0})  # 10 % better

    assert not decide(barely, (), 0.05).passed
    assert decide(clearly, (), 0.05).passed
    assert decide(barely, (), 0.05).verdicts[0].value == pytest.approx(0.02)


def test_improvement_over_a_zero_champion_is_measured_absolutely() -> None:
    decision = decide(evaluation({"mae": 0.5}, {"mae": 0.0}, "mae", False), (), 0.0)

    assert not decision.passed  # worse than a perfect champion, and no division by zero


def test_a_champion_comparison_does_not_replace_the_absolute_gates() -> None:
    decision = decide(
        evaluation({"rmse": 5.0, "r2": 0.01}, {"rmse": 10.0}), parse_absolute_gates("r2>=0.1"), 0.0
    )

    assert not decision.passed
    assert decision.reasons == ["r2=0.01 fails r2>=0.1"]


def test_a_champion_without_the_primary_metric_gives_a_decision_not_an_error() -> None:
    # The training run leaves out a metric it cannot measure on the holdout (say ROC AUC on one class).
    decision = decide(evaluation({"roc_auc": 0.7}, {"accuracy": 0.9}, "roc_auc", True), (), 0.0)

    [verdict] = decision.verdicts
    assert "champion has no roc_auc" in verdict.reason


def test_decision_as_dict_is_plain_json_data() -> None:
    decision = decide(evaluation({"r2": 0.4}), parse_absolute_gates("r2>=0.1"), 0.0)

    assert decision.as_dict() == {
        "passed": True,
        "verdicts": [
            {
                "gate": "r2>=0.1",
                "passed": True,
                "value": 0.4,
                "threshold": 0.1,
                "reason": "r2=0.4 meets r2>=0.1",
            }
        ],
    }


# --- significance and secondary metrics (with a GatePolicy) ---------------------------------------------------

STRICT = GatePolicy(require_significance=True, confidence_level=0.95, secondary_tolerance=0.05)


def compared(
    challenger: dict[str, float],
    champion: dict[str, float],
    ci: tuple[float, float],
    primary: str = "rmse",
    greater_is_better: bool = False,
    level: float = 0.95,
    p_value: float = 0.01,
) -> dict[str, Any]:
    result = evaluation(challenger, champion, primary, greater_is_better)
    result["comparison"] = {
        "metric": primary,
        "difference": challenger[primary] - champion[primary],
        "ci_low": ci[0],
        "ci_high": ci[1],
        "level": level,
        "resamples": 1000,
        "p_value": p_value,
    }
    return result


def verdict(decision, gate_start: str):
    [found] = [v for v in decision.verdicts if v.gate.startswith(gate_start)]
    return found


def test_a_better_point_estimate_without_significance_is_rejected_with_that_reason() -> None:
    decision = decide(
        compared({"rmse": 9.5}, {"rmse": 10.0}, ci=(-1.2, 0.3), p_value=0.31), (), 0.0, policy=STRICT
    )

    assert not decision.passed
    assert verdict(decision, "rmse improves").passed  # better by 5 %: the point estimate alone would pass
    significance = verdict(decision, "rmse improvement significant")
    assert (significance.passed, significance.value, significance.threshold) == (False, 0.3, 0.0)
    assert decision.reasons == [
        "challenger - champion rmse = -0.5 (better), 95% CI [-1.2, +0.3] includes 0, p=0.31: "
        "improvement not significant at 95%"
    ]


@pytest.mark.parametrize(
    ("greater_is_better", "challenger", "ci", "passed"),
    [
        (False, 9.0, (-1.5, -0.2), True),  # lower is better: the whole interval below zero
        (False, 9.0, (-1.5, 0.0), False),  # touching zero is not excluding it
        (True, 0.9, (0.01, 0.2), True),  # higher is better: the whole interval above zero
        (True, 0.9, (-0.01, 0.2), False),
    ],
)
def test_the_interval_must_exclude_zero_on_the_good_side(
    greater_is_better: bool, challenger: float, ci: tuple[float, float], passed: bool
) -> None:
    metric = "roc_auc" if greater_is_better else "rmse"
    champion = 0.8 if greater_is_better else 10.0
    result = compared({metric: challenger}, {metric: champion}, ci, metric, greater_is_better)

    decision = decide(result, (), 0.0, policy=GatePolicy(secondary_tolerance=None))

    assert decision.passed is passed
    assert verdict(decision, f"{metric} improvement significant").value == (
        ci[0] if greater_is_better else ci[1]
    )


def test_an_interval_at_another_level_is_judged_by_its_p_value() -> None:
    result = compared({"rmse": 9.0}, {"rmse": 10.0}, ci=(-1.5, -0.1), level=0.9, p_value=0.07)

    decision = decide(result, (), 0.0, policy=GatePolicy(confidence_level=0.95, secondary_tolerance=None))

    assert not decision.passed
    assert "p=0.07 >= 0.05 (90% CI [-1.5, -0.1])" in decision.reasons[0]


def test_a_champion_comparison_without_a_bootstrap_is_rejected_not_waved_through() -> None:
    decision = decide(evaluation({"rmse": 5.0}, {"rmse": 10.0}), (), 0.0, policy=STRICT)

    assert not decision.passed
    assert decision.reasons == [
        "significance of the rmse difference unknown: the evaluation has no bootstrap comparison of the two models"
    ]


def test_a_comparison_with_no_valid_resample_is_rejected() -> None:
    result = compared({"rmse": 9.0}, {"rmse": 10.0}, ci=(0.0, 0.0))
    result["comparison"].update(ci_low=None, ci_high=None, p_value=None)

    decision = decide(result, (), 0.0, policy=STRICT)

    assert decision.reasons == ["no bootstrap interval for rmse: no resample was valid"]


def test_significance_is_not_required_when_the_policy_says_so() -> None:
    result = compared({"rmse": 9.5}, {"rmse": 10.0}, ci=(-1.2, 0.3))

    decision = decide(
        result, (), 0.0, policy=GatePolicy(require_significance=False, secondary_tolerance=None)
    )

    assert decision.passed
    assert [v.gate for v in decision.verdicts] == ["rmse improves on champion by more than 0.00%"]


def test_a_secondary_metric_worse_than_the_tolerance_rejects_with_its_numbers() -> None:
    result = compared(
        {"rmse": 9.0, "mae": 5.5, "r2": 0.52},
        {"rmse": 10.0, "mae": 5.0, "r2": 0.5},
        ci=(-1.5, -0.5),
    )

    decision = decide(result, (), 0.0, policy=STRICT)

    assert not decision.passed
    mae = verdict(decision, "mae no worse")
    assert (mae.passed, mae.value, mae.threshold) == (False, pytest.approx(-0.1), -0.05)
    assert decision.reasons == [
        "challenger mae=5.5 vs champion 5: worse by 10.00%, beyond the 5.00% tolerance"
    ]
    r2 = verdict(decision, "r2 no worse")
    assert r2.passed and r2.value == pytest.approx(0.04)


def test_a_secondary_metric_within_the_tolerance_passes() -> None:
    result = compared({"rmse": 9.0, "mae": 5.2}, {"rmse": 10.0, "mae": 5.0}, ci=(-1.5, -0.5))

    assert decide(result, (), 0.0, policy=STRICT).passed
    assert not decide(result, (), 0.0, policy=GatePolicy(secondary_tolerance=0.01)).passed


def test_secondary_directions_come_from_the_evaluation_when_it_states_them() -> None:
    result = compared(
        {"roc_auc": 0.9, "log_loss": 0.3, "accuracy": 0.85},
        {"roc_auc": 0.8, "log_loss": 0.4, "accuracy": 0.86},
        ci=(0.05, 0.15),
        primary="roc_auc",
        greater_is_better=True,
    )
    result["metric_directions"] = {"roc_auc": "maximize", "log_loss": "minimize", "accuracy": "maximize"}

    decision = decide(result, (), 0.0, policy=STRICT)

    assert decision.passed, decision.reasons
    assert verdict(decision, "log_loss no worse").value == pytest.approx(0.25)  # lower loss: 25 % better


def test_the_first_model_faces_the_absolute_gates_only_whatever_the_policy() -> None:
    decision = decide(
        evaluation({"rmse": 50.0, "r2": 0.3}), parse_absolute_gates("r2>=0.1"), 0.5, policy=STRICT
    )

    assert decision.passed
    assert [v.gate for v in decision.verdicts] == ["r2>=0.1"]


def test_without_a_policy_decide_behaves_as_it_always_did() -> None:
    result = compared({"rmse": 9.5, "mae": 9.0}, {"rmse": 10.0, "mae": 5.0}, ci=(-1.2, 0.3))

    decision = decide(result, (), 0.0)

    assert decision.passed
    assert len(decision.verdicts) == 1


def test_every_verdict_is_recorded_as_plain_data_with_its_numbers() -> None:
    result = compared({"rmse": 9.5, "mae": 5.0}, {"rmse": 10.0, "mae": 5.0}, ci=(-1.2, 0.3))

    recorded = decide(result, parse_absolute_gates("rmse<=20"), 0.0, policy=STRICT).as_dict()

    assert [v["gate"] for v in recorded["verdicts"]] == [
        "rmse<=20",
        "rmse improves on champion by more than 0.00%",
        "rmse improvement significant at 95%",
        "mae no worse than champion by more than 5.00%",
    ]
    assert all(set(v) == {"gate", "passed", "value", "threshold", "reason"} for v in recorded["verdicts"])
    assert [v["passed"] for v in recorded["verdicts"]] == [True, True, False, True]


# --- coalescing -----------------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
TIMING = Timing(quiet_period_seconds=60, max_wait_seconds=900)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_request_waits_for_the_quiet_period_after_its_last_cause() -> None:
    assert not ready_to_start(opened_at=at(0), updated_at=at(0), now=at(59), timing=TIMING)
    assert ready_to_start(opened_at=at(0), updated_at=at(0), now=at(60), timing=TIMING)


def test_each_new_cause_restarts_the_quiet_period() -> None:
    assert not ready_to_start(opened_at=at(0), updated_at=at(50), now=at(100), timing=TIMING)
    assert ready_to_start(opened_at=at(0), updated_at=at(50), now=at(110), timing=TIMING)


def test_a_request_starts_after_the_maximum_wait_even_if_causes_keep_coming() -> None:
    assert not ready_to_start(opened_at=at(0), updated_at=at(890), now=at(899), timing=TIMING)
    assert ready_to_start(opened_at=at(0), updated_at=at(890), now=at(900), timing=TIMING)


def test_no_quiet_period_starts_at_once() -> None:
    assert ready_to_start(at(0), at(0), at(0), Timing(quiet_period_seconds=0, max_wait_seconds=900))
