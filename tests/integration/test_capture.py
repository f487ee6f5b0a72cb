"""Capture through the real router and scoring processes into Azurite: every answer recorded in the data
collector's layout with the id the caller got back, mirrored copies marked, the platform's own requests and
storage outages never costing a client its answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.adapters.azure.storage import AzureBlobStore
from shared.adapters.local.endpoint import LocalEndpoint
from shared.host.endpoint.recorder import TrafficRecorder
from shared.host.endpoint.router import Router
from shared.ports import ModelVersion
from shared.state.traffic import ReadCounts, served_rows
from tests.integration.endpoint_support import COLUMNS, request, save, train, wait_until_settled

pytestmark = pytest.mark.integration

ENDPOINT = "capture-endpoint"


class Flaky:
    """A sink onto Azurite that can be told storage is down."""

    def __init__(self, blobs: AzureBlobStore, container: str) -> None:
        self.blobs, self.container, self.down = blobs, container, False

    def __call__(self, name: str, data: bytes) -> None:
        if self.down:
            raise ConnectionError("storage unavailable")
        self.blobs.write(self.container, name, data)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, azurite: str
) -> Iterator[tuple[Router, LocalEndpoint, Flaky]]:
    root = tmp_path_factory.mktemp("capture")
    blobs = AzureBlobStore.from_connection_string(azurite)
    container = f"cap{int(time.time() * 1000) % 10**9}"
    blobs.ensure_containers([container])
    sink = Flaky(blobs, container)
    recorder = TrafficRecorder(ENDPOINT, sink, batch_seconds=0.05)
    router = Router(ENDPOINT, root / "home", "127.0.0.1", 0, recorder=recorder).start()
    endpoint = LocalEndpoint(router.url)
    try:
        for name, coef in (("blue", 2.0), ("green", -1.0)):
            endpoint.begin_deployment(
                name,
                ModelVersion(
                    "m", "1" if name == "blue" else "2", {}, str(save(train(coef, 1.0, 0.0), root / name))
                ),
            )
        wait_until_settled(endpoint, ["blue", "green"])
        endpoint.set_traffic({"blue": 100})
        yield router, endpoint, sink
    finally:
        router.stop()


def _rows(router: Router, sink: Flaky, deployment: str) -> tuple[list[Any], ReadCounts]:
    assert router.recorder is not None and router.recorder.flush()
    counts = ReadCounts()
    since = datetime.now(UTC) - timedelta(hours=2)
    return list(served_rows(sink.blobs, sink.container, ENDPOINT, [deployment], since, counts=counts)), counts


def test_every_answer_is_captured_with_the_id_the_caller_got(world: Any) -> None:
    router, _, sink = world
    ids = []
    for rows in ([[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]):
        answer = requests.post(f"{router.url}/score", json=request(rows), timeout=30)
        assert answer.status_code == 200
        ids.append(answer.headers["x-request-id"])
    mine = requests.post(
        f"{router.url}/score",
        json=request([[7.0, 8.0]]),
        headers={"x-ms-client-request-id": "order-42"},
        timeout=30,
    )
    assert mine.headers["x-request-id"] == "order-42"

    served, _ = _rows(router, sink, "blue")

    by_id = {row.row_id: row for row in served}
    assert {ids[0], f"{ids[1]}:0", f"{ids[1]}:1", "order-42"} <= set(by_id)
    assert by_id[f"{ids[1]}:1"].inputs == dict(zip(COLUMNS, [5.0, 6.0], strict=True))
    assert by_id["order-42"].outputs["prediction"] == pytest.approx(mine.json()[0])
    assert by_id["order-42"].model_version == "1"


def test_mirrored_copies_are_recorded_as_such_and_never_served(world: Any) -> None:
    router, endpoint, sink = world
    endpoint.set_mirror_traffic({"green": 50})
    try:
        for _ in range(20):
            assert (
                requests.post(f"{router.url}/score", json=request([[1.0, 1.0]]), timeout=30).status_code
                == 200
            )
        deadline = time.monotonic() + 10
        while endpoint.stats("green", 60)["mirror"]["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        endpoint.set_mirror_traffic({})

    served, counts = _rows(router, sink, "green")

    assert served == [] and counts.mirrored_records > 0


def test_the_platforms_own_requests_are_not_production_traffic(world: Any) -> None:
    router, endpoint, sink = world
    before = len(_rows(router, sink, "blue")[0])

    endpoint.invoke(request([[9.0, 9.0]]), deployment="blue")  # as the smoke test and the drift check do

    served, counts = _rows(router, sink, "blue")
    assert len(served) == before and counts.probe_records >= 1


def test_storage_down_scoring_still_answers_and_the_loss_is_counted(world: Any) -> None:
    router, _, sink = world
    assert router.recorder is not None
    dropped = router.recorder.counts.dropped
    sink.down = True
    try:
        started = time.perf_counter()
        answers = [
            requests.post(f"{router.url}/score", json=request([[2.0, 2.0]]), timeout=30) for _ in range(5)
        ]
        seconds = time.perf_counter() - started
        assert router.recorder.flush()
    finally:
        sink.down = False

    assert [a.status_code for a in answers] == [200] * 5 and seconds < 10
    assert router.recorder.counts.dropped == dropped + 5
    described = requests.get(router.url, timeout=30).json()["capture"]
    assert described["dropped"] >= 5 and "storage unavailable" in described["last_error"]


def test_a_request_with_zero_rows_is_a_400_not_a_model_error(world: Any) -> None:
    router, _, _ = world

    answer = requests.post(f"{router.url}/score", json=request([]), timeout=30)

    assert answer.status_code == 400 and "no rows" in answer.json()["error"]
