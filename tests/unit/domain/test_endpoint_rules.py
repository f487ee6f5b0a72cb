"""Azure's managed online endpoint rules, as every backend enforces them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import endpoint_rules as rules


@pytest.mark.parametrize("name", ["abc", "model-v1", "A1-b2", "a" * 32, "mlops-model"])
def test_names_azure_accepts(name: str) -> None:
    assert rules.name_problem("deployment", name) is None
    rules.validate_name("deployment", name)


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 33, "1model", "-model", "model-", "model_v1", "model.v1", "mödel", "", "a/b", "model v1"],
)
def test_names_azure_refuses(name: str) -> None:
    problem = rules.name_problem("endpoint", name)
    assert problem is not None and problem.startswith("invalid endpoint name") and repr(name) in problem
    with pytest.raises(ValueError, match="invalid deployment name"):
        rules.validate_name("deployment", name)


def test_a_name_must_be_a_string() -> None:
    assert rules.name_problem("deployment", 123) is not None  # type: ignore[arg-type]


def test_traffic_is_completed_with_zero_shares() -> None:
    assert rules.validate_traffic({"blue": 100}, {"blue", "green"}) == {"blue": 100, "green": 0}
    assert rules.validate_traffic({}, {"blue"}) == {"blue": 0}
    assert rules.validate_traffic({"blue": 90, "green": 10}, {"blue", "green"}) == {"blue": 90, "green": 10}


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"blue": 50}, "sum to 0 or 100"),
        ({"blue": 101, "green": -1}, "from 0 to 100"),
        ({"nope": 100}, "unknown deployments"),
        ({"blue": True}, "from 0 to 100"),
        ({"blue": 100.0}, "from 0 to 100"),
        ({"blue": "100"}, "from 0 to 100"),
    ],
)
def test_invalid_traffic_is_refused(traffic: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.validate_traffic(traffic, {"blue", "green"})


def test_mirror_keeps_the_mirrored_share_and_drops_zero_shares() -> None:
    traffic = {"blue": 100, "green": 0, "red": 0}
    assert rules.validate_mirror({"green": 50}, traffic) == {"green": 50}
    assert rules.validate_mirror({"green": 10, "red": 0}, traffic) == {"green": 10}
    assert rules.validate_mirror({"green": 0}, traffic) == {}
    assert rules.validate_mirror({}, traffic) == {}


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ({"green": 51}, "from 0 to 50"),
        ({"green": -1}, "from 0 to 50"),
        ({"green": 10.0}, "from 0 to 50"),
        ({"green": True}, "from 0 to 50"),
        ({"nope": 10}, "unknown deployments"),
        ({"green": 10, "red": 10}, "one deployment only"),
        ({"blue": 10}, "live or mirror traffic, not both"),
    ],
)
def test_invalid_mirror_is_refused(mirror: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.validate_mirror(mirror, {"blue": 100, "green": 0, "red": 0})


def test_live_traffic_ends_a_deployments_mirroring() -> None:
    assert rules.mirror_after_traffic({"green": 20}, {"blue": 100, "green": 0}) == {"green": 20}
    assert rules.mirror_after_traffic({"green": 20}, {"blue": 90, "green": 10}) == {}
    # A mirror naming a deployment the endpoint no longer has is no mirror.
    assert rules.mirror_after_traffic({"gone": 20}, {"blue": 100}) == {}


def test_a_deployment_with_live_traffic_cannot_be_deleted() -> None:
    rules.check_deletable("green", {"blue": 100, "green": 0})
    rules.check_deletable("unknown", {"blue": 100})
    with pytest.raises(ValueError, match="takes 100 % of the traffic"):
        rules.check_deletable("blue", {"blue": 100, "green": 0})
