"""The adapters' quicker answer to azure-ai-ml's experimental-warning question is the SDK's own answer."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from shared.adapters.azure import sdk

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


@pytest.fixture()
def experimental() -> ModuleType:
    from azure.ai.ml._utils import _experimental  # imported here, as the adapters do: it costs seconds

    return _experimental


@pytest.fixture()
def sdk_check(experimental: ModuleType) -> Iterator[Callable[[], bool]]:
    """The SDK's own check (from a fresh copy of its module: the adapters may have replaced it in this process
    already), with the quick one installed for the test; the warning cache emptied."""
    spec = importlib.util.find_spec(experimental.__name__)
    assert spec is not None and spec.loader is not None
    pristine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pristine)
    installed = experimental._should_skip_warning
    sdk.quicken_experimental_check()
    cached = set(experimental._warning_cache)
    experimental._warning_cache.clear()
    try:
        yield pristine._should_skip_warning
    finally:
        experimental._should_skip_warning = installed
        experimental._warning_cache.clear()
        experimental._warning_cache.update(cached)


def _from_rest_object(ask: Callable[[], bool]) -> bool:
    return _nested(ask)


def _nested(ask: Callable[[], bool]) -> bool:
    return ask()


def test_both_checks_skip_the_warning_exactly_below_a_rest_conversion(
    sdk_check: Callable[[], bool], experimental: ModuleType
) -> None:
    assert experimental._should_skip_warning is sdk.called_from_rest_conversion
    assert _from_rest_object(sdk_check) is _from_rest_object(sdk.called_from_rest_conversion) is True
    assert _nested(sdk_check) is _nested(sdk.called_from_rest_conversion) is False


def test_an_experimental_entity_built_by_hand_warns_once_and_one_read_from_rest_does_not(
    sdk_check: Callable[[], bool], experimental: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.ai.ml.entities import DataCollector, DeploymentCollection

    def warned() -> list[str]:
        return [r.getMessage().split(":")[0] for r in caplog.records]

    with caplog.at_level(logging.WARNING, logger=experimental.module_logger.name):
        DataCollector(collections={"model_inputs": DeploymentCollection(enabled="true")})
        built = DataCollector(collections={})
        assert sorted(warned()) == ["Class DataCollector", "Class DeploymentCollection"]  # once each
        rest = built._to_rest_object()
        caplog.clear()
        experimental._warning_cache.clear()
        DataCollector._from_rest_object(rest)
        assert warned() == []  # read back from REST: no warning, as the SDK's own check decides


def test_installing_it_twice_or_on_an_sdk_without_the_helper_changes_nothing_else(
    sdk_check: Callable[[], bool], experimental: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk.quicken_experimental_check()
    assert experimental._should_skip_warning is sdk.called_from_rest_conversion
    monkeypatch.delattr(experimental, "_should_skip_warning")
    sdk.quicken_experimental_check()
    assert not hasattr(experimental, "_should_skip_warning")
