"""The Azure adapters over the real SDK clients, their HTTP requests answered by a stub transport.

Each test asserts on what Azure would now hold (the fake services' state) and on the requests themselves where
the request is the contract: method, path, body and the bearer token of the managed identity.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from shared.ports import ModelVersion, OutgoingEvent, PreconditionFailed, RunResults, TrainingJob
from tests.contract.azure_stub import TOKEN, WORKSPACE_ID, AzureWorld

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

RUN = "train-0123456789abcdef"
MANIFEST = {
    "id": "ds-0123456789abcdef",
    "files": [{"name": "a.csv", "sha256": "aa", "rows": 10, "path": "files/aa.csv"}],
    "schema": {"age": "number"},
    "rows": 10,
}
EVALUATION = {"run_id": RUN, "primary_metric": "rmse", "challenger": {"rmse": 50.0}, "champion": None}


@pytest.fixture()
def world() -> AzureWorld:
    return AzureWorld()


def _job(champion: ModelVersion | None = None) -> TrainingJob:
    return TrainingJob(
        RUN, MANIFEST["id"], MANIFEST, {"task": "regression"}, champion, {"mlops.request": "r-1"}
    )


def _ws(path: str) -> str:
    return f"{WORKSPACE_ID}{path}"


# --- training jobs --------------------------------------------------------------------------------------------


def test_submit_puts_one_command_job_named_by_the_run(world: AzureWorld) -> None:
    champion = ModelVersion("mlops-model", "2", {}, "")
    world.jobs().submit(_job(champion))

    [put] = world.transport.sent("PUT", _ws(f"/jobs/{RUN}"))
    assert put.header("Authorization") == f"Bearer {TOKEN}"
    body = put.json()["properties"]
    assert body["jobType"] == "Command"
    assert body["command"].startswith("python -m shared.training --manifest ${{inputs.manifest}}")
    assert body["command"].endswith(f"--champion ${{{{inputs.champion}}}} --run-id {RUN}")
    assert body["computeId"] == _ws("/computes/cpu-cluster")
    assert body["experimentName"] == "mlops"
    assert body["inputs"]["data"]["uri"] == "azureml://datastores/mlopsdatasets/paths/files/"
    assert body["inputs"]["champion"]["uri"] == _ws("/models/mlops-model/versions/2")
    assert body["outputs"]["output"]["uri"] == f"azureml://datastores/mlopsdatasets/paths/runs/{RUN}/output/"
    assert re.fullmatch(
        re.escape(_ws("/environments/mlops-training/versions/")) + "[0-9a-f]{16}", body["environmentId"]
    )
    assert body["codeId"].startswith(_ws("/codes/"))
    assert body["tags"]["mlops.run_id"] == RUN and body["tags"]["mlops.request"] == "r-1"


def test_a_teams_code_is_submitted_as_one_pipeline_of_our_steps_around_theirs(world: AzureWorld) -> None:
    from pathlib import Path

    project = Path(__file__).resolve().parents[2] / "fixtures" / "training_projects" / "script"
    code = {
        "code": str(project),
        "command": "python train.py --train {train} --model {model}",
        "environment": "requirements.txt",
        "identity": {"built_in": False, "sources_sha256": "ab" * 32, "environment_sha256": "cd" * 32},
    }
    config = {**world.settings.training.as_job_config(), "code": code}
    world.jobs().submit(TrainingJob(RUN, MANIFEST["id"], MANIFEST, config, None, {"mlops.request": "r-1"}))

    [put] = world.transport.sent("PUT", _ws(f"/jobs/{RUN}"))
    body = put.json()["properties"]
    assert body["jobType"] == "Pipeline" and list(body["jobs"]) == ["prepare", "train", "evaluate"]
    assert put.header("x-azureml-token")  # the SDK's own check of an Azure ML token, passed
    components = world.transport.sent(
        "PUT", re.compile(re.escape(_ws("/components/azureml_anonymous/versions/")))
    )
    specs = [c.json()["properties"]["componentSpec"] for c in components]
    assert len(specs) == 3
    [train] = [spec for spec in specs if spec["command"].startswith("python train.py")]
    assert (
        train["command"]
        == "python train.py --train ${{inputs.work}}/train.parquet --model ${{outputs.model}}"
    )
    assert re.fullmatch(
        "azureml:" + re.escape(_ws("/environments/mlops-training-project/versions/")) + "[0-9a-f]{16}",
        train["environment"],
    )
    [registered] = world.transport.sent(
        "PUT", re.compile(re.escape(_ws("/environments/mlops-training-project/")))
    )
    assert registered.json()["properties"]["condaFile"]  # built from their requirements.txt
    evaluate = body["jobs"]["evaluate"]
    assert (
        evaluate["outputs"]["output"]["uri"] == f"azureml://datastores/mlopsdatasets/paths/runs/{RUN}/output/"
    )


def test_submit_writes_the_jobs_inputs_next_to_its_output(world: AzureWorld) -> None:
    world.jobs().submit(_job())

    container = world.settings.containers.datasets
    manifest = json.loads(world.storage.get(container, f"runs/{RUN}/manifest.json") or b"")
    assert manifest["id"] == MANIFEST["id"] and manifest["files"][0]["path"] == "aa.csv"
    assert json.loads(world.storage.get(container, f"runs/{RUN}/config.json") or b"") == {
        "task": "regression"
    }
    blob_puts = world.transport.sent("PUT", re.compile(f"^/{container}/runs/{RUN}/"))
    assert {r.header("Authorization") for r in blob_puts} == {f"Bearer {TOKEN}"}
    assert "https://storage.azure.com/.default" in world.credential.scopes


def test_submit_twice_makes_one_job(world: AzureWorld) -> None:
    jobs = world.jobs()
    jobs.submit(_job())
    jobs.submit(_job())
    assert len(world.transport.sent("PUT", _ws(f"/jobs/{RUN}"))) == 1
    assert list(world.ml.jobs) == [RUN]


def test_a_job_created_by_another_worker_meanwhile_counts_as_submitted(world: AzureWorld) -> None:
    jobs = world.jobs()
    original = world.ml._jobs

    def job_appears_after_the_check(request, parts):  # type: ignore[no-untyped-def]
        if request.method == "PUT" and RUN not in world.ml.jobs:
            original(request, parts)  # the other worker's PUT lands first...
        return original(request, parts)  # ...so ours is refused

    world.ml._jobs = job_appears_after_the_check  # type: ignore[method-assign]
    jobs.submit(_job())  # no error
    assert list(world.ml.jobs) == [RUN]


def test_the_environment_is_registered_once_then_reused(world: AzureWorld) -> None:
    world.jobs().submit(_job())
    world.jobs().submit(TrainingJob("train-other", "ds-other", MANIFEST, {}, None))
    assert len(world.transport.sent("PUT", re.compile(r"/environments/mlops-training/versions/"))) == 1
    assert len(world.ml.environments) == 1


def test_an_existing_environment_is_used_as_named() -> None:
    world = AzureWorld(MLOPS_AZURE_ENVIRONMENT="azureml:team-sklearn:7")
    world.jobs().submit(_job())
    [put] = world.transport.sent("PUT", _ws(f"/jobs/{RUN}"))
    assert put.json()["properties"]["environmentId"] == _ws("/environments/team-sklearn/versions/7")
    assert world.transport.sent(path=re.compile("/environments/")) == []


@pytest.mark.parametrize(
    ("azure_status", "status"),
    [
        ("NotStarted", "Queued"),
        ("Preparing", "Queued"),
        ("Queued", "Queued"),
        ("Running", "Running"),
        ("Finalizing", "Running"),
        ("CancelRequested", "Running"),
        ("Completed", "Completed"),
        ("Failed", "Failed"),
        ("Canceled", "Canceled"),
        ("SomethingNew", "Running"),
    ],
)
def test_status_maps_azure_ml_statuses(world: AzureWorld, azure_status: str, status: str) -> None:
    jobs = world.jobs()
    jobs.submit(_job())
    world.ml.set_job_status(RUN, azure_status)
    assert jobs.status(RUN) == status


def test_status_of_an_unknown_run_is_not_found(world: AzureWorld) -> None:
    assert world.jobs().status("train-never") == "NotFound"


def test_results_read_the_evaluation_from_the_job_output(world: AzureWorld) -> None:
    container = world.settings.containers.datasets
    world.storage.put(container, f"runs/{RUN}/output/evaluation.json", json.dumps(EVALUATION).encode())
    results = world.jobs().results(RUN)
    assert results.evaluation == EVALUATION
    assert results.model_uri == f"azureml://jobs/{RUN}/outputs/output/paths/model"
    [get] = world.transport.sent("GET", f"/{container}/runs/{RUN}/output/evaluation.json")
    assert get.header("Authorization") == f"Bearer {TOKEN}"


def test_results_of_a_run_without_output_raise_lookup_error(world: AzureWorld) -> None:
    with pytest.raises(LookupError, match=RUN):
        world.jobs().results(RUN)


# --- registry -------------------------------------------------------------------------------------------------


def _results(run_id: str = RUN) -> RunResults:
    return RunResults(run_id, EVALUATION, f"azureml://jobs/{run_id}/outputs/output/paths/model")


def test_register_puts_an_mlflow_model_with_its_lineage(world: AzureWorld) -> None:
    model = world.registry().register("mlops-model", _results(), {"mlops.dataset_version": MANIFEST["id"]})

    assert (model.name, model.version) == ("mlops-model", "1")
    [put] = world.transport.sent("PUT", _ws("/models/mlops-model/versions/1"))
    body = put.json()["properties"]
    assert body["modelType"] == "mlflow_model"
    assert body["modelUri"] == f"azureml://jobs/{RUN}/outputs/output/paths/model"
    assert body["tags"] == {"mlops.dataset_version": MANIFEST["id"], "mlops.run_id": RUN}
    assert body["properties"] == {"mlops.run_id": RUN}
    assert model.tags["mlops.run_id"] == RUN and model.source == body["modelUri"]


def test_a_versions_files_are_hashed_from_the_job_output_it_was_registered_from(
    world: AzureWorld, tmp_path
) -> None:
    from shared.training.provenance import folder_sha256

    files = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x04pickled", "sub/conda.yaml": b"name: m\n"}
    blobs, container = world.blob_store(), world.settings.containers.datasets
    for relative, data in files.items():
        blobs.write(container, f"runs/{RUN}/output/model/{relative}", data)
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    registry = world.registry()
    model = registry.register("mlops-model", _results(), {})

    assert registry.artifact_sha256(model) == folder_sha256(tmp_path)  # as the job hashed what it evaluated
    blobs.write(container, f"runs/{RUN}/output/model/model.pkl", b"something else")
    assert registry.artifact_sha256(model) != folder_sha256(tmp_path)
    assert registry.artifact_sha256(registry.register("mlops-model", _results("train-none"), {})) is None


def test_register_twice_makes_one_version(world: AzureWorld) -> None:
    registry = world.registry()
    first = registry.register("mlops-model", _results(), {})
    again = registry.register("mlops-model", _results(), {})
    assert first == again
    assert list(world.ml.models["mlops-model"]) == ["1"]
    assert registry.register("mlops-model", _results("train-second"), {}).version == "2"


def test_get_and_find_by_run(world: AzureWorld) -> None:
    registry = world.registry()
    model = registry.register("mlops-model", _results(), {})
    assert registry.get("mlops-model", "1") == model
    assert registry.find_by_run("mlops-model", RUN) == model
    assert registry.get("mlops-model", "7") is None
    assert registry.find_by_run("mlops-model", "train-other") is None
    assert registry.find_by_run("never-registered", RUN) is None


# --- endpoints ------------------------------------------------------------------------------------------------

MODEL = ModelVersion("mlops-model", "1", {}, "azureml://jobs/x/outputs/output/paths/model")
DEPLOYMENTS = _ws("/onlineEndpoints/mlops-endpoint/deployments")


def test_begin_deployment_puts_the_deployment_and_does_not_wait(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    started = time.perf_counter()
    endpoints.begin_deployment("model-v1", MODEL)
    assert time.perf_counter() - started < 3.0

    [put] = world.transport.sent("PUT", f"{DEPLOYMENTS}/model-v1")
    body = put.json()
    assert body["properties"]["model"] == _ws("/models/mlops-model/versions/1")
    assert body["properties"]["instanceType"] == "Standard_DS3_v2"
    assert body["properties"]["endpointComputeType"] == "Managed"
    assert body["sku"]["capacity"] == 1
    collections = body["properties"]["dataCollector"]["collections"]
    for name in ("model_inputs", "model_outputs"):
        # the data asset the SDK registered first, on the inference datastore at the checks' path
        assert collections[name]["dataId"] == _ws(f"/data/mlops-endpoint-model-v1-{name}/versions/1")
        [asset] = world.transport.sent("PUT", _ws(f"/data/mlops-endpoint-model-v1-{name}/versions/1"))
        assert asset.json()["properties"]["dataUri"] == (
            f"azureml://datastores/mlopsinference/paths/modelDataCollector/mlops-endpoint/model-v1/{name}"
        )
    deployment = endpoints.deployment("model-v1")
    assert deployment is not None and (deployment.state, deployment.model) == ("Creating", "mlops-model:1")


def test_begin_deployment_is_idempotent_by_name(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    endpoints.begin_deployment("model-v1", MODEL)
    assert len(world.transport.sent("PUT", f"{DEPLOYMENTS}/model-v1")) == 1


@pytest.mark.parametrize(
    ("provisioning", "state"),
    [("Creating", "Creating"), ("Updating", "Creating"), ("Succeeded", "Succeeded"), ("Failed", "Failed")],
)
def test_deployment_reads_the_provisioning_state(world: AzureWorld, provisioning: str, state: str) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    world.ml.set_deployment_state("mlops-endpoint", "model-v1", provisioning)
    deployment = endpoints.deployment("model-v1")
    assert deployment is not None and deployment.state == state


def test_a_failed_deployment_says_why_with_its_logs(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    world.ml.set_deployment_state("mlops-endpoint", "model-v1", "Failed")
    deployment = endpoints.deployment("model-v1")
    assert deployment is not None and "the model could not be loaded" in deployment.detail


def test_a_missing_endpoint_is_created_and_the_deployment_retried_later(world: AzureWorld) -> None:
    from shared.adapters.azure.endpoints import EndpointNotReady

    world.ml.endpoints.clear()
    with pytest.raises(EndpointNotReady):
        world.endpoints().begin_deployment("model-v1", MODEL)
    [put] = world.transport.sent("PUT", _ws("/onlineEndpoints/mlops-endpoint"))
    assert put.json()["properties"]["authMode"] == "Key"
    assert "mlops-endpoint" in world.ml.endpoints


def test_set_traffic_puts_the_endpoint_with_its_new_traffic(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    world.ml.set_deployment_state("mlops-endpoint", "model-v1", "Succeeded")
    endpoints.set_traffic({"model-v1": 100})

    [put] = world.transport.sent("PUT", _ws("/onlineEndpoints/mlops-endpoint"))
    assert put.json()["properties"]["traffic"] == {"model-v1": 100}
    assert endpoints.traffic() == {"model-v1": 100}


def test_invalid_traffic_is_refused_before_any_request(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    with pytest.raises(ValueError, match="sum to 0 or 100"):
        endpoints.set_traffic({"model-v1": 50})
    assert world.transport.sent("PUT", _ws("/onlineEndpoints/mlops-endpoint")) == []


def test_invoke_sends_the_payload_with_the_key_to_the_named_deployment(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    payload = {"input_data": {"columns": ["age"], "index": [0, 1], "data": [[40], [50]]}}
    assert endpoints.invoke(payload, deployment="model-v1") == [1.0, 1.0]

    [score] = world.transport.sent("POST", "/score")
    assert score.host == "mlops-endpoint.westeurope.inference.ml.azure.com"
    assert score.json() == payload
    assert score.header("azureml-model-deployment") == "model-v1"
    assert score.header("Authorization") == "Bearer endpoint-key-1"
    assert score.header("x-ms-client-request-id").startswith("mlops-probe-")  # never production traffic


def test_invoke_without_a_deployment_follows_the_traffic_even_after_a_named_call(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    for name in ("model-v1", "model-v2"):
        endpoints.begin_deployment(name, MODEL)
        world.ml.set_deployment_state("mlops-endpoint", name, "Succeeded")
    endpoints.set_traffic({"model-v1": 100})
    payload = {"input_data": {"columns": ["age"], "index": [0], "data": [[40]]}}
    endpoints.invoke(payload, deployment="model-v2")
    endpoints.invoke(payload)  # azure-ai-ml's invoke would still send the header of the call before
    assert world.transport.sent("POST", "/score")[-1].header("azureml-model-deployment") is None
    assert world.ml.scored_by == ["model-v2", "model-v1"]


def test_scoring_reads_the_url_and_key_once_so_requests_time_only_the_endpoint(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    payload = {"input_data": {"columns": ["age"], "index": [0], "data": [[40]]}}
    before = len(world.transport.requests)
    for _ in range(5):
        endpoints.invoke(payload, deployment="model-v1")
    hosts = [r.host for r in world.transport.requests[before:]]
    assert hosts.count("mlops-endpoint.westeurope.inference.ml.azure.com") == 5
    assert len(world.transport.sent("POST", _ws("/onlineEndpoints/mlops-endpoint/listKeys"))) == 1


def test_a_rotated_key_is_read_again(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    payload = {"input_data": {"columns": ["age"], "index": [0], "data": [[40]]}}
    endpoints.invoke(payload, deployment="model-v1")
    world.ml.endpoint_key = "endpoint-key-rotated"
    assert endpoints.invoke(payload, deployment="model-v1") == [1.0]
    assert len(world.transport.sent("POST", _ws("/onlineEndpoints/mlops-endpoint/listKeys"))) == 2


def test_a_scoring_failure_carries_the_endpoints_answer(world: AzureWorld) -> None:
    from shared.adapters.azure.endpoints import ScoringError

    endpoints = world.endpoints()
    with pytest.raises(ScoringError) as raised:
        endpoints.invoke({"input_data": {"columns": [], "index": [], "data": []}}, deployment="model-v9")
    assert raised.value.status == 404 and "model-v9" in raised.value.body


def test_delete_deployment_begins_the_delete_and_it_is_gone_at_once(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    endpoints.delete_deployment("model-v1")
    assert len(world.transport.sent("DELETE", f"{DEPLOYMENTS}/model-v1")) == 1
    assert endpoints.deployment("model-v1") is None and endpoints.deployments() == []
    endpoints.delete_deployment("model-v1")  # still being deleted in Azure: nothing more to do
    assert len(world.transport.sent("DELETE", f"{DEPLOYMENTS}/model-v1")) == 1


def test_a_deployment_with_traffic_is_not_deleted(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    world.ml.set_deployment_state("mlops-endpoint", "model-v1", "Succeeded")
    endpoints.set_traffic({"model-v1": 100})
    with pytest.raises(ValueError, match="traffic"):
        endpoints.delete_deployment("model-v1")
    assert world.transport.sent("DELETE") == []


def test_a_deployment_being_deleted_cannot_be_created_again_yet(world: AzureWorld) -> None:
    from shared.adapters.azure.endpoints import EndpointNotReady

    endpoints = world.endpoints()
    endpoints.begin_deployment("model-v1", MODEL)
    endpoints.delete_deployment("model-v1")
    with pytest.raises(EndpointNotReady):
        endpoints.begin_deployment("model-v1", MODEL)
    world.ml.finish_deletions()
    endpoints.begin_deployment("model-v1", MODEL)
    assert len(world.transport.sent("PUT", f"{DEPLOYMENTS}/model-v1")) == 2


def test_set_mirror_traffic_puts_the_endpoint_with_its_mirror(world: AzureWorld) -> None:
    endpoints = world.endpoints()
    for name in ("model-v1", "model-v2"):
        endpoints.begin_deployment(name, MODEL)
        world.ml.set_deployment_state("mlops-endpoint", name, "Succeeded")
    endpoints.set_traffic({"model-v1": 100})
    endpoints.set_mirror_traffic({"model-v2": 10})
    put = world.transport.sent("PUT", _ws("/onlineEndpoints/mlops-endpoint"))[-1]
    assert put.json()["properties"]["mirrorTraffic"] == {"model-v2": 10}
    assert put.json()["properties"]["traffic"] == {"model-v1": 100}


def test_deleting_a_mirrored_deployment_ends_the_mirroring_first(world: AzureWorld) -> None:
    from shared.adapters.azure.endpoints import EndpointNotReady

    endpoints = world.endpoints()
    for name in ("model-v1", "model-v2"):
        endpoints.begin_deployment(name, MODEL)
        world.ml.set_deployment_state("mlops-endpoint", name, "Succeeded")
    endpoints.set_traffic({"model-v1": 100})
    endpoints.set_mirror_traffic({"model-v2": 10})
    with pytest.raises(EndpointNotReady):
        endpoints.delete_deployment("model-v2")
    assert endpoints.mirror_traffic() == {} and world.transport.sent("DELETE") == []
    endpoints.delete_deployment("model-v2")  # the next tick
    assert len(world.transport.sent("DELETE", f"{DEPLOYMENTS}/model-v2")) == 1


def test_stats_come_from_the_endpoints_metrics_in_azure_monitor(world: AzureWorld) -> None:
    world.ml.requests_per_minute["model-v2"] = {"2xx": [40.0, 50.0], "4xx": [2.0], "5xx": [3.0, 5.0]}
    world.ml.latency_p95_per_minute["model-v2"] = [120.0, 310.0, 90.0]
    stats = world.endpoints().stats("model-v2", since_seconds=150)
    assert (stats["requests"], stats["errors"], stats["p95_ms"]) == (100, 10, 310.0)
    assert stats["error_rate"] == pytest.approx(0.1)

    requests, latency = world.transport.sent("GET", re.compile("/providers/Microsoft.Insights/metrics$"))
    assert requests.path == _ws("/onlineEndpoints/mlops-endpoint/providers/Microsoft.Insights/metrics")
    assert requests.header("Authorization") == f"Bearer {TOKEN}"
    assert requests.query["metricnames"] == "RequestsPerMinute" and requests.query["aggregation"] == "Average"
    assert requests.query["$filter"] == "deployment eq 'model-v2' and statusCodeClass eq '*'"
    assert latency.query["metricnames"] == "RequestLatency_P95" and latency.query["aggregation"] == "Average"
    start, end = requests.query["timespan"].split("/")
    assert start.endswith(":00Z")  # whole minutes, at least the window asked for
    assert _seconds_between(start, end) >= 150


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_a_payload_with_nan_is_refused_before_sending(world: AzureWorld) -> None:
    from shared.adapters.azure.endpoints import ScoringError

    endpoints = world.endpoints()
    with pytest.raises(ScoringError) as raised:
        endpoints.invoke(
            {"input_data": {"columns": ["age"], "index": [0], "data": [[float("nan")]]}}, "model-v1"
        )
    assert raised.value.status == 400 and world.transport.sent("POST", "/score") == []


# --- storage and events ---------------------------------------------------------------------------------------


def test_blob_store_writes_conditionally_with_the_managed_identity(world: AzureWorld) -> None:
    blobs = world.blob_store()
    etag = blobs.write("state", "runs/a.json", b"{}", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        blobs.write("state", "runs/a.json", b"{}", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        blobs.write("state", "runs/a.json", b"[]", if_match='"0x8D000000000999"')
    blobs.write("state", "runs/a.json", b"[]", if_match=etag)
    blob = blobs.read("state", "runs/a.json")
    assert blob is not None and blob.data == b"[]"
    assert blobs.read("state", "runs/missing.json") is None

    first = world.transport.sent("PUT", "/state/runs/a.json")[0]
    assert first.header("If-None-Match") == "*"
    assert first.header("Authorization") == f"Bearer {TOKEN}"


def test_events_are_posted_to_the_custom_topic_with_a_bearer_token(world: AzureWorld) -> None:
    world.publisher().publish(
        [OutgoingEvent("MLOps.DriftDetected", "models/mlops-model/versions/1", {"driftShare": 0.6}, id="e-1")]
    )
    [post] = world.transport.sent("POST", "/api/events")
    assert post.header("Authorization") == f"Bearer {TOKEN}"
    assert "https://eventgrid.azure.net/.default" in world.credential.scopes
    [event] = world.eventgrid.events
    assert (event["id"], event["eventType"], event["data"]) == (
        "e-1",
        "MLOps.DriftDetected",
        {"driftShare": 0.6},
    )
    assert event["subject"] == "models/mlops-model/versions/1" and event["dataVersion"] == "1.0"
