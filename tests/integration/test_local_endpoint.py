"""The local endpoint against real scoring processes: deploy, route, mirror, fail over, count, stop.

The models are deployed once for the module: loading one takes a few seconds, and every test here only needs
them running. Tests that kill scoring processes use a second endpoint ("failover"), so the main one stays
whole for the others.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.host.endpoint.router import STATS_FLUSH_SECONDS, EndpointError, EndpointServer, LocalEndpoint
from shared.ports import Deployment, ModelVersion

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["a", "b"]
ROWS = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]
READY_TIMEOUT_SECONDS = 60.0
FAILOVER_DEPLOYMENTS = ["alpha", "beta"]


@dataclass
class Deployed:
    endpoint: LocalEndpoint
    server: EndpointServer
    models: dict[str, Any]
    sources: dict[str, Path]
    begin_seconds: float
    first_states: dict[str, str]
    failover: LocalEndpoint
    failover_server: EndpointServer


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


def _pid(endpoint: LocalEndpoint, deployment: str) -> int:
    return _state(endpoint)["deployments"][deployment]["pid"]


def _observed(endpoint: LocalEndpoint, name: str) -> Deployment:
    deployment = endpoint.deployment(name)
    assert deployment is not None, f"no deployment {name!r}"
    return deployment


def _signal(pid: int, sig: int) -> None:
    # Each scorer leads its own session; signal the group as the endpoint does.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _fresh_window() -> float:
    """Wait for the next whole second and return the time: stats are kept in one-second buckets, so a window
    from here holds only what the test does next."""
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)
    return time.time()


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
    failover = LocalEndpoint("failover", root / "home")
    failover_server = EndpointServer(failover, "127.0.0.1", 0)
    try:
        started = time.monotonic()
        endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(sources["blue"])))
        endpoint.begin_deployment("green", ModelVersion("m", "2", {}, sources["green"].as_uri()))
        endpoint.begin_deployment("broken", ModelVersion("m", "3", {}, str(sources["broken"])))
        begin_seconds = time.monotonic() - started
        first_states = {d.name: d.state for d in endpoint.deployments()}
        for name in FAILOVER_DEPLOYMENTS:
            failover.begin_deployment(name, ModelVersion("m", "1", {}, str(sources["blue"])))
        _wait_until_settled(endpoint, ["blue", "green", "broken"])
        _wait_until_settled(failover, FAILOVER_DEPLOYMENTS)
        server.start()
        failover_server.start()
        yield Deployed(
            endpoint, server, models, sources, begin_seconds, first_states, failover, failover_server
        )
    finally:
        server.stop()
        failover_server.stop()
        pids = _pids(endpoint) + _pids(failover)
        for pid in pids:  # a frozen scorer would ignore SIGTERM until the grace period ends
            _signal(pid, signal.SIGCONT)
        endpoint.stop_all()
        failover.stop_all()
        assert not [pid for pid in pids if _alive(pid)], "scoring processes outlived stop_all"


@pytest.fixture
def endpoint(deployed: Deployed) -> Iterator[LocalEndpoint]:
    deployed.endpoint.set_mirror_traffic({})
    deployed.endpoint.set_traffic({})
    yield deployed.endpoint
    deployed.endpoint.set_mirror_traffic({})
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
    assert described["mirror_traffic"] == {}
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
        "import sys; from pathlib import Path; from shared.host.endpoint.router import LocalEndpoint; "
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


# ----- mirror traffic ---------------------------------------------------------------------------------------


def test_mirror_gets_copies_while_clients_see_only_live_answers(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"blue": 100})
    endpoint.set_mirror_traffic({"green": 50})
    url = f"{deployed.server.url}/score"
    start = _fresh_window()

    # Azure mirrors only what is routed by weight, not requests that name a deployment.
    for _ in range(20):
        named = requests.post(url, json=_request(), headers={"azureml-model-deployment": "blue"}, timeout=30)
        assert named.status_code == 200
    time.sleep(0.3)
    assert endpoint.stats("green", time.time() - start)["mirror"]["requests"] == 0

    answers = [requests.post(url, json=_request(), timeout=30) for _ in range(40)]

    assert {a.status_code for a in answers} == {200}
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"blue"}
    for answer in answers:
        assert answer.json() == pytest.approx(_expected(deployed.models["blue"]))

    def mirrored() -> int:
        return endpoint.stats("green", time.time() - start)["mirror"]["requests"]

    # Copies are sent in the background: wait until some arrived and no more are coming.
    _wait_for(lambda: mirrored() > 0, 10, "mirror copies")
    settled = -1
    while settled != mirrored():
        settled = mirrored()
        time.sleep(0.2)
    green = endpoint.stats("green", time.time() - start)
    assert 0 < green["mirror"]["requests"] <= 40  # 0 with probability 0.5**40
    assert green["mirror"]["errors"] == 0  # green scored every copy, and nobody saw its answers
    assert green["requests"] == 0  # no live traffic
    assert endpoint.stats("blue", time.time() - start)["requests"] == 60
    assert endpoint.mirror_traffic() == {"green": 50}
    assert requests.get(f"{deployed.server.url}/", timeout=30).json()["mirror_traffic"] == {"green": 50}


def test_mirror_is_turned_off_with_zero_or_nothing(endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"blue": 100})

    endpoint.set_mirror_traffic({"green": 10})
    endpoint.set_mirror_traffic({"green": 0})
    assert endpoint.mirror_traffic() == {}
    endpoint.set_mirror_traffic({"green": 10})
    endpoint.set_mirror_traffic({})
    assert endpoint.mirror_traffic() == {}


@pytest.mark.parametrize(
    "mirror",
    [
        {"green": 51},
        {"green": -1},
        {"green": 10.0},
        {"green": True},
        {"nope": 10},
        {"green": 10, "broken": 10},  # one deployment only
        {"blue": 10},  # blue takes live traffic
    ],
)
def test_set_mirror_traffic_rejects_what_azure_rejects(
    endpoint: LocalEndpoint, mirror: dict[str, Any]
) -> None:
    endpoint.set_traffic({"blue": 100})
    endpoint.set_mirror_traffic({"green": 20})

    with pytest.raises(ValueError):
        endpoint.set_mirror_traffic(mirror)

    assert endpoint.mirror_traffic() == {"green": 20}


def test_live_traffic_or_deletion_ends_a_deployments_mirroring(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    # A deployment takes live or mirror traffic, never both: going from shadow to canary ends the mirror.
    endpoint.set_traffic({"blue": 100})
    endpoint.set_mirror_traffic({"green": 20})

    endpoint.set_traffic({"blue": 90, "green": 10})

    assert endpoint.mirror_traffic() == {}
    assert endpoint.traffic()["green"] == 10

    endpoint.begin_deployment("shadow", ModelVersion("m", "2", {}, str(deployed.sources["green"])))
    try:
        endpoint.set_mirror_traffic({"shadow": 10})
        endpoint.delete_deployment("shadow")
        assert endpoint.mirror_traffic() == {}
        assert _state(endpoint)["mirror"] == {}  # no entry left naming a deployment that is gone
    finally:
        endpoint.delete_deployment("shadow")


# ----- request statistics -----------------------------------------------------------------------------------


def test_stats_count_requests_errors_and_p95_for_every_process(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"green": 100})
    url = f"{deployed.server.url}/score"
    wrong_shape = {"input_data": {"columns": ["a"], "data": [[1.0]]}}
    start = _fresh_window()
    latencies = []

    for payload in [_request()] * 20 + [wrong_shape] * 5:
        sent = time.perf_counter()
        requests.post(url, json=payload, timeout=30)
        latencies.append((time.perf_counter() - sent) * 1000)
    endpoint.invoke(_request())  # invoke goes through the same front end
    latencies.append(latencies[0])
    stats = endpoint.stats("green", time.time() - start)

    assert (stats["requests"], stats["errors"]) == (26, 5)
    assert stats["error_rate"] == pytest.approx(5 / 26)
    # The deployment's own time is within each client's round trip, so its p95 is too (bins are 2 % wide).
    client_p95 = sorted(latencies)[math.ceil(0.95 * len(latencies)) - 1]
    assert 0 < stats["p95_ms"] <= client_p95 * 1.02
    assert endpoint.stats("blue", time.time() - start)["requests"] == 0
    assert endpoint.stats("never-deployed", 60) == {
        "requests": 0,
        "errors": 0,
        "error_rate": 0.0,
        "p95_ms": None,
        "mirror": {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None},
    }

    # Another process (a handler outside the host) reads what this one persisted within a second.
    time.sleep(STATS_FLUSH_SECONDS + 0.5)
    script = (
        "import json, sys, time; from pathlib import Path; from shared.host.endpoint.router import LocalEndpoint; "
        "other = LocalEndpoint('test-endpoint', Path(sys.argv[1])); "
        "print(json.dumps(other.stats('green', time.time() - float(sys.argv[2]))))"
    )
    seen = subprocess.run(
        [sys.executable, "-c", script, str(endpoint.home), repr(start)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(seen) == stats

    # Older requests fall out of a shorter window.
    assert endpoint.stats("green", 0.5)["requests"] == 0


def test_stats_p95_is_the_95th_percentile(tmp_path: Path) -> None:
    # Known latencies, recorded as the router records them: the reported p95 is the 95th of 1..100 ms, at most
    # one 2 % bin above it.
    endpoint = LocalEndpoint("percentiles", tmp_path)
    (tmp_path / "endpoints").mkdir()
    for ms in range(1, 101):
        endpoint._runtime.stats.record("one", "live", ms <= 90, float(ms))

    stats = endpoint.stats("one", 60)

    assert (stats["requests"], stats["errors"], stats["error_rate"]) == (100, 10, 0.1)
    assert 95.0 <= stats["p95_ms"] <= 95.0 * 1.02
    with pytest.raises(ValueError):
        endpoint.stats("one", -1)


# ----- health -----------------------------------------------------------------------------------------------


def test_a_killed_scoring_process_fails_its_deployment_and_traffic_goes_to_the_healthy_one(
    deployed: Deployed,
) -> None:
    failover = deployed.failover
    failover.set_traffic({"alpha": 50, "beta": 50})
    url = f"{deployed.failover_server.url}/score"

    _signal(_pid(failover, "alpha"), signal.SIGKILL)
    # At once, before any health check ran: requests drawn for alpha must still be answered, by beta.
    answers = [requests.post(url, json=_request(), timeout=30) for _ in range(30)]

    assert [a.status_code for a in answers] == [200] * 30, [a.text for a in answers if a.status_code != 200]
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"beta"}
    assert failover.invoke(_request()) == pytest.approx(_expected(deployed.models["blue"]))
    alpha = failover.deployment("alpha")
    assert alpha is not None and alpha.state == "Failed"
    assert "scoring process exited with code -9" in alpha.detail
    assert failover.deployment("beta").state == "Succeeded"  # type: ignore[union-attr]
    assert failover.traffic()["alpha"] == 50  # the endpoint keeps its settings; the release decides


def test_with_no_healthy_deployment_the_router_answers_503(deployed: Deployed) -> None:
    failover = deployed.failover
    failover.set_traffic({"alpha": 50, "beta": 50})
    url = f"{deployed.failover_server.url}/score"

    for name in ("alpha", "beta"):
        _signal(_pid(failover, name), signal.SIGKILL)
    weighted = requests.post(url, json=_request(), timeout=30)
    named = requests.post(url, json=_request(), headers={"azureml-model-deployment": "beta"}, timeout=30)

    assert weighted.status_code == 503
    assert "no healthy deployment with traffic" in weighted.json()["error"]
    assert "alpha: scoring process exited" in weighted.json()["error"]
    assert named.status_code == 503
    assert "'beta'" in named.json()["error"] and "not healthy" in named.json()["error"]
    with pytest.raises(EndpointError) as raised:
        failover.invoke(_request())
    assert raised.value.status == 503
    assert {d.name: d.state for d in failover.deployments()}["beta"] == "Failed"


def test_a_frozen_scoring_process_fails_its_health_check_and_recovers(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    # Frozen, not killed, so the main endpoint is whole again afterwards.
    endpoint.set_traffic({"blue": 50, "green": 50})
    url = f"{deployed.server.url}/score"
    pid = _pid(endpoint, "green")

    _signal(pid, signal.SIGSTOP)
    try:
        # The process still exists; only its health check tells that it no longer answers.
        _wait_for(lambda: _observed(endpoint, "green").state == "Failed", 10, "green to fail")
        assert "health check" in _observed(endpoint, "green").detail
        started = time.monotonic()
        answers = [requests.post(url, json=_request(), timeout=30) for _ in range(20)]
        assert {(a.status_code, a.headers["azureml-model-deployment"]) for a in answers} == {(200, "blue")}
        endpoint.set_traffic({"green": 100})
        frozen = requests.post(url, json=_request(), timeout=30)
        assert frozen.status_code == 503
        assert time.monotonic() - started < 2.0  # refused at once, never sent to hang
    finally:
        _signal(pid, signal.SIGCONT)

    _wait_for(lambda: _observed(endpoint, "green").state == "Succeeded", 10, "green to recover")
    _wait_for(
        lambda: requests.post(url, json=_request(), timeout=30).status_code == 200, 5, "green to take traffic"
    )
