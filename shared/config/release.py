"""How a registered model reaches production: smoke test, approval, shadow, canary, clean-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import BOOLEAN, integer, number, number_or_off, setting


@dataclass(frozen=True)
class ReleaseSettings:
    title: ClassVar[str] = "Releases (approval, smoke test, shadow, canary, clean-up)"

    require_approval: bool = setting(
        "MLOPS_REQUIRE_APPROVAL", "false", BOOLEAN, "Releases wait in `awaiting_approval` before production."
    )
    smoke_test_rows: int = setting(
        "MLOPS_SMOKE_TEST_ROWS", "20", integer(1), "Rows sent to a new deployment by the smoke test."
    )
    smoke_tolerance: float = setting(
        "MLOPS_SMOKE_TOLERANCE",
        "1e-6",
        number(0.0),
        "Largest relative difference between served and offline predictions.",
    )
    latency_slo_ms: float = setting(
        "MLOPS_LATENCY_SLO_MS",
        "500",
        number(1.0),
        "p95 latency a deployment must meet in the smoke test and the canary.",
    )
    canary_percent: int = setting(
        "MLOPS_CANARY_PERCENT",
        "10",
        integer(1, 50),
        "Share of live traffic a new deployment gets during its bake period.",
    )
    canary_seconds: float = setting(
        "MLOPS_CANARY_SECONDS",
        "300",
        number(0.0),
        "Bake period of the canary; 0 promotes straight after the smoke test.",
    )
    canary_max_error_rate: float = setting(
        "MLOPS_CANARY_MAX_ERROR_RATE",
        "0.01",
        number(0.0, 1.0),
        "A canary with a higher live error rate is rolled back.",
    )
    canary_min_requests: int = setting(
        "MLOPS_CANARY_MIN_REQUESTS",
        "20",
        integer(0),
        "Live requests a canary must answer in its bake period before it is promoted; until then it bakes on.",
    )
    canary_max_seconds: float = setting(
        "MLOPS_CANARY_MAX_SECONDS",
        "3600",
        number(0.0),
        "Deadline of a canary's bake: without enough requests (or readable metrics) by then it is rolled back.",
    )
    smoke_warmup_requests: int = setting(
        "MLOPS_SMOKE_WARMUP_REQUESTS",
        "3",
        integer(0),
        "Requests sent to a new deployment, and not measured, before its smoke test (a cold start is no answer).",
    )
    step_timeout_seconds: float = setting(
        "MLOPS_RELEASE_STEP_TIMEOUT_SECONDS",
        "3600",
        number(1.0),
        "Longest a release stays deploying, smoke testing, approved, promoting or rolling back; past it, it is "
        "rolled back (a rollback that long is recorded as stuck).",
    )
    approval_timeout_seconds: float = setting(
        "MLOPS_APPROVAL_TIMEOUT_SECONDS",
        "86400",
        number(1.0),
        "A release not approved within this time expires.",
    )
    keep_deployments: int = setting(
        "MLOPS_KEEP_DEPLOYMENTS",
        "2",
        integer(1),
        "Deployments kept after a promotion (production and the rollback target).",
    )
    shadow_seconds: float = setting(
        "MLOPS_SHADOW_SECONDS",
        "600",
        number(0.0),
        "With a model in production, a new deployment first gets mirrored copies of live requests for this long "
        "(its answers discarded, compared with production's), before its canary. 0 skips the shadow stage.",
    )
    shadow_percent: int = setting(
        "MLOPS_SHADOW_PERCENT",
        "20",
        integer(1, 50),
        "Share of live requests copied to the shadow (Azure mirrors at most 50 %).",
    )
    shadow_min_requests: int = setting(
        "MLOPS_SHADOW_MIN_REQUESTS",
        "20",
        integer(0),
        "Mirrored requests (and rows paired with production's answers) a shadow must have before it is judged.",
    )
    shadow_max_seconds: float = setting(
        "MLOPS_SHADOW_MAX_SECONDS",
        "3600",
        number(0.0),
        "Deadline of a shadow: without enough mirrored requests by then the release is rolled back.",
    )
    shadow_min_agreement: float | None = setting(
        "MLOPS_SHADOW_MIN_AGREEMENT",
        "0.8",
        number_or_off(0.0),
        "Classification: smallest share of mirrored rows on which the shadow answers what production answered; "
        "`off` records it without gating.",
    )
    shadow_max_difference: float | None = setting(
        "MLOPS_SHADOW_MAX_DIFFERENCE",
        "0.25",
        number_or_off(0.0),
        "Regression: largest mean absolute difference between the shadow's and production's answers, relative "
        "to the mean absolute production answer; `off` records it without gating.",
    )
