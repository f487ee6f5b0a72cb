"""The local endpoint against real scoring processes: deploy, route, fail, stop.

The models are deployed once for the module: loading one takes a few seconds, and every test here only needs
them running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.local.endpoint import EndpointError, EndpointServer, LocalEndpoint
from shared.ports import Deployment, ModelVersion

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["a", "b"]
ROWS = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Deployed:
    endpoint: LocalEndpoint
    server: EndpointServer
    models: dict[str, Any]
    sources: dict[str, Path]
    begin_seconds: float
    first_states: dict[str, str]


def _train(coef_a: float, coef_b: float, intercept: float) -> Any:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    features = pd.DataFrame([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 3.0], [4.0, 1.0]], columns=COLUMNS)
    target = coef_a * features["a"] + coef_b * features["b"] + intercept
    return LinearRegression().fit(features, target)


def _save(model: Any, path: Path) -> Path:
    import mlflow.sklearn

    # Explicit requirements: inferring them would import and probe the model for seconds.
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
    return path


def _expected(model: Any) -> list[float]:
    import pandas as pd

    return model.predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()


def _request(rows: list[list[float]] = ROWS) -> dict[str, Any]:
    return {"input_data": {"columns": COLUMNS, "index": list(range(len(rows))), "data": rows}}


def _wait_until_settled(endpoint: LocalEndpoint, names: list[str]) -> dict[str, Deployment]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        observed = {name: endpoint.deployment(name) for name in names}
        if all(d is not None and d.state != "Creating" for d in observed.values()):
            return observed  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"deployments still creating after {READY_TIMEOUT_SECONDS} s: {observed}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _state(endpoint: LocalEndpoint) -> dict[str, Any]:
    path = endpoint.home / "endpoints" / f"{endpoint.name}.json"
    return json.loads(path.read_text()) if path.exists() else {"deployments": {}, "traffic": {}}


def _pids(endpoint: LocalEndpoint) -> list[int]:
    return [entry["pid"] for entry in _state(endpoint)["deployments"].values()]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("endpoint")
    models = {"blue": _train(2.0, -1.0, 0.5), "green": _train(-1.0, 3.0, 0.0)}
    sources = {name: _save(model, root / "models" / name) for name, model in models.items()}
    # A folder without an MLmodel file: MLflow cannot load it, as with a half-copied artifact.
    sources["broken"] = root / "models" / "broken"
    sources["broken"].mkdir(parents=True)

    endpoint = LocalEndpoint("test-endpoint", root / "home")
    server = EndpointServer(endpoint, "127.0.0.1", 0)
    try:
        started = time.monotonic()
        endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(sources["blue"])))
        endpoint.begin_deployment("green", ModelVersion("m", "2", {}, sources["green"].as_uri()))
        endpoint.begin_deployment("broken", ModelVersion("m", "3", {}, str(sources["broken"])))
        begin_seconds = time.monotonic() - started
        first_states = {d.name: d.state for d in endpoint.deployments()}
        _wait_until_settled(endpoint, ["blue", "green", "broken"])
        server.start()
        yield Deployed(endpoint, server, models, sources, begin_seconds, first_states)
    finally:
        server.stop()
        pids = _pids(endpoint)
        endpoint.stop_all()
        assert not [pid for pid in pids if _alive(pid)], "scoring processes outlived stop_all"


@pytest.fixture
def endpoint(deployed: Deployed) -> Iterator[LocalEndpoint]:
    deployed.endpoint.set_traffic({})
    yield deployed.endpoint
    deployed.endpoint.set_traffic({})


def test_begin_deployment_returns_at_once_and_reports_creating(deployed: Deployed) -> None:
    assert deployed.begin_seconds < 1.0
    assert deployed.first_states == {"blue": "Creating", "green": "Creating", "broken": "Creating"}


def test_deployments_succeed_with_no_traffic_until_told(endpoint: LocalEndpoint) -> None:
    blue, green = endpoint.deployment("blue"), endpoint.deployment("green")
    assert blue is not None and blue.state == "Succeeded" and blue.model == "m:1"
    assert green is not None and green.state == "Succeeded" and green.model == "m:2"
    assert endpoint.traffic() == {"blue": 0, "broken": 0, "green": 0}
    assert endpoint.deployment("missing") is None


def test_router_scores_with_the_deployment_that_takes_the_traffic(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"blue": 100})

    response = requests.post(f"{deployed.server.url}/score", json=_request(), timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["azureml-model-deployment"] == "blue"
    assert response.json() == pytest.approx(_expected(deployed.models["blue"]))


def test_header_routes_to_the_named_deployment_even_without_traffic(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"blue": 100})

    response = requests.post(
        f"{deployed.server.url}/score",
        json=_request(),
        headers={"azureml-model-deployment": "green"},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.headers["azureml-model-deployment"] == "green"
    assert response.json() == pytest.approx(_expected(deployed.models["green"]))
    assert _expected(deployed.models["green"]) != pytest.approx(_expected(deployed.models["blue"]))


def test_traffic_split_reaches_every_weighted_deployment(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"blue": 50, "green": 50})

    served = {
        requests.post(f"{deployed.server.url}/score", json=_request(), timeout=30).headers[
            "azureml-model-deployment"
        ]
        for _ in range(40)
    }

    assert served == {"blue", "green"}  # fails with probability 2 * 0.5**40


def test_without_traffic_the_router_answers_404_and_invoke_raises(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    response = requests.post(f"{deployed.server.url}/score", json=_request(), timeout=30)

    assert response.status_code == 404
    assert "no deployment with traffic" in response.json()["error"]
    with pytest.raises(EndpointError, match="no deployment with traffic"):
        endpoint.invoke(_request())


def test_invoke_by_traffic_and_by_name(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"green": 100})

    assert endpoint.invoke(_request()) == pytest.approx(_expected(deployed.models["green"]))
    assert endpoint.invoke(_request(), deployment="blue") == pytest.approx(_expected(deployed.models["blue"]))


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data": [[1, 2]]}', b'{"input_data": {"columns": ["a", "b"]}}', b'{"input_data": [1]}'],
)
def test_bad_requests_get_400_and_the_scorer_keeps_serving(
    deployed: Deployed, endpoint: LocalEndpoint, body: bytes
) -> None:
    endpoint.set_traffic({"blue": 100})
    url = f"{deployed.server.url}/score"

    bad = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    good = requests.post(url, json=_request(), timeout=30)

    assert bad.status_code == 400
    assert bad.json()["error"]
    assert good.status_code == 200
    with pytest.raises(EndpointError) as raised:
        endpoint.invoke({"input_data": {"columns": COLUMNS}})
    assert raised.value.status == 400


def test_model_errors_get_500_with_the_error_text(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"blue": 100})
    wrong_shape = {"input_data": {"columns": ["a"], "data": [[1.0]]}}

    response = requests.post(f"{deployed.server.url}/score", json=wrong_shape, timeout=30)

    assert response.status_code == 500
    assert "feature" in response.json()["error"].lower()
    assert endpoint.deployment("blue").state == "Succeeded"  # type: ignore[union-attr]


def test_a_model_that_cannot_load_fails_with_its_error(endpoint: LocalEndpoint) -> None:
    broken = endpoint.deployment("broken")

    assert broken is not None and broken.state == "Failed"
    assert "MLmodel" in broken.detail
    assert "exited with code 1" in broken.detail


@pytest.mark.parametrize(
    "traffic",
    [
        {"blue": 50, "green": 40},
        {"blue": 101},
        {"blue": 110, "green": -10},
        {"blue": 100.0},
        {"blue": True},
        {"nope": 100},
    ],
)
def test_set_traffic_rejects_invalid_splits(endpoint: LocalEndpoint, traffic: dict[str, Any]) -> None:
    endpoint.set_traffic({"blue": 100})

    with pytest.raises(ValueError):
        endpoint.set_traffic(traffic)

    assert endpoint.traffic()["blue"] == 100


def test_router_describes_the_endpoint(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"green": 100})

    described = requests.get(f"{deployed.server.url}/", timeout=30).json()

    assert described["name"] == "test-endpoint"
    assert described["traffic"] == {"blue": 0, "broken": 0, "green": 100}
    assert {d["name"]: d["state"] for d in described["deployments"]} == {
        "blue": "Succeeded",
        "broken": "Failed",
        "green": "Succeeded",
    }


def test_begin_deployment_is_idempotent(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    before = _pids(endpoint)

    endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(deployed.sources["blue"])))

    assert _pids(endpoint) == before


def test_other_processes_share_the_endpoint_state(endpoint: LocalEndpoint) -> None:
    # The other process did not spawn the scorers, so it must judge them from the outside.
    script = (
        "import sys; from pathlib import Path; from shared.local.endpoint import LocalEndpoint; "
        "other = LocalEndpoint('test-endpoint', Path(sys.argv[1])); "
        "other.set_traffic({'blue': 30, 'green': 70}); "
        "print(' '.join(f'{d.name}={d.state}' for d in other.deployments()))"
    )

    seen = subprocess.run(
        [sys.executable, "-c", script, str(endpoint.home)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()

    assert seen == ["blue=Succeeded", "broken=Failed", "green=Succeeded"]
    assert endpoint.traffic() == {"blue": 30, "broken": 0, "green": 70}


def test_delete_deployment_stops_it_and_forgets_it(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.begin_deployment("doomed", ModelVersion("m", "1", {}, str(deployed.sources["blue"])))
    pid = _state(endpoint)["deployments"]["doomed"]["pid"]
    endpoint.set_traffic({"doomed": 100})

    with pytest.raises(ValueError, match="traffic"):
        endpoint.delete_deployment("doomed")
    endpoint.set_traffic({"blue": 100})
    endpoint.delete_deployment("doomed")

    assert not _alive(pid)
    assert endpoint.deployment("doomed") is None
    assert "doomed" not in endpoint.traffic()
    endpoint.delete_deployment("doomed")  # already gone: nothing to do


def test_stop_all_leaves_no_scoring_process_and_resume_restarts(deployed: Deployed, tmp_path: Path) -> None:
    endpoint = LocalEndpoint("stopping", tmp_path)
    try:
        for name in ("one", "two"):
            endpoint.begin_deployment(name, ModelVersion("m", "1", {}, str(deployed.sources["blue"])))
        _wait_until_settled(endpoint, ["one", "two"])
        pids = _pids(endpoint)
        assert all(_alive(pid) for pid in pids)

        endpoint.stop_all()
        endpoint.stop_all()

        assert not [pid for pid in pids if _alive(pid)]
        assert {d.state for d in endpoint.deployments()} == {"Failed"}

        endpoint.resume()
        settled = _wait_until_settled(endpoint, ["one", "two"])
        assert {d.state for d in settled.values()} == {"Succeeded"}
    finally:
        restarted = _pids(endpoint)
        endpoint.stop_all()
    assert not [pid for pid in restarted if _alive(pid)]
