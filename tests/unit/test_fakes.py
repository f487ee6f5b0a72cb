"""The fakes keep the promises of the ports they stand for; a fake that is kinder than the real adapter would
let handler bugs through."""

from __future__ import annotations

import pytest

from shared.deps import Deps
from shared.domain.messages import MODEL_REGISTERED
from shared.ports import ModelVersion, PreconditionFailed, RunResults, TrainingJob
from tests.fakes import FakeEndpoints, FakeJobs, FakeRegistry, InMemoryBlobStore, make_deps

MODEL = ModelVersion("m", "1", {}, "memory://m/1")


def endpoint_with(*names: str) -> FakeEndpoints:
    endpoints = FakeEndpoints(initial_state="Succeeded")
    for name in names:
        endpoints.begin_deployment(name, MODEL)
    return endpoints


@pytest.mark.parametrize(
    "traffic",
    [{"blue": 50}, {"blue": 60, "green": 60}, {"blue": 100.0}, {"blue": True}, {"red": 100}, {"blue": -10}],
)
def test_traffic_must_be_whole_percentages_to_known_deployments_summing_to_0_or_100(
    traffic: dict[str, int],
) -> None:
    endpoints = endpoint_with("blue", "green")

    with pytest.raises(ValueError):
        endpoints.set_traffic(traffic)
    assert endpoints.traffic() == {"blue": 0, "green": 0}


def test_traffic_not_named_goes_to_zero() -> None:
    endpoints = endpoint_with("blue", "green")
    endpoints.set_traffic({"blue": 100})

    endpoints.set_traffic({"green": 100})

    assert endpoints.traffic() == {"blue": 0, "green": 100}


def test_a_deployment_taking_traffic_cannot_be_deleted() -> None:
    endpoints = endpoint_with("blue")
    endpoints.set_traffic({"blue": 100})

    with pytest.raises(ValueError):
        endpoints.delete_deployment("blue")
    endpoints.set_traffic({"blue": 0})
    endpoints.delete_deployment("blue")
    assert endpoints.deployments() == []


def test_invoke_answers_one_prediction_per_row_or_raises_when_told() -> None:
    endpoints = endpoint_with("blue")
    payload = {"input_data": {"columns": ["x"], "index": [0, 1, 2], "data": [[1], [2], [3]]}}

    assert endpoints.invoke(payload, deployment="blue") == [1.0, 1.0, 1.0]
    with pytest.raises(LookupError):
        endpoints.invoke(payload)  # no deployment takes traffic yet
    endpoints.scoring_error = RuntimeError("boom")
    with pytest.raises(RuntimeError):
        endpoints.invoke(payload, deployment="blue")


def test_new_deployments_start_creating_until_the_test_moves_them_on() -> None:
    endpoints = FakeEndpoints()
    endpoints.begin_deployment("blue", MODEL)
    assert endpoints.deployment("blue").state == "Creating"

    endpoints.set_state("blue", "Failed", detail="quota")

    assert (endpoints.deployment("blue").state, endpoints.deployment("blue").detail) == ("Failed", "quota")


def test_registry_numbers_versions_and_registers_a_run_once() -> None:
    registry = FakeRegistry()

    first = registry.register("m", RunResults("run-1", {}, "memory://1"), {"k": "v"})
    again = registry.register("m", RunResults("run-1", {}, "memory://1"), {"k": "other"})
    second = registry.register("m", RunResults("run-2", {}, "memory://2"), {})

    assert (first.version, again.version, second.version) == ("1", "1", "2")
    assert again.tags["k"] == "v"
    assert registry.get("m", "2") == second
    assert registry.find_by_run("m", "run-2") == second
    assert [(e.envelope.event_type, e.model_version) for e in registry.announced] == [
        (MODEL_REGISTERED, "1"),
        (MODEL_REGISTERED, "2"),
    ]


