"""The local endpoint against real scoring processes: deploy, route, mirror, fail over, count.

The models are deployed once for the module: loading one takes a few seconds, and every test here only needs
them running. The endpoint is a router (the one owner of its deployments) and a `LocalEndpoint`, its client
through the admin API. Killing scoring processes and stopping or restarting routers is in
test_local_endpoint_processes.py, so the endpoint here stays whole for every test.
"""

from __future__ import annotations

import json
import math
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

from shared.adapters.local.endpoint import EndpointError, LocalEndpoint
from shared.host.endpoint.router import Router
from shared.ports import ModelVersion
from tests.integration.endpoint_support import (
    COLUMNS,
    alive,
    expected,
    fresh_window,
    observed,
    pid,
    pids,
    request,
    save,
    send_signal,
    train,
    wait_for,
    wait_until_settled,
)

pytestmark = pytest.mark.integration

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployed:
    endpoint: LocalEndpoint
    router: Router
    models: dict[str, Any]
    sources: dict[str, Path]
    begin_seconds: float
    first_states: dict[str, str]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("endpoint")
    models = {"blue": train(2.0, -1.0, 0.5), "green": train(-1.0, 3.0, 0.0)}
    sources = {name: save(model, root / "models" / name) for name, model in models.items()}
    # A folder without an MLmodel file: MLflow cannot load it, as with a half-copied artifact.
    sources["broken"] = root / "models" / "broken"
    sources["broken"].mkdir(parents=True)

    router = Router("test-endpoint", root / "home", "127.0.0.1", 0).start()
    endpoint = LocalEndpoint(router.url)
    started_pids: list[int] = []
    try:
        started = time.monotonic()
        endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(sources["blue"])))
        endpoint.begin_deployment("green", ModelVersion("m", "2", {}, sources["green"].as_uri()))
        endpoint.begin_deployment("broken", ModelVersion("m", "3", {}, str(sources["broken"])))
        begin_seconds = time.monotonic() - started
        first_states = {d.name: d.state for d in endpoint.deployments()}
        started_pids = pids(router)
        wait_until_settled(endpoint, ["blue", "green", "broken"])
        yield Deployed(endpoint, router, models, sources, begin_seconds, first_states)
    finally:
        for scorer in started_pids:  # a frozen scorer would ignore SIGTERM until the grace period ends
            send_signal(scorer, signal.SIGCONT)
        router.stop()
        assert not [p for p in started_pids if alive(p)], "scoring processes outlived their router"


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

    response = requests.post(f"{deployed.router.url}/score", json=request(), timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["azureml-model-deployment"] == "blue"
    assert response.json() == pytest.approx(expected(deployed.models["blue"]))


def test_header_routes_to_the_named_deployment_even_without_traffic(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"blue": 100})

    response = requests.post(
        f"{deployed.router.url}/score",
        json=request(),
        headers={"azureml-model-deployment": "green"},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.headers["azureml-model-deployment"] == "green"
    assert response.json() == pytest.approx(expected(deployed.models["green"]))
    assert expected(deployed.models["green"]) != pytest.approx(expected(deployed.models["blue"]))


def test_traffic_split_reaches_every_weighted_deployment(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"blue": 50, "green": 50})

    served = {
        requests.post(f"{deployed.router.url}/score", json=request(), timeout=30).headers[
            "azureml-model-deployment"
        ]
        for _ in range(40)
    }

    assert served == {"blue", "green"}  # fails with probability 2 * 0.5**40


def test_without_traffic_the_router_answers_404_and_invoke_raises(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    response = requests.post(f"{deployed.router.url}/score", json=request(), timeout=30)

    assert response.status_code == 404
    assert "no deployment with traffic" in response.json()["error"]
    with pytest.raises(EndpointError, match="no deployment with traffic"):
        endpoint.invoke(request())


def test_invoke_by_traffic_and_by_name(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"green": 100})

    assert endpoint.invoke(request()) == pytest.approx(expected(deployed.models["green"]))
    assert endpoint.invoke(request(), deployment="blue") == pytest.approx(expected(deployed.models["blue"]))


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data": [[1, 2]]}', b'{"input_data": {"columns": ["a", "b"]}}', b'{"input_data": [1]}'],
)
def test_bad_requests_get_400_and_the_scorer_keeps_serving(
    deployed: Deployed, endpoint: LocalEndpoint, body: bytes
) -> None:
    endpoint.set_traffic({"blue": 100})
    url = f"{deployed.router.url}/score"

    bad = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    good = requests.post(url, json=request(), timeout=30)

    assert bad.status_code == 400
    assert bad.json()["error"]
    assert good.status_code == 200
    with pytest.raises(EndpointError) as raised:
        endpoint.invoke({"input_data": {"columns": COLUMNS}})
    assert raised.value.status == 400


