"""A model that needs a package the project lacks is served from an environment built from its requirements.txt,
as Azure ML builds a deployment's environment from an MLflow model's; one whose environment cannot be built
fails its deployment with the reason. Real router, scoring processes, venv and pip; the package is a tiny
project installed by path (no package index)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from shared.adapters.local.endpoint import LocalEndpoint
from shared.host.endpoint.router import Router
from shared.ports import ModelVersion
from shared.testing.packages import local_package
from tests.integration.endpoint_support import pid, wait_until_settled

pytestmark = pytest.mark.integration

MODEL_CODE = """
import mlflow


class Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        import mlops_served_probe  # only in the model's own environment

        return [float(mlops_served_probe.VERSION) + x for x in model_input["x"]]


mlflow.models.set_model(Model())
"""


def _save(folder: Path, requirements: list[str]) -> Path:
    import mlflow.pyfunc

    code = folder.parent / f"{folder.name}.py"
    code.write_text(MODEL_CODE)
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["mlflow"])
    (folder / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements))
    return folder


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalEndpoint, Router]]:
    root = tmp_path_factory.mktemp("served")
    probe = local_package(root / "probe", "mlops-served-probe", "7.0")
    models = {
        "needs-probe": _save(root / "needs-probe", ["mlflow", str(probe)]),
        "cannot-build": _save(root / "cannot-build", ["mlflow", str(root / "no-such-package")]),
    }
    router = Router("environments", root / "home", "127.0.0.1", 0).start()
    client = LocalEndpoint(router.url)
    try:
        for version, (name, folder) in enumerate(models.items(), start=1):
            client.begin_deployment(name, ModelVersion("m", str(version), {}, str(folder)))
        wait_until_settled(client, list(models))
        yield client, router
    finally:
        router.stop()


def test_a_model_needing_a_package_the_project_lacks_serves_from_its_own_environment(
    endpoint: tuple[LocalEndpoint, Router],
) -> None:
    client, router = endpoint
    deployment = client.deployment("needs-probe")
    assert deployment is not None and deployment.state == "Succeeded", deployment

    answer = requests.post(
        f"{router.url}/score",
        json={"input_data": {"columns": ["x"], "index": [0, 1], "data": [[1.0], [2.5]]}},
        headers={"azureml-model-deployment": "needs-probe"},
        timeout=30,
    )

    assert answer.status_code == 200 and answer.json() == [8.0, 9.5]
    # the process the router started (same pid), now running on the environment's python
    python = Path(psutil.Process(pid(router, "needs-probe")).cmdline()[0])
    built = [p for p in (router.home / "envs").iterdir() if p.is_dir()]
    assert built == [python.parent.parent] and python.name == "python"


def test_a_model_whose_environment_cannot_be_built_fails_its_deployment_with_why(
    endpoint: tuple[LocalEndpoint, Router],
) -> None:
    client, _ = endpoint
    deployment = client.deployment("cannot-build")

    assert deployment is not None and deployment.state == "Failed"
    assert "could not build the environment of the model" in deployment.detail
    assert "no-such-package" in deployment.detail