def test_jobs_are_idempotent_by_run_id_and_end_as_the_test_says() -> None:
    jobs = FakeJobs()
    job = TrainingJob("run-1", "ds-1", {"id": "ds-1"}, {})

    jobs.submit(job)
    jobs.submit(TrainingJob("run-1", "ds-2", {}, {}))

    assert jobs.submitted == {"run-1": job}
    assert (jobs.status("run-1"), jobs.status("run-9")) == ("Queued", "NotFound")
    jobs.complete("run-1", {"challenger": {}})
    assert jobs.status("run-1") == "Completed"
    assert jobs.results("run-1").evaluation == {"challenger": {}}


def test_make_deps_builds_real_deps_with_settings_overrides() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true", MLOPS_QUIET_PERIOD_SECONDS="5")

    assert isinstance(deps, Deps)
    assert deps.settings.release.require_approval is True
    assert deps.settings.runs.quiet_period_seconds == 5
    before = deps.clock()
    deps.clock.advance(90)
    assert (deps.clock() - before).total_seconds() == 90
    assert set(deps.blobs.names(c) == [] for c in deps.settings.containers.all()) == {True}


@pytest.fixture()
def blobs() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.ensure_containers(["data"])
    return store


# --- the fake blob store honours the port's conditions ---------------------------------------------------------


def test_every_write_changes_the_etag_and_conditions_follow_it(blobs: InMemoryBlobStore) -> None:
    first = blobs.write("data", "a", b"1")
    second = blobs.write("data", "a", b"2", if_match=first)

    assert first != second
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "a", b"3", if_match=first)
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "a", b"3", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "missing", b"3", if_match=first)
    assert blobs.read("data", "a").data == b"2"


def test_append_creates_extends_and_honours_conditions(blobs: InMemoryBlobStore) -> None:
    created = blobs.append("data", "log", b"a", if_none_match=True)

    with pytest.raises(PreconditionFailed):
        blobs.append("data", "log", b"x", if_none_match=True)
    extended = blobs.append("data", "log", b"b", if_match=created)
    with pytest.raises(PreconditionFailed):
        blobs.append("data", "log", b"x", if_match=created)
    with pytest.raises(PreconditionFailed):
        blobs.append("data", "other", b"x", if_match=extended)
    blobs.append("data", "log", b"c")

    assert blobs.read("data", "log").data == b"abc"


def test_list_by_prefix_and_conditional_delete(blobs: InMemoryBlobStore) -> None:
    etag = blobs.write("data", "runs/a.json", b"{}")
    blobs.write("data", "runs/b.json", b"{}")
    blobs.write("data", "releases/a.json", b"{}")

    assert [i.name for i in blobs.list("data", "runs/")] == ["runs/a.json", "runs/b.json"]
    with pytest.raises(PreconditionFailed):
        blobs.delete("data", "runs/b.json", if_match=etag)
    blobs.delete("data", "runs/a.json", if_match=etag)
    blobs.delete("data", "runs/a.json")  # deleting what is gone is fine without a condition
    with pytest.raises(PreconditionFailed):
        blobs.delete("data", "runs/a.json", if_match=etag)
    assert blobs.names("data") == ["releases/a.json", "runs/b.json"]


def test_a_missing_container_is_an_error_not_a_silent_write(blobs: InMemoryBlobStore) -> None:
    with pytest.raises(LookupError):
        blobs.write("nowhere", "a", b"1")


def test_registry_looks_up_then_creates_so_interleaved_registrations_of_a_run_make_two_versions() -> None:
    registry = FakeRegistry()
    results = RunResults("run-1", {}, "memory://1")
    registry.before_once("create", lambda: registry.register("m", results, {}))  # between look-up and create

    mine = registry.register("m", results, {})

    assert mine.version == "2"
    assert [m.version for m in registry.run_versions("m", "run-1")] == ["1", "2"]
    assert registry.find_by_run("m", "run-1").version == "1"  # the lowest is the run's
