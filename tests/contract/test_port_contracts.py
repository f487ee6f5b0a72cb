"""One contract per port, run against the Azure adapters (real SDKs, stub transport) and the test fakes.

The fakes stand in for the local adapters in every handler test, so agreeing with them means the handlers'
tests hold for Azure too. The same tests also run over the local adapters themselves (`local`, marked
integration): the training jobs and the registry with real training processes on Azurite and MLflow on SQLite
(tests/contract/local_platform.py), the endpoints against a real router with real scoring processes
(tests/contract/local_endpoint.py).

Each backend offers the same controls for what the platform does on its own: a run finishes, a deployment
becomes ready or fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.ports import Endpoints, ModelRegistry, ModelVersion, RunResults, TrainingJob, TrainingJobs
from tests.contract.azure_stub import AzureWorld
from tests.contract.local_endpoint import LocalEndpointWorld, save_model
from tests.contract.local_platform import LocalPlatform
from tests.fakes import FakeEndpoints, FakeJobs, FakeRegistry

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

NAME = "mlops-model"
MANIFEST = {
    "id": "ds-00000000000000aa",
    "files": [{"name": "a.csv", "sha256": "aa", "rows": 10, "path": "files/aa.csv"}],
    "schema": {"x": "number"},
    "rows": 10,
}
EVALUATION = {"run_id": "train-1", "primary_metric": "rmse", "challenger": {"rmse": 1.0}, "champion": None}
ROWS = {"input_data": {"columns": ["x"], "index": [0, 1, 2], "data": [[1], [2], [3]]}}


@dataclass
class Backend:
    jobs: TrainingJobs
    registry: ModelRegistry
    endpoints: Endpoints
    world: AzureWorld | None = None
    local: LocalEndpointWorld | None = None  # the local endpoint (the jobs and registry are then fakes)

    @property
    def model(self) -> ModelVersion:
        """The model version the endpoint tests deploy (the local endpoint needs its folder on disk)."""
        return self.local.model if self.local is not None else MODEL

    # what the platform does by itself
    def finish_run(self, run_id: str, evaluation: dict[str, Any]) -> None:
        if self.world is None:
            assert isinstance(self.jobs, FakeJobs)
            self.jobs.complete(run_id, evaluation, f"azureml://jobs/{run_id}/outputs/output/paths/model")
            return
        self.world.ml.set_job_status(run_id, "Completed")
        container = self.world.settings.containers.datasets
        self.world.storage.put(
            container, f"runs/{run_id}/output/evaluation.json", json.dumps(evaluation).encode()
        )

    def fail_run(self, run_id: str) -> None:
        if self.world is None:
            assert isinstance(self.jobs, FakeJobs)
            self.jobs.fail(run_id)
        else:
            self.world.ml.set_job_status(run_id, "Failed")

    def deployment_becomes(self, name: str, state: str) -> None:
        if self.local is not None:
            self.local.deployment_becomes(name, state)
        elif self.world is None:
            assert isinstance(self.endpoints, FakeEndpoints)
            self.endpoints.set_state(name, state)
        else:
            self.world.ml.set_deployment_state(self.world.azure.endpoint, name, state)

    def deployment_answered(self, name: str, ok: int, errors: int, p95_ms: float) -> tuple[float, float]:
        """Live requests reached `name` (what Azure Monitor's metrics, or the local router, record). Returns
        the range the reported p95 must be in: exactly `p95_ms` where the platform reports what it recorded;
        locally, real answers that took `p95_ms` at least, and at most the clients' own round trips."""
        if self.local is not None:
            return self.local.deployment_answered(name, ok, errors, p95_ms)
        if self.world is None:
            assert isinstance(self.endpoints, FakeEndpoints)
            self.endpoints.set_stats(name, requests=ok + errors, errors=errors, p95_ms=p95_ms)
        else:
            self.world.ml.requests_per_minute[name] = {"2xx": [float(ok)], "5xx": [float(errors)]}
            self.world.ml.latency_p95_per_minute[name] = [p95_ms]
        return p95_ms, p95_ms

    # what the platform now holds
    def jobs_created(self) -> int:
        if self.world is None:
            assert isinstance(self.jobs, FakeJobs)
            return len(self.jobs.submitted)
        return len(self.world.ml.jobs)

    def versions(self, name: str) -> int:
        if self.world is None:
            assert isinstance(self.registry, FakeRegistry)
            return len(self.registry.models.get(name, []))
        return len(self.world.ml.models.get(name, {}))


@pytest.fixture(params=["fakes", "azure"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fakes":
        yield Backend(FakeJobs(), FakeRegistry(), FakeEndpoints())
        return
    if request.param == "local":  # asked for by the endpoint tests only (ENDPOINT_BACKENDS)
        local = LocalEndpointWorld(
            NAME, request.getfixturevalue("tmp_path"), request.getfixturevalue("local_model"), MODEL
        )
        try:
            yield Backend(FakeJobs(), FakeRegistry(), local.endpoints, local=local)
        finally:
            local.stop()
        return
    world = AzureWorld()
    yield Backend(world.jobs(), world.registry(), world.endpoints(), world)


def _job(run_id: str = "train-1", champion: ModelVersion | None = None) -> TrainingJob:
    return TrainingJob(run_id, MANIFEST["id"], MANIFEST, {"task": "regression"}, champion)


def _results(run_id: str = "train-1") -> RunResults:
    return RunResults(run_id, EVALUATION, f"azureml://jobs/{run_id}/outputs/output/paths/model")


@dataclass
class Remote:
    """The jobs and registry controls of a Backend (fakes, Azure), as LocalPlatform offers them locally."""

    backend: Backend

    @property
    def jobs(self) -> TrainingJobs:
        return self.backend.jobs

    @property
    def registry(self) -> ModelRegistry:
        return self.backend.registry

    def job(self, run_id: str = "train-1", fails: bool = False) -> TrainingJob:
        return _job(run_id)  # whether it fails is the platform's doing, below

    def job_finishes(self, run_id: str) -> RunResults:
        self.backend.finish_run(run_id, EVALUATION)
        return _results(run_id)

    def job_fails(self, run_id: str) -> None:
        self.backend.fail_run(run_id)

    def jobs_created(self) -> int:
        return self.backend.jobs_created()

    def finished(self, run_id: str) -> RunResults:
        return _results(run_id)

    def versions(self, name: str) -> int:
        return self.backend.versions(name)


Platform = Remote | LocalPlatform


@pytest.fixture(params=["fakes", "azure", pytest.param("local", marks=pytest.mark.integration)])
def platform(request: pytest.FixtureRequest) -> Platform:
    """Training jobs and a model registry, with what the platform does by itself: runs finish or fail."""
    if request.param == "local":
        return request.getfixturevalue("local_platform")
    if request.param == "fakes":
        return Remote(Backend(FakeJobs(), FakeRegistry(), FakeEndpoints()))
    world = AzureWorld()
    return Remote(Backend(world.jobs(), world.registry(), world.endpoints(), world))


# --- TrainingJobs ---------------------------------------------------------------------------------------------


def test_a_submitted_run_is_waiting_to_run(platform: Platform) -> None:
    platform.jobs.submit(platform.job())
    assert platform.jobs.status("train-1") == "Queued"


def test_submit_is_idempotent_by_run_id(platform: Platform) -> None:
    platform.jobs.submit(platform.job())
    platform.jobs.submit(platform.job())
    assert platform.jobs_created() == 1
    platform.jobs.submit(platform.job("train-2"))
    assert platform.jobs_created() == 2


def test_an_unknown_run_is_not_found(platform: Platform) -> None:
    assert platform.jobs.status("train-unknown") == "NotFound"


@pytest.mark.finished_run  # locally a run takes seconds: the one the registry tests need serves here too
def test_a_finished_run_has_its_evaluation_and_model(platform: Platform) -> None:
    platform.jobs.submit(platform.job())
    finished = platform.job_finishes("train-1")
    assert platform.jobs.status("train-1") == "Completed"
    results = platform.jobs.results("train-1")
    assert (results.run_id, results.evaluation) == ("train-1", finished.evaluation)
    assert results.model_uri == finished.model_uri


def test_a_failed_run_says_so_and_has_no_results(platform: Platform) -> None:
    platform.jobs.submit(platform.job(fails=True))
    platform.job_fails("train-1")
    assert platform.jobs.status("train-1") == "Failed"
    with pytest.raises(LookupError):
        platform.jobs.results("train-1")
    failure = platform.jobs.failure("train-1")  # why, when the backend knows
    assert failure is None or {"stage", "reason"} <= failure.keys()


# --- ModelRegistry --------------------------------------------------------------------------------------------


def test_register_is_idempotent_by_run_id(platform: Platform) -> None:
    tags = {"mlops.dataset_version": MANIFEST["id"]}
    first = platform.registry.register(NAME, platform.finished("train-1"), tags)
    again = platform.registry.register(NAME, platform.finished("train-1"), tags)
    assert first == again and platform.versions(NAME) == 1
    assert first.tags == {"mlops.dataset_version": MANIFEST["id"], "mlops.run_id": "train-1"}
    assert first.source == platform.finished("train-1").model_uri


def test_versions_count_up_per_run(platform: Platform) -> None:
    registry = platform.registry
    versions = [registry.register(NAME, platform.finished(run), {}).version for run in ("train-1", "train-2")]
    assert versions == ["1", "2"]


def test_a_registered_models_files_hash_as_the_job_hashed_what_it_evaluated(platform: Platform) -> None:
    results = platform.finished("train-1")
    model = platform.registry.register(NAME, results, {})
    digest = platform.registry.artifact_sha256(model)
    assert digest is None or digest == results.evaluation.get("model_sha256")  # None: it cannot read them
    if isinstance(platform, LocalPlatform):
        assert digest is not None  # the local backend always can


def test_a_registered_version_is_found_by_version_and_by_run(platform: Platform) -> None:
    model = platform.registry.register(NAME, platform.finished("train-1"), {})
    assert platform.registry.get(NAME, model.version) == model
    assert platform.registry.find_by_run(NAME, "train-1") == model
    assert model.id == f"{NAME}:1"


def test_unknown_models_are_none(platform: Platform) -> None:
    platform.registry.register(NAME, platform.finished("train-1"), {})
    assert platform.registry.get(NAME, "99") is None
    assert platform.registry.find_by_run(NAME, "train-never") is None
    assert platform.registry.get("other-model", "1") is None
    assert platform.registry.find_by_run("other-model", "train-1") is None
    assert platform.registry.run_versions(NAME, "train-never") == []
    assert platform.registry.run_versions("other-model", "train-1") == []


def test_the_versions_of_a_run_are_listed_lowest_first(platform: Platform) -> None:
    registry = platform.registry
    registry.register(NAME, platform.finished("train-1"), {})
    second = registry.register(NAME, platform.finished("train-2"), {})
    assert registry.run_versions(NAME, "train-2") == [second] == [registry.find_by_run(NAME, "train-2")]


# --- Endpoints ------------------------------------------------------------------------------------------------

MODEL = ModelVersion(NAME, "1", {}, "azureml://jobs/train-1/outputs/output/paths/model")
# Every endpoint backend, the local one with real processes: one router per test, one model per module.
ENDPOINT_BACKENDS = pytest.mark.parametrize(
    "backend", ["fakes", "azure", pytest.param("local", marks=pytest.mark.integration)], indirect=True
)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("contract-model") / "model")


@ENDPOINT_BACKENDS
def test_a_new_deployment_is_creating_without_traffic(backend: Backend) -> None:
    backend.endpoints.begin_deployment("model-v1", backend.model)
    deployment = backend.endpoints.deployment("model-v1")
    assert deployment is not None
    assert (deployment.name, deployment.model, deployment.state) == ("model-v1", backend.model.id, "Creating")
    assert backend.endpoints.traffic() == {"model-v1": 0}


@ENDPOINT_BACKENDS
def test_begin_deployment_is_idempotent_by_name(backend: Backend) -> None:
    backend.endpoints.begin_deployment("model-v1", backend.model)
    backend.deployment_becomes("model-v1", "Succeeded")
    backend.endpoints.begin_deployment("model-v1", backend.model)
    assert [(d.name, d.state) for d in backend.endpoints.deployments()] == [("model-v1", "Succeeded")]


@ENDPOINT_BACKENDS
def test_an_unknown_deployment_is_none(backend: Backend) -> None:
    assert backend.endpoints.deployment("model-v9") is None
    assert backend.endpoints.deployments() == []


@ENDPOINT_BACKENDS
def test_a_failed_deployment_is_reported_failed(backend: Backend) -> None:
    backend.endpoints.begin_deployment("model-v1", backend.model)
    backend.deployment_becomes("model-v1", "Failed")
    deployment = backend.endpoints.deployment("model-v1")
    assert deployment is not None and deployment.state == "Failed"


def _two_ready(backend: Backend) -> None:
    # Both begun before either is awaited: locally they load side by side.
    for name in ("model-v1", "model-v2"):
        backend.endpoints.begin_deployment(name, backend.model)
    for name in ("model-v1", "model-v2"):
        backend.deployment_becomes(name, "Succeeded")


@ENDPOINT_BACKENDS
def test_traffic_moves_and_lists_every_deployment(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    assert backend.endpoints.traffic() == {"model-v1": 100, "model-v2": 0}
    backend.endpoints.set_traffic({"model-v1": 90, "model-v2": 10})
    assert backend.endpoints.traffic() == {"model-v1": 90, "model-v2": 10}


@ENDPOINT_BACKENDS
@pytest.mark.parametrize(
    "traffic",
    [
        {"model-v1": 50},
        {"model-v1": 101, "model-v2": -1},
        {"model-v3": 100},
        {"model-v1": True},
        {"model-v1": 50.0},
    ],
)
def test_invalid_traffic_is_refused_and_changes_nothing(backend: Backend, traffic: dict[str, Any]) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    with pytest.raises(ValueError):
        backend.endpoints.set_traffic(traffic)
    assert backend.endpoints.traffic() == {"model-v1": 100, "model-v2": 0}


@ENDPOINT_BACKENDS
def test_a_deployment_with_traffic_cannot_be_deleted(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    with pytest.raises(ValueError):
        backend.endpoints.delete_deployment("model-v1")
    assert backend.endpoints.deployment("model-v1") is not None


@ENDPOINT_BACKENDS
def test_a_deleted_deployment_is_gone_and_deleting_again_is_harmless(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    backend.endpoints.delete_deployment("model-v2")
    backend.endpoints.delete_deployment("model-v2")
    backend.endpoints.delete_deployment("model-v9")
    assert backend.endpoints.deployment("model-v2") is None
    assert [d.name for d in backend.endpoints.deployments()] == ["model-v1"]
    assert backend.endpoints.traffic() == {"model-v1": 100}


@ENDPOINT_BACKENDS
def test_invoke_answers_one_prediction_per_row(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    assert len(backend.endpoints.invoke(ROWS, deployment="model-v2")) == 3
    assert len(backend.endpoints.invoke(ROWS)) == 3


@ENDPOINT_BACKENDS
def test_invoke_without_traffic_or_deployment_fails(backend: Backend) -> None:
    _two_ready(backend)
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error type; the port says "fails"
        backend.endpoints.invoke(ROWS)


@ENDPOINT_BACKENDS
def test_mirroring_one_deployment_reads_back_and_ends_with_live_traffic(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    assert backend.endpoints.mirror_traffic() == {}
    backend.endpoints.set_mirror_traffic({"model-v2": 20})
    assert backend.endpoints.mirror_traffic() == {"model-v2": 20}
    backend.endpoints.set_traffic({"model-v1": 50, "model-v2": 50})
    assert backend.endpoints.mirror_traffic() == {}


@ENDPOINT_BACKENDS
def test_mirroring_ends_with_an_empty_setting(backend: Backend) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    backend.endpoints.set_mirror_traffic({"model-v2": 10})
    backend.endpoints.set_mirror_traffic({"model-v2": 0})
    assert backend.endpoints.mirror_traffic() == {}


@ENDPOINT_BACKENDS
@pytest.mark.parametrize(
    "mirror",
    [
        {"model-v1": 10},
        {"model-v2": 51},
        {"model-v3": 10},
        {"model-v2": True},
        {"model-v1": 5, "model-v2": 5},
    ],
)
def test_invalid_mirror_traffic_is_refused(backend: Backend, mirror: dict[str, Any]) -> None:
    _two_ready(backend)
    backend.endpoints.set_traffic({"model-v1": 100})
    with pytest.raises(ValueError):
        backend.endpoints.set_mirror_traffic(mirror)
    assert backend.endpoints.mirror_traffic() == {}


@ENDPOINT_BACKENDS
def test_stats_of_a_deployment_without_requests_are_empty(backend: Backend) -> None:
    stats = backend.endpoints.stats("model-v1", since_seconds=300)
    assert (stats["requests"], stats["errors"], stats["error_rate"], stats["p95_ms"]) == (0, 0, 0.0, None)
    assert stats["mirror"]["requests"] == 0


@ENDPOINT_BACKENDS
def test_stats_count_requests_errors_and_latency(backend: Backend) -> None:
    _two_ready(backend)
    lowest, highest = backend.deployment_answered("model-v2", ok=95, errors=5, p95_ms=180.0)
    stats = backend.endpoints.stats("model-v2", since_seconds=300)
    assert (stats["requests"], stats["errors"]) == (100, 5)
    assert lowest <= stats["p95_ms"] <= highest
    assert stats["error_rate"] == pytest.approx(0.05)
