"""A fairness limit that could never apply is refused when the settings are read, not passed silently."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.config.declare import ConfigError


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"MLOPS_FAIRNESS_MAX_DIFFERENCE": "0.1"}, "MLOPS_SENSITIVE_COLUMN names the column"),
        ({"MLOPS_FAIRNESS_MAX_DIFFERENCE": "0.1", "MLOPS_SENSITIVE_COLUMN": "sex"}, "binary tasks only"),
    ],
)
def test_a_fairness_limit_needs_a_sensitive_column_on_a_binary_task(env: dict, refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        Settings.from_env(env)


def test_slices_and_fairness_are_read_as_declared() -> None:
    env = {
        "MLOPS_TASK": "binary",
        "MLOPS_SLICE_COLUMNS": "region, age",
        "MLOPS_SENSITIVE_COLUMN": "sex",
        "MLOPS_FAIRNESS_MAX_DIFFERENCE": "0.1",
        "MLOPS_SLICE_TOLERANCE": "off",
    }
    slices = Settings.from_env(env).slices
    assert slices.columns == ("region", "age") and slices.tolerance is None
    assert slices.as_job_config() == {
        "slice_columns": ["region", "age"],
        "slice_min_rows": 30,
        "sensitive_column": "sex",
    }
