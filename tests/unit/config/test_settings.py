"""The declarations are the single source: every setting parses its default into its field's type, bad text
fails naming the setting, each attribute path leads to the value, and the machinery refuses a name twice."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared.config import SETTINGS, TASK_DEFAULTS, ConfigError, Setting, Settings
from shared.config.declare import declared, integer, load, raw_values, setting
from shared.domain.validation import Schema
from tests.contract.azure_stub import AZURE_SETTINGS


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _is(value: Any, hint: Any) -> bool:
    """isinstance for the hints the settings use: classes, `X | None`, `tuple[float, ...]`, `dict`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        (item, _) = typing.get_args(hint)
        return isinstance(value, tuple) and all(isinstance(v, item) for v in value)
    return isinstance(value, origin or hint)


def _hints() -> dict[str, Any]:
    """The type hint of each setting's field, by setting name."""
    found: dict[str, Any] = {}

    def walk(cls: type) -> None:
        hints = typing.get_type_hints(cls, localns={"Schema": Schema})
        for f in fields(cls):
            if "mlops.setting" in f.metadata:
                found[f.metadata["mlops.setting"].name] = hints[f.name]
            elif "mlops.group" in f.metadata:
                walk(f.metadata["mlops.group"].cls)

    walk(Settings)
    return found


AZURE_BACKEND = {"MLOPS_BACKEND": "azure"}


def _on_azure(s: Setting) -> bool:
    return s.attribute.startswith("azure.")


def test_every_setting_is_an_mlops_name_declared_once_with_help() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) > 70
    assert all(name.startswith("MLOPS_") for name in names)
    assert all(s.help.endswith(".") and s.group for s in SETTINGS)


def test_each_default_parses_into_its_fields_type(monkeypatch: pytest.MonkeyPatch) -> None:
    hints = _hints()
    assert set(hints) == {s.name for s in SETTINGS}
    # the azure group is read only for the azure backend: parse its defaults as the settings object would
    settings = Settings.from_env({})
    for s in SETTINGS:
        value = s.parse(s.name, s.default)
        assert _is(value, hints[s.name]), f"{s.name}: {value!r} is not a {hints[s.name]}"
        if not _on_azure(s):
            assert _is(_at(settings, s.attribute), hints[s.name])


def test_each_attribute_path_holds_the_value_of_its_setting() -> None:
    # a distinct value per free-text setting, so that a path leading to another setting's value shows
    env = {
        s.name: f"value-{number}"
        for number, s in enumerate(SETTINGS)
        if s.parse.allowed == "text"
        and s.name
        not in (
            "MLOPS_TARGET_COLUMN",
            "MLOPS_EVENTS_ENDPOINT",
            "MLOPS_TRAINING_COMMAND",  # a template checked with its code folder (test_training_code.py)
            "MLOPS_TRAINING_ENVIRONMENT",
        )
    }
    local = Settings.from_env(env)
    assert {s.attribute: _at(local, s.attribute) for s in SETTINGS if s.name in env and not _on_azure(s)} == {
        s.attribute: env[s.name] for s in SETTINGS if s.name in env and not _on_azure(s)
    }
    assert local.raw == raw_values(Settings, env)
    azure = Settings.from_env({**env, **AZURE_SETTINGS})
    assert {s.attribute: _at(azure, s.attribute) for s in SETTINGS if _on_azure(s)} == {
        s.attribute: s.parse(s.name, azure.raw[s.name]) for s in SETTINGS if _on_azure(s)
    }


@pytest.mark.parametrize(
    "name", [s.name for s in SETTINGS if s.parse.allowed.split()[0] in ("integer", "number", "numbers")]
)
def test_a_number_setting_rejects_text_naming_itself(name: str) -> None:
    env = AZURE_BACKEND if name.startswith("MLOPS_AZURE_") else {}
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**env, name: "lots"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLOPS_CANARY_PERCENT", "51"),
        ("MLOPS_CANARY_PERCENT", "0"),
        ("MLOPS_AZURITE_PORT", "65536"),
        ("MLOPS_DRIFT_SHARE", "1.5"),
        ("MLOPS_LOCAL_RETRY_SECONDS", "2,-1"),
        ("MLOPS_SECONDARY_TOLERANCE", "-0.1"),
        ("MLOPS_DRIFT_CHUNK_ROWS", "99"),
    ],
)
def test_a_value_out_of_its_declared_range_is_named_with_the_range(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{name}=.* is out of range \["):
        Settings.from_env({name: value})


def test_the_azure_group_is_read_only_for_the_azure_backend() -> None:
    local = Settings.from_env({"MLOPS_AZURE_INSTANCE_COUNT": "many"})
    assert local.azure is None and local.raw["MLOPS_AZURE_INSTANCE_COUNT"] == "many"
    with pytest.raises(ConfigError, match="MLOPS_AZURE_INSTANCE_COUNT must be a whole number"):
        Settings.from_env({**AZURE_BACKEND, "MLOPS_AZURE_INSTANCE_COUNT": "many"})


@pytest.mark.parametrize("task", sorted(TASK_DEFAULTS))
def test_empty_metric_estimator_and_gates_take_the_tasks_defaults(task: str) -> None:
    settings = Settings.from_env({"MLOPS_TASK": task.upper()})
    defaults = TASK_DEFAULTS[task]
    assert (settings.training.task, settings.training.primary_metric) == (task, defaults["primary_metric"])
    assert settings.training.estimator == defaults["estimator"]
    assert settings.gates.absolute == defaults["absolute_gates"]
    chosen = Settings.from_env(
        {"MLOPS_TASK": task, "MLOPS_PRIMARY_METRIC": "r2", "MLOPS_ABSOLUTE_GATES": "r2>=0"}
    )
    assert (chosen.training.primary_metric, chosen.gates.absolute) == ("r2", "r2>=0")


def test_the_events_endpoint_defaults_to_the_local_hosts_ingress() -> None:
    settings = Settings.from_env({"MLOPS_HOST_URL": "http://127.0.0.1:9999/"})
    assert settings.local.host_url == "http://127.0.0.1:9999"
    assert settings.events.endpoint == "http://127.0.0.1:9999/runtime/topics/mlops/api/events"
    assert Settings.from_env({"MLOPS_EVENTS_ENDPOINT": "https://x/api"}).events.endpoint == "https://x/api"


def test_the_home_folder_is_an_absolute_path(tmp_path: Path) -> None:
    assert Settings.from_env({"MLOPS_HOME": str(tmp_path / "x" / "..")}).home == tmp_path


def test_a_group_loads_on_its_own_and_a_name_declared_twice_is_refused() -> None:
    @dataclass(frozen=True)
    class Twice:
        title: ClassVar[str] = "Twice"
        first: int = setting("MLOPS_TEST_TWICE", "1", integer(0), "First.")
        second: int = setting("MLOPS_TEST_TWICE", "2", integer(0), "Second.")

    @dataclass(frozen=True)
    class Once:
        title: ClassVar[str] = "Once"
        only: int = setting("MLOPS_TEST_ONCE", "1", integer(0, 9), "Only.")

    assert load(Once, raw_values(Once, {"MLOPS_TEST_ONCE": "7"})) == Once(only=7)
    assert load(Once, raw_values(Once, {})).only == 1
    with pytest.raises(TypeError, match="MLOPS_TEST_TWICE more than once"):
        declared(Twice)
