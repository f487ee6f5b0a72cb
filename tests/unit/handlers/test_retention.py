"""Retention on fakes: what is past its days goes, what is not (or was written again) stays, and the records
that stop a file from being validated twice are kept while the file is in landing."""

from __future__ import annotations

from shared.handlers.data import on_blob_created
from shared.handlers.drift_check import check_drift
from shared.handlers.retention import apply_retention
from shared.state import keys
from tests.builders import actions, blob_created, good_csv, land, production_with_drift
from tests.fakes import FakeDeps, make_deps

DAY = 86_400


def _deps(**settings: str) -> FakeDeps:
    return make_deps(
        MLOPS_RETAIN_TRAFFIC_DAYS="10",
        MLOPS_RETAIN_QUARANTINE_DAYS="10",
        MLOPS_RETAIN_STATE_DAYS="20",
        **settings,
    )


def test_blobs_past_their_days_go_and_newer_ones_stay() -> None:
    deps = _deps()
    inference, reports = deps.settings.containers.inference, deps.settings.containers.reports
    deps.blobs.write(inference, "old/2024/05/06/12/a.jsonl", b"{}")
    deps.blobs.write(reports, "drift/old.html", b"<html/>")
    deps.clock.advance(11 * DAY)
    deps.blobs.write(inference, "new/b.jsonl", b"{}")

    removed = apply_retention(deps)

    assert deps.blobs.names(inference) == ["new/b.jsonl"]
    assert deps.blobs.names(reports) == ["drift/old.html"]  # reports are kept 365 days
    assert removed["traffic"] == 1 and removed["reports"] == 0
    [applied] = actions(deps, "retention.applied")
    assert applied.detail["removed"] == removed


def test_zero_days_keeps_for_ever() -> None:
    deps = _deps(MLOPS_RETAIN_DEADLETTER_DAYS="0")
    deps.blobs.write(deps.settings.containers.deadletter, "event.json", b"{}")
    deps.clock.advance(10_000 * DAY)

    removed = apply_retention(deps)

    assert "deadletter" not in removed
    assert deps.blobs.names(deps.settings.containers.deadletter) == ["event.json"]


def test_a_drift_check_whose_late_end_never_came_is_let_go_after_the_state_days() -> None:
    deps = _deps(MLOPS_DRIFT_JOB_TIMEOUT_SECONDS="600")
    production_with_drift(deps)
    first = check_drift(deps)
    deps.drift_jobs.statuses[first.check_id] = "Running"
    deps.clock.advance(601)
    check_drift(deps)  # the first is cancelled; its end is awaited
    overdue = keys.overdue_drift_check(first.check_id)
    assert deps.state.exists(overdue)

    deps.clock.advance(19 * DAY)
    assert apply_retention(deps)["overdue_drift_checks"] == 0
    deps.clock.advance(2 * DAY)
    assert apply_retention(deps)["overdue_drift_checks"] == 1

    assert not deps.state.exists(overdue)
    assert deps.state.exists(keys.drift_check(deps.settings.model_name))  # the check in flight stays


def test_a_blob_written_again_after_it_was_listed_is_kept() -> None:
    deps = _deps()
    inference = deps.settings.containers.inference
    deps.blobs.write(inference, "a.jsonl", b"{}")
    deps.clock.advance(11 * DAY)
    deps.blobs.before_once("delete", lambda: deps.blobs.write(inference, "a.jsonl", b'{"again": 1}'))

    apply_retention(deps)

    assert deps.blobs.names(inference) == ["a.jsonl"]


def test_records_of_files_still_in_landing_are_kept_and_of_files_gone_long_ago_removed() -> None:
    deps = _deps()
    land(deps, "kept.csv", good_csv(), event_id="evt-kept")
    land(deps, "bad.csv", b"x1,x2\n1,2\n", event_id="evt-bad")  # quarantined: leaves landing
    deps.clock.advance(21 * DAY)

    removed = apply_retention(deps)

    names = sorted(stored.record.blob for stored in deps.state.list(keys.FILES))
    assert names == ["kept.csv"] and removed["file_records"] == 1
    assert removed["quarantine"] == 2  # the file and its reason, 21 days after quarantine
    # A redelivery of the kept file's event still finds its record: the file is not validated again.
    on_blob_created(blob_created(deps, "kept.csv", "evt-kept"), deps)
    assert len(actions(deps, "file.accepted")) == 1
