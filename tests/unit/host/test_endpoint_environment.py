"""Which models the project's interpreter serves as it is, and which need an environment of their own."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from shared.host.endpoint.environment import unmet_requirements

PANDAS = metadata.version("pandas")


def _model(tmp_path: Path, *lines: str) -> Path:
    (tmp_path / "requirements.txt").write_text("".join(f"{line}\n" for line in lines))
    return tmp_path


def test_a_model_pinning_the_projects_own_versions_needs_nothing(tmp_path: Path) -> None:
    versions = [f"{n}=={metadata.version(n)}" for n in ("mlflow", "scikit-learn", "pandas", "numpy")]
    model = _model(tmp_path, *versions, "cloudpickle", "# a comment", "")

    assert unmet_requirements(model) == []


def test_a_model_without_a_requirements_file_needs_nothing(tmp_path: Path) -> None:
    assert unmet_requirements(tmp_path) == []


@pytest.mark.parametrize(
    "line",
    [
        "no-such-package-for-mlops-tests==1.0",  # not installed here
        f"pandas!={PANDAS}",  # installed, at a version the model excludes
        "pandas<1",
        "./vendored/package",  # a path: only pip knows what it holds
        "-r more-requirements.txt",
        "pandas @ https://example.invalid/pandas-0.1-py3-none-any.whl",  # a url, whatever is installed
    ],
)
def test_what_the_project_does_not_satisfy_is_named(tmp_path: Path, line: str) -> None:
    model = _model(tmp_path, f"pandas=={PANDAS}", line)

    assert unmet_requirements(model) == [line]


def test_a_requirement_whose_marker_does_not_apply_here_is_skipped(tmp_path: Path) -> None:
    model = _model(tmp_path, 'no-such-package-for-mlops-tests; python_version < "3"')

    assert unmet_requirements(model) == []