def test_model_errors_get_500_with_the_error_text(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.set_traffic({"blue": 100})
    wrong_shape = {"input_data": {"columns": ["a"], "data": [[1.0]]}}

    response = requests.post(f"{deployed.router.url}/score", json=wrong_shape, timeout=30)

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

    described = requests.get(f"{deployed.router.url}/", timeout=30).json()

    assert described["name"] == "test-endpoint"
    assert described["traffic"] == {"blue": 0, "broken": 0, "green": 100}
    assert described["mirror_traffic"] == {}
    assert {d["name"]: d["state"] for d in described["deployments"]} == {
        "blue": "Succeeded",
        "broken": "Failed",
        "green": "Succeeded",
    }


def test_begin_deployment_is_idempotent(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    before = pids(deployed.router)

    endpoint.begin_deployment("blue", ModelVersion("m", "1", {}, str(deployed.sources["blue"])))

    assert pids(deployed.router) == before


def test_another_process_sees_and_changes_the_same_endpoint_through_the_admin_api(
    endpoint: LocalEndpoint,
) -> None:
    # A CLI or a handler outside the host builds its own client from the router's URL.
    script = (
        "import sys; from shared.adapters.local.endpoint import LocalEndpoint; "
        "other = LocalEndpoint(sys.argv[1]); "
        "other.set_traffic({'blue': 30, 'green': 70}); "
        "print(' '.join(f'{d.name}={d.state}' for d in other.deployments()))"
    )

    seen = subprocess.run(
        [sys.executable, "-c", script, endpoint.url],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()

    assert seen == ["blue=Succeeded", "broken=Failed", "green=Succeeded"]
    assert endpoint.traffic() == {"blue": 30, "broken": 0, "green": 70}


def test_delete_deployment_stops_it_and_forgets_it(deployed: Deployed, endpoint: LocalEndpoint) -> None:
    endpoint.begin_deployment("doomed", ModelVersion("m", "1", {}, str(deployed.sources["blue"])))
    doomed = pid(deployed.router, "doomed")
    endpoint.set_traffic({"doomed": 100})

    with pytest.raises(ValueError, match="traffic"):
        endpoint.delete_deployment("doomed")
    endpoint.set_traffic({"blue": 100})
    endpoint.delete_deployment("doomed")

    assert not alive(doomed)
    assert endpoint.deployment("doomed") is None
    assert "doomed" not in endpoint.traffic()
    endpoint.delete_deployment("doomed")  # already gone: nothing to do


# ----- mirror traffic ---------------------------------------------------------------------------------------


def test_mirror_gets_copies_while_clients_see_only_live_answers(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"blue": 100})
    endpoint.set_mirror_traffic({"green": 50})
    url = f"{deployed.router.url}/score"
    start = fresh_window()

    # Azure mirrors only what is routed by weight, not requests that name a deployment.
    for _ in range(20):
        named = requests.post(url, json=request(), headers={"azureml-model-deployment": "blue"}, timeout=30)
        assert named.status_code == 200
    time.sleep(0.3)
    assert endpoint.stats("green", time.time() - start)["mirror"]["requests"] == 0

    answers = [requests.post(url, json=request(), timeout=30) for _ in range(40)]

    assert {a.status_code for a in answers} == {200}
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"blue"}
    for answer in answers:
        assert answer.json() == pytest.approx(expected(deployed.models["blue"]))

    def mirrored() -> int:
        return endpoint.stats("green", time.time() - start)["mirror"]["requests"]

    # Copies are sent in the background: wait until some arrived and no more are coming.
    wait_for(lambda: mirrored() > 0, 10, "mirror copies")
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
    assert requests.get(f"{deployed.router.url}/", timeout=30).json()["mirror_traffic"] == {"green": 50}


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
        # No entry left naming a deployment that is gone, in the router's file either.
        assert json.loads(deployed.router.state_path.read_text())["mirror"] == {}
    finally:
        endpoint.delete_deployment("shadow")


# ----- request statistics -----------------------------------------------------------------------------------


def test_stats_count_requests_errors_and_p95_for_every_process(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    endpoint.set_traffic({"green": 100})
    url = f"{deployed.router.url}/score"
    wrong_shape = {"input_data": {"columns": ["a"], "data": [[1.0]]}}
    start = fresh_window()
    latencies = []

    for payload in [request()] * 20 + [wrong_shape] * 5:
        sent = time.perf_counter()
        requests.post(url, json=payload, timeout=30)
        latencies.append((time.perf_counter() - sent) * 1000)
    endpoint.invoke(request())  # invoke goes through the same front end
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

    with pytest.raises(ValueError, match="negative"):
        endpoint.stats("green", -1)

    # Another process (a handler outside the host) asks the router, which counted every answer: the same.
    script = (
        "import json, sys, time; from shared.adapters.local.endpoint import LocalEndpoint; "
        "other = LocalEndpoint(sys.argv[1]); "
        "print(json.dumps(other.stats('green', time.time() - float(sys.argv[2]))))"
    )
    seen = subprocess.run(
        [sys.executable, "-c", script, endpoint.url, repr(start)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(seen) == stats

    # Older requests fall out of a shorter window (buckets are whole seconds: wait past the last one).
    time.sleep(1.5)
    assert endpoint.stats("green", 0.5)["requests"] == 0


# ----- health -----------------------------------------------------------------------------------------------


def test_a_frozen_scoring_process_fails_its_health_check_and_recovers(
    deployed: Deployed, endpoint: LocalEndpoint
) -> None:
    # Frozen, not killed, so the main endpoint is whole again afterwards.
    endpoint.set_traffic({"blue": 50, "green": 50})
    url = f"{deployed.router.url}/score"
    green = pid(deployed.router, "green")

    send_signal(green, signal.SIGSTOP)
    try:
        # The process still exists; only its health check tells that it no longer answers.
        wait_for(lambda: observed(endpoint, "green").state == "Failed", 10, "green to fail")
        assert "health check" in observed(endpoint, "green").detail
        started = time.monotonic()
        answers = [requests.post(url, json=request(), timeout=30) for _ in range(20)]
        assert {(a.status_code, a.headers["azureml-model-deployment"]) for a in answers} == {(200, "blue")}
        endpoint.set_traffic({"green": 100})
        frozen = requests.post(url, json=request(), timeout=30)
        assert frozen.status_code == 503
        assert time.monotonic() - started < 2.0  # refused at once, never sent to hang
    finally:
        send_signal(green, signal.SIGCONT)

    wait_for(lambda: observed(endpoint, "green").state == "Succeeded", 10, "green to recover")
    wait_for(
        lambda: requests.post(url, json=request(), timeout=30).status_code == 200, 5, "green to take traffic"
    )
