"""Which run a trigger starts: one per dataset version, training code and environment. New code on the same data
is a new run, the same code is not; a failed run leaves room for the next trigger; code that cannot be used
waits with the reason; a failure's reason reaches the run and the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.handlers.drift import on_drift_detected
from shared.handlers.training import on_run_completed
from tests.builders import (
    actions,
    drift_detected,
    evaluation,
    good_csv,
    land,
    run_completed,
    run_state,
    start_after_quiet_period,
)
from tests.fakes import make_deps

COMMAND = "python train.py --data {train} --out {model}"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text("print('v1')\n")
    (folder / "requirements.txt").write_text("scikit-learn\n")
    return folder


def _deps(project: Path, **settings: str):
    return make_deps(
        MLOPS_TRAINING_CODE=str(project),
        MLOPS_TRAINING_COMMAND=COMMAND,
        MLOPS_TRAINING_ENVIRONMENT="requirements.txt",
        **settings,
    )


def _finish_failed(deps, run_id: str, **failure: str) -> None:
    deps.jobs.fail(run_id, failure=failure or None)
    on_run_completed(run_completed(deps, run_id, status="failed", event_id=f"evt-failed-{run_id}"), deps)


def _ask_again(deps, event_id: str) -> str | None:
    on_drift_detected(drift_detected(deps, event_id=event_id), deps)
    return start_after_quiet_period(deps)


def test_the_job_gets_the_command_and_the_codes_identity(project: Path) -> None:
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)

    job = deps.jobs.submitted[run_id]
    code = job.config["code"]
    assert (code["code"], code["command"], code["environment"]) == (str(project), COMMAND, "requirements.txt")
    identity = run_state(deps, run_id)["code"]
    assert identity == code["identity"]
    assert identity["built_in"] is False and len(identity["sources_sha256"]) == 64
    assert identity["environment_sha256"] is not None
    [started] = actions(deps, "training.started")
    assert started.detail["code"] == identity


def test_new_code_on_the_same_data_is_a_new_run_and_the_same_code_is_not(project: Path) -> None:
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    deps.jobs.complete(first, evaluation())
    on_run_completed(run_completed(deps, first, event_id="evt-done-1"), deps)

    assert _ask_again(deps, "evt-drift-1") is None  # same data, same code: nothing new to learn
    [waiting] = actions(deps, "training.waiting")
    assert "already trained on with this code" in waiting.detail["reason"]

    (project / "train.py").write_text("print('v2')\n")  # new code reaches the folder
    second = start_after_quiet_period(deps)

    assert second is not None and second != first
    assert run_state(deps, second)["dataset_version"] == run_state(deps, first)["dataset_version"]
    assert (
        run_state(deps, second)["code"]["sources_sha256"] != run_state(deps, first)["code"]["sources_sha256"]
    )


def test_a_new_environment_file_is_a_new_run(project: Path) -> None:
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _finish_failed(deps, first)  # whatever its end, a new environment makes another run
    (project / "requirements.txt").write_text("scikit-learn==1.5.2\n")

    second = _ask_again(deps, "evt-drift-1")

    assert second is not None and not second.startswith(first)


def test_a_failed_run_leaves_the_data_to_the_next_trigger(project: Path) -> None:
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _finish_failed(deps, first, stage="command", reason="the training command exited with 1", log_tail="boom")

    second = _ask_again(deps, "evt-drift-1")

    assert second == f"{first}-2"
    assert run_state(deps, first)["status"] == "failed"
    assert set(run_state(deps, second)["request"]["causes"]) == {"drift"}


def test_a_failures_reason_reaches_the_run_and_the_audit_log(project: Path) -> None:
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)

    _finish_failed(deps, run_id, stage="model", reason="the training command saved no model", log_tail="...")

    run = run_state(deps, run_id)
    assert run["failure"] == {
        "stage": "model",
        "reason": "the training command saved no model",
        "log_tail": "...",
    }
    [failed] = actions(deps, "run.failed")
    assert (failed.detail["stage"], failed.detail["reason"]) == (
        "model",
        "the training command saved no model",
    )
    assert deps.registry.models == {}


def test_code_that_is_not_there_waits_with_the_reason(project: Path, tmp_path: Path) -> None:
    deps = _deps(tmp_path / "gone")
    land(deps, "batch-1.csv", good_csv())

    assert start_after_quiet_period(deps) is None

    [waiting] = actions(deps, "training.waiting")
    assert "is not a folder here" in waiting.detail["reason"]
    assert deps.jobs.submitted == {}


def test_an_environment_file_that_is_not_there_waits_with_the_reason(project: Path) -> None:
    (project / "requirements.txt").unlink()
    deps = _deps(project)
    land(deps, "batch-1.csv", good_csv())

    assert start_after_quiet_period(deps) is None
    [waiting] = actions(deps, "training.waiting")
    assert "MLOPS_TRAINING_ENVIRONMENT requirements.txt is not a file" in waiting.detail["reason"]


def test_the_built_in_trainer_keys_runs_by_its_own_sources() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)

    identity = run_state(deps, run_id)["code"]
    assert identity["built_in"] is True and identity["environment_sha256"] is None
    assert deps.jobs.submitted[run_id].config["code"]["code"] is None
