"""The router and its scoring processes: a killed one, all of them down, a router stopped and started again,
one that died and left its processes running, and what the admin API refuses."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from shared.adapters.local.endpoint import EndpointError, LocalEndpoint
from shared.host.endpoint import handler, processes
from shared.host.endpoint.router import Router
from shared.host.endpoint.store import StateFile
from shared.ports import ModelVersion
from tests.integration.endpoint_support import (
    alive,
    expected,
    pid,
    pids,
    request,
    save,
    send_signal,
    train,
    wait_until_settled,
)

pytestmark = pytest.mark.integration

DEPLOYMENTS = ["alpha", "beta"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    trained = train(2.0, -1.0, 0.5)
    return trained, save(trained, tmp_path_factory.mktemp("models") / "blue")


def _version(folder: Path) -> ModelVersion:
    return ModelVersion("m", "1", {}, str(folder))


@pytest.fixture(scope="module")
def failover(model: tuple[object, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """Two deployments of one model, both with traffic: the tests here kill them, in this order."""
    router = Router("failover", tmp_path_factory.mktemp("home"), "127.0.0.1", 0).start()
    started: list[int] = []
    try:
        client = LocalEndpoint(router.url)
        for name in DEPLOYMENTS:
            client.begin_deployment(name, _version(model[1]))
        started = pids(router)
        wait_until_settled(client, DEPLOYMENTS)
        yield router
    finally:
        router.stop()
        assert not [p for p in started if alive(p)], "scoring processes outlived their router"


def test_a_killed_scoring_process_fails_its_deployment_and_traffic_goes_to_the_healthy_one(
    failover: Router, model: tuple[object, Path]
) -> None:
    client = LocalEndpoint(failover.url)
    client.set_traffic({"alpha": 50, "beta": 50})
    url = f"{failover.url}/score"

    send_signal(pid(failover, "alpha"), signal.SIGKILL)
    # At once, before any health check ran: requests drawn for alpha must still be answered, by beta.
    answers = [requests.post(url, json=request(), timeout=30) for _ in range(30)]

    assert [a.status_code for a in answers] == [200] * 30, [a.text for a in answers if a.status_code != 200]
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"beta"}
    assert client.invoke(request()) == pytest.approx(expected(model[0]))
    alpha = client.deployment("alpha")
    assert alpha is not None and alpha.state == "Failed"
    assert "scoring process exited with code -9" in alpha.detail
    assert client.deployment("beta").state == "Succeeded"  # type: ignore[union-attr]
    assert client.traffic()["alpha"] == 50  # the endpoint keeps its settings; the release decides


def test_with_no_healthy_deployment_the_router_answers_503(failover: Router) -> None:
    client = LocalEndpoint(failover.url)
    client.set_traffic({"alpha": 50, "beta": 50})
    url = f"{failover.url}/score"

    for name in DEPLOYMENTS:
        send_signal(pid(failover, name), signal.SIGKILL)
    weighted = requests.post(url, json=request(), timeout=30)
    named = requests.post(url, json=request(), headers={"azureml-model-deployment": "beta"}, timeout=30)

    assert weighted.status_code == 503
    assert "no healthy deployment with traffic" in weighted.json()["error"]
    assert "alpha: scoring process exited" in weighted.json()["error"]
    assert named.status_code == 503
    assert "'beta'" in named.json()["error"] and "not healthy" in named.json()["error"]
    with pytest.raises(EndpointError) as raised:
        client.invoke(request())
    assert raised.value.status == 503
    assert {d.name: d.state for d in client.deployments()}["beta"] == "Failed"


def test_a_restarted_router_resumes_its_deployments_and_stopping_leaves_no_process(
    model: tuple[object, Path], tmp_path: Path
) -> None:
    router = Router("stopping", tmp_path, "127.0.0.1", 0).start()
    restarted: Router | None = None
    try:
        client = LocalEndpoint(router.url)
        for name in ("one", "two"):
            client.begin_deployment(name, _version(model[1]))
        wait_until_settled(client, ["one", "two"])
        client.set_traffic({"one": 100})
        first = pids(router)
        assert all(alive(p) for p in first)

        router.stop()
        router.stop()  # stopping twice is harmless

        assert not [p for p in first if alive(p)]
        with pytest.raises(EndpointError, match="did not answer"):
            client.traffic()  # nobody serves the endpoint now

        restarted = Router("stopping", tmp_path, "127.0.0.1", 0).start()
        client = LocalEndpoint(restarted.url)
        # Loading again: Creating until the health check passes, then as before, with the same traffic.
        assert {d.state for d in client.deployments()} == {"Creating"}
        settled = wait_until_settled(client, ["one", "two"])
        assert {d.state for d in settled.values()} == {"Succeeded"}
        assert client.traffic() == {"one": 100, "two": 0}
        assert client.invoke(request()) == pytest.approx(expected(model[0]))
    finally:
        router.stop()
        second = pids(restarted) if restarted is not None else []
        if restarted is not None:
            restarted.stop()
    assert second and not [p for p in second if alive(p)]


def test_a_router_stops_what_a_router_that_died_left_running_and_nothing_else(
    model: tuple[object, Path], tmp_path: Path
) -> None:
    # What a router that was killed leaves: its scoring process still running, named in its state file.
    log = tmp_path / "leftover.log"
    leftover = processes.spawn(model[1], processes.free_port(set()), log)
    stranger = processes.spawn(model[1], processes.free_port(set()), tmp_path / "stranger.log")
    try:
        _a_router_stops_the_leftover_and_not_the_stranger(leftover, stranger, model[1], tmp_path)
    finally:  # whatever failed, neither outlives the test
        processes.terminate([leftover.popen, stranger.popen])


def _a_router_stops_the_leftover_and_not_the_stranger(
    leftover: processes.ScoringProcess, stranger: processes.ScoringProcess, model_dir: Path, tmp_path: Path
) -> None:
    assert processes.find_ours(leftover.pid, leftover.create_time) is not None
    # A pid that is running but was not started at that time is not ours, nor is a process that is no scorer.
    assert processes.find_ours(leftover.pid, leftover.create_time - 10) is None
    assert processes.find_ours(os.getpid(), psutil.Process().create_time()) is None
    state = StateFile(tmp_path / "endpoints" / "crashed.json")
    entry = {"model": "m:1", "model_dir": str(model_dir), "port": 1}
    state.save(
        {
            "one": {**entry, "pid": leftover.pid, "create_time": leftover.create_time},
            "two": {**entry, "pid": stranger.pid, "create_time": stranger.create_time + 10},
        },
        {"one": 100, "two": 0},
        {},
    )

    router = Router("crashed", tmp_path, "127.0.0.1", 0).start()
    try:
        assert not alive(leftover.pid)
        assert alive(stranger.pid)  # same pid, another start time: never ours to stop
        started = pids(router)
        assert len(started) == 2 and leftover.pid not in started and stranger.pid not in started
        assert LocalEndpoint(router.url).traffic() == {"one": 100, "two": 0}
        saved = json.loads(router.state_path.read_text())["deployments"]
        assert sorted(d["pid"] for d in saved.values()) == sorted(started)
    finally:
        router.stop()
    assert not [p for p in started if alive(p)]
    assert json.loads(router.state_path.read_text())["deployments"]["one"].keys() == {
        "model",
        "model_dir",
        "port",
    }  # stopped cleanly: no pid left for the next router to look for


def test_what_the_admin_api_refuses(tmp_path: Path) -> None:
    router = Router("refusals", tmp_path, "127.0.0.1", 0).start()
    try:
        client = LocalEndpoint(router.url)
        with pytest.raises(ValueError, match="invalid deployment name"):
            client.begin_deployment("not_valid", _version(tmp_path))
        with pytest.raises(ValueError, match="folder or file:// URI"):
            client.begin_deployment("remote", ModelVersion("m", "1", {}, "azureml://jobs/x/outputs/model"))
        with pytest.raises(ValueError, match="unknown deployments"):
            client.set_traffic({"nope": 100})
        with pytest.raises(ValueError, match="unknown deployments"):
            client.set_mirror_traffic({"nope": 10})
        with pytest.raises(ValueError, match="not a valid request"):
            client.set_traffic({"nope": float("nan")})
        assert client.deployment("nope") is None
        client.delete_deployment("nope")  # nothing to delete
        assert (client.deployments(), client.traffic(), client.mirror_traffic()) == ([], {}, {})
        with pytest.raises(EndpointError, match="no deployment with traffic") as raised:
            client.invoke(request())
        assert raised.value.status == 404

        traffic = requests.put(f"{router.url}/admin/traffic", data=b"not json", timeout=10)
        assert traffic.status_code == 400 and "not valid JSON" in traffic.json()["error"]
        wrong_shape = requests.put(f"{router.url}/admin/traffic", json={"traffic": [1]}, timeout=10)
        assert wrong_shape.status_code == 400
        assert requests.get(f"{router.url}/admin/stats/x", timeout=10).status_code == 400  # no window
        assert requests.post(f"{router.url}/admin/traffic", json={}, timeout=10).status_code == 404
        assert requests.get(f"{router.url}/nowhere", timeout=10).status_code == 404
        # Unauthenticated, so for this machine only, whatever interface the scoring URL listens on.
        assert handler.admin_allowed("127.0.0.1") and handler.admin_allowed("::1")
        assert not handler.admin_allowed("192.168.1.20")
    finally:
        router.stop()
    # Each call is one request to the router: stopped, it answers nothing, and the client says so at once.
    started = time.monotonic()
    with pytest.raises(EndpointError, match="did not answer"):
        client.deployments()
    assert time.monotonic() - started < 5
