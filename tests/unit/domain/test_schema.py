"""Declared schemas and the evaluation settings: parsed once, with errors that name what is wrong."""

from __future__ import annotations

import json

import pytest

from shared.config import ConfigError, Settings
from shared.domain.decisions.gates import GatePolicy
from shared.domain.validation import ColumnSpec, Schema, SchemaError
from shared.handlers.training import gate_policy


def test_a_declared_schema_reads_shorthand_and_full_column_forms() -> None:
    schema = Schema.from_dict(
        {
            "columns": {
                "age": {"type": "integer", "nullable": False, "min": 0, "max": 120},
                "colour": {"type": "category", "categories": ["red", "blue", 3]},
                "target": "number",
            },
            "formats": ["CSV"],
        }
    )

    assert schema.columns["age"] == ColumnSpec("integer", nullable=False, min=0.0, max=120.0)
    assert schema.columns["colour"].categories == ("3", "blue", "red")
    assert schema.columns["target"] == ColumnSpec("number")
    assert (schema.source, schema.formats, schema.encoding) == ("declared", (".csv",), "utf-8")
    assert schema.kinds() == {"age": "number", "colour": "text", "target": "number"}
    assert Schema.from_dict(schema.as_dict()) == schema


def test_the_first_schemas_plain_mapping_is_read_as_types_only() -> None:
    schema = Schema.from_dict({"age": "number", "city": "text"})

    assert schema.columns == {"age": ColumnSpec("number"), "city": ColumnSpec("text")}
    assert schema.source == "learned"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"columns": {"a": "decimal"}}, "type must be one of"),
        ({"columns": {"a": {"type": "number", "nulable": False}}}, "unknown keys ['nulable']"),
        ({"columns": {"a": {"type": "text", "min": 1}}}, "min/max apply to number"),
        ({"columns": {"a": {"type": "number", "min": 5, "max": 1}}}, "greater than max"),
        ({"columns": {"a": {"type": "number", "max": "high"}}}, "max must be a finite number"),
        ({"columns": {"a": {"type": "category"}}}, "needs a non-empty list of categories"),
        ({"columns": {"a": {"type": "text", "categories": ["x"]}}}, "categories apply to category"),
        ({"columns": {"a": {"type": "number", "nullable": "no"}}}, "nullable must be true or false"),
        ({"columns": {}}, "at least one column"),
        ({"columns": {"a": "number"}, "formats": ["xlsx"]}, "formats ['.xlsx']"),
        ({"columns": {"a": "number"}, "encoding": "klingon"}, "encoding 'klingon' is not known"),
        ({"columns": {"a": "number"}, "colums": {}}, "unknown keys ['colums']"),
    ],
)
def test_a_malformed_schema_is_refused_with_the_reason(raw: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Schema.from_dict(raw)


def test_settings_read_a_declared_schema() -> None:
    declared = {"columns": {"x": {"type": "number", "min": 0}, "target": "number"}}

    settings = Settings.from_env({"MLOPS_SCHEMA": json.dumps(declared)})

    assert settings.data.schema == Schema.from_dict(declared)
    assert Settings.from_env({}).data.schema is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "MLOPS_SCHEMA is not valid JSON"),
        ('{"columns": {"x": "decimal", "target": "number"}}', "MLOPS_SCHEMA: column x: type must be"),
        ('{"columns": {"x": "number"}}', "does not declare the target column 'target'"),
    ],
)
def test_a_bad_declared_schema_fails_loudly_naming_the_setting(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"MLOPS_SCHEMA": value})


def test_evaluation_settings_reach_the_job_config_and_the_gate_policy() -> None:
    settings = Settings.from_env(
        {
            "MLOPS_KEY_COLUMNS": "patient, visit",
            "MLOPS_BOOTSTRAP_RESAMPLES": "2000",
            "MLOPS_CONFIDENCE_LEVEL": "0.9",
            "MLOPS_REQUIRE_SIGNIFICANCE": "false",
            "MLOPS_SECONDARY_TOLERANCE": "0.1",
        }
    )

    config = settings.training.as_job_config()

    assert config["key_columns"] == ["patient", "visit"]
    assert (config["bootstrap_resamples"], config["confidence_level"]) == (2000, 0.9)
    assert gate_policy(settings) == GatePolicy(
        require_significance=False, confidence_level=0.9, secondary_tolerance=0.1
    )


def test_evaluation_settings_have_defaults_and_the_secondary_gate_can_be_switched_off() -> None:
    settings = Settings.from_env({})
    config = settings.training.as_job_config()

    assert (config["key_columns"], config["bootstrap_resamples"], config["confidence_level"]) == (
        None,
        1000,
        0.95,
    )
    assert gate_policy(settings) == GatePolicy()
    assert gate_policy(Settings.from_env({"MLOPS_SECONDARY_TOLERANCE": "off"})).secondary_tolerance is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLOPS_BOOTSTRAP_RESAMPLES", "10"),
        ("MLOPS_BOOTSTRAP_RESAMPLES", "many"),
        ("MLOPS_CONFIDENCE_LEVEL", "1"),
        ("MLOPS_CONFIDENCE_LEVEL", "0.3"),
        ("MLOPS_REQUIRE_SIGNIFICANCE", "maybe"),
        ("MLOPS_SECONDARY_TOLERANCE", "-0.1"),
    ],
)
def test_bad_evaluation_settings_fail_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
