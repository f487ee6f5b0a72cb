"""Which interpreter serves a model: the project's own, or an environment built from the model's requirements.

An MLflow model lists what it needs in its `requirements.txt` (a team's LightGBM model names lightgbm there), and
Azure ML builds a deployment's environment from that file. Locally the scoring process serves with the
project's interpreter when it already has every package the file asks for, at a version the file admits (every
model of the built-in trainer: it pins the project's own versions), so nothing is built. Otherwise the model is
served from an environment made from that file the way a training project's is (`environments`: a virtual
environment over the project's packages, pip adding what is missing, built once per content under
`MLOPS_HOME/envs/` and reused), so a model serves with the packages it was trained with.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from shared.adapters.local import environments

REQUIREMENTS = "requirements.txt"


def unmet_requirements(model_dir: Path) -> list[str]:
    """The lines of the model's requirements.txt this interpreter does not satisfy: a package not installed,
    one at a version the line excludes, or a line that is not a plain requirement (a path, an option); lines
    whose environment marker does not apply here are skipped. Empty when there is no file."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = Path(model_dir) / REQUIREMENTS
    if not path.is_file():
        return []
    unmet = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            unmet.append(line)  # `-r other.txt`, `./package`, `--index-url ...`: only pip knows
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.url:
            unmet.append(line)  # `name @ url`: whatever is installed under the name may be something else
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(line)
    return unmet


def model_environment(model_dir: Path, home: Path, timeout: float) -> Path:
    """The python of the environment built from the model's requirements.txt (built first if need be, within
    `timeout` seconds); raises environments.EnvironmentBuildError when it cannot be built."""
    return environments.ensure_environment(Path(home), Path(model_dir), REQUIREMENTS, timeout)
