"""The Azure adapters read the shapes Azure itself answered: the bodies of azure-ai-ml's own recorded test
responses (`tests/fixtures/azure_ml/SOURCES.md`), served by the stub transport to the real SDK clients.

The stub in `tests/contract/azure_stub.py` answers with shapes this project wrote; these tests answer with what
the service sent when the SDK's recordings were made, so a shape our stub assumed cannot hide a misreading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.contract.azure_stub import ARM, AzureWorld, Recorded, Reply

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "azure_ml"


def _body(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes()


class RecordedAzureML:
    """Answers each GET whose path matches a pattern with a recorded body (and its recorded status)."""

    def __init__(self, routes: list[tuple[str, str, int]]) -> None:
        self._routes = [(re.compile(pattern), name, status) for pattern, name, status in routes]

    def __call__(self, request: Recorded) -> Reply:
        for pattern, name, status in self._routes:
            if request.method == "GET" and pattern.search(request.path):
                return Reply(status, _body(name), {"content-type": "application/json"})
        return Reply(404, json.dumps({"error": {"code": "NotFound", "message": request.path}}).encode())


def _world(*routes: tuple[str, str, int]) -> AzureWorld:
    world = AzureWorld()
    world.transport.services[ARM] = RecordedAzureML(list(routes))
    return world


@pytest.mark.parametrize(
    ("recording", "status"),
    [
        ("job_command_get_preparing", "Queued"),
        ("job_pipeline_get_running", "Running"),
        ("job_pipeline_get_completed", "Completed"),
        ("job_pipeline_get_failed", "Failed"),
    ],
)
def test_a_jobs_status_is_read_from_what_azure_ml_answered(recording: str, status: str) -> None:
    world = _world((r"/jobs/[^/]+$", recording, 200))
    assert world.jobs().status("train-0123456789abcdef") == status


def test_a_job_azure_ml_does_not_know_is_not_found() -> None:
    world = _world((r"/jobs/[^/]+$", "job_get_not_found_404", 404))
    assert world.jobs().status("train-0123456789abcdef") == "NotFound"


def test_a_model_version_is_read_as_registered() -> None:
    world = _world((r"/models/[^/]+/versions/3$", "model_version_get", 200))
    recorded = json.loads(_body("model_version_get"))

    model = world.registry().get("test_907403507619", "3")

    assert model is not None
    assert (model.name, model.version) == ("test_907403507619", "3")
    assert model.tags == recorded["properties"]["tags"]
    assert model.source == recorded["properties"]["modelUri"]


def test_the_versions_of_a_model_are_listed_and_none_answers_a_run_it_never_registered() -> None:
    world = _world((r"/models/[^/]+/versions$", "model_versions_list", 200))
    assert world.registry().find_by_run("test_907403507619", "train-0123456789abcdef") is None
    assert world.registry().run_versions("test_907403507619", "train-0123456789abcdef") == []


def test_a_model_azure_ml_does_not_know_has_no_versions() -> None:
    world = _world((r"/models/[^/]+/versions", "model_versions_not_found_404", 404))
    assert world.registry().get("unknown", "1") is None
    assert world.registry().find_by_run("unknown", "train-0123456789abcdef") is None


def test_an_endpoints_deployments_and_traffic_are_read_as_azure_ml_answered() -> None:
    recorded = json.loads(_body("online_endpoint_get"))
    [(deployment, share)] = recorded["properties"]["traffic"].items()
    world = _world(
        (r"/onlineEndpoints/[^/]+/deployments/[^/]+$", "online_deployment_get", 200),
        (r"/onlineEndpoints/[^/]+/deployments$", "online_deployments_list", 200),
        (r"/onlineEndpoints/[^/]+$", "online_endpoint_get", 200),
    )
    endpoints = world.endpoints()

    found = endpoints.deployment(deployment)

    assert found is not None and found.name == deployment and found.state == "Succeeded"
    assert found.model == "1498425f064ef007b4f000a85a5f4645:1"  # the model's ARM id, as name:version
    assert endpoints.traffic() == {deployment: share}
    assert endpoints.mirror_traffic() == {}


def test_another_clouds_metrics_are_asked_of_its_own_resource_manager() -> None:
    from shared.adapters.azure.metrics import EndpointMetrics
    from shared.config import Settings
    from tests.contract.azure_stub import AZURE_SETTINGS, FakeCredential, StubTransport

    azure = Settings.from_env({**AZURE_SETTINGS, "MLOPS_AZURE_CLOUD": "AzureChinaCloud"}).azure
    assert azure is not None and azure.cloud_name == "AzureChinaCloud"
    empty = json.dumps({"value": []}).encode()
    transport = StubTransport({"management.chinacloudapi.cn": lambda request: Reply(200, empty)})
    credential = FakeCredential()
    metrics = EndpointMetrics(
        credential, "/subscriptions/s/x/onlineEndpoints/e", arm=azure.arm_endpoint, transport=transport
    )

    assert metrics.stats("blue", 300)["requests"] == 0
    assert {r.host for r in transport.requests} == {"management.chinacloudapi.cn"}
    assert credential.scopes == ["https://management.chinacloudapi.cn/.default"]
