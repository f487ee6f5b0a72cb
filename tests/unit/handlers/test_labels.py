"""Late labels landing on fakes: validation, matching to served rows, the labels store, quarantine with reasons,
and exactly-once effects when a worker dies half-way."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.domain.messages import BlobCreated
from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.handlers.labels import on_labels_landed
from shared.handlers.notify import summarise_quarantined
from shared.state import keys, labels
from shared.state import lease as workflow
from shared.testing import faults
from tests.builders import actions, blob_created, label_csv, land_labels, serve
from tests.fakes import FakeDeps, make_deps


def served(deps: FakeDeps, count: int = 3, hours_ago: float = 2, deployment: str = "model-v1") -> list[str]:
    at = deps.clock() - timedelta(hours=hours_ago)
    ids = []
    for i in range(count):
        ids += serve(deps, deployment, f"req-{deployment}-{hours_ago}-{i}", [{"x1": i}], [2.0 * i], at, "1")
    return ids


def record(deps: FakeDeps, name: str) -> dict:
    [stored] = [s for s in deps.state.list(keys.LABEL_FILES) if s.record.blob == name]
    return json.loads(deps.blobs.read("state", f"{stored.key.path}.json").data)["record"]


def test_labels_that_name_served_rows_are_accepted_and_filed_by_the_hour_they_were_served() -> None:
    deps = make_deps()
    ids = served(deps)

    land_labels(deps, "day-1.csv", label_csv({ids[0]: 1.5, ids[1]: 2.5, "never-served": 9}))

    [accepted] = actions(deps, "labels.accepted")
    assert accepted.subject == "day-1.csv"
    assert (accepted.detail["rows"], accepted.detail["matched"], accepted.detail["unmatched"]) == (3, 2, 1)
    assert record(deps, "day-1.csv")["status"] == "accepted"
    [stored] = record(deps, "day-1.csv")["stored"]
    assert stored.startswith("labels/model-v1/2024/05/06/10/") and deps.blobs.names("datasets") == [stored]
    lines = [json.loads(line) for line in deps.blobs.text("datasets", stored).splitlines()]
    assert lines == [{"id": ids[0], "value": 1.5}, {"id": ids[1], "value": 2.5}]
    assert deps.blobs.names("labels") == ["day-1.csv"]  # accepted files stay where they landed
    assert actions(deps, "file.accepted") == [] and deps.state.get(keys.SCHEMA) is None  # not training data
    assert deps.audit.verify() == []


def test_a_file_whose_ids_match_no_served_row_is_quarantined_with_that_reason() -> None:
    deps = make_deps()
    served(deps)
    old = served(deps, hours_ago=24 * 8)  # served before the quality window: no check can use its labels

    land_labels(deps, "wrong.csv", label_csv({"elsewhere-1": 1, old[0]: 2}))

    assert deps.blobs.names("labels") == []
    assert deps.blobs.names("quarantine") == ["labels/wrong.csv", "labels/wrong.csv.reason.json"]
    reason = json.loads(deps.blobs.text("quarantine", "labels/wrong.csv.reason.json"))
    assert reason["reasons"] == [
        "none of its 2 correlation ids names a row served in the last 168 hours (labels must name row ids the "
        "endpoint answered with, while the quality check can still see them)"
    ]
    assert (reason["matched"], reason["unmatched"]) == (0, 2)
    [quarantined] = actions(deps, "labels.quarantined")
    assert quarantined.detail["problems"][0]["code"] == "unmatched_ids"
    assert [n for n in deps.blobs.names("datasets") if n.startswith("labels/")] == []
    # the burst's notification names it beside quarantined data files
    deps.clock.advance(deps.settings.notify.quarantine_quiet_seconds + 1)
    assert summarise_quarantined(deps) == 1
    [announced] = [e for e in deps.publisher.events if e.event_type == "MLOps.FilesQuarantined"]
    assert announced.data["files"] == ["labels/wrong.csv"]


def test_mirrored_copies_are_no_served_rows() -> None:
    deps = make_deps()
    at = deps.clock() - timedelta(hours=1)
    [shadow] = serve(deps, "model-v2", "req-m", [{"x1": 1}], [1.0], at, "2", mirrored=True)

    land_labels(deps, "shadow.csv", label_csv({shadow: 1}))

    assert actions(deps, "labels.quarantined")[0].detail["unmatched"] == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"request,target\nreq-1,1\n", "no correlation_id column"),
        (b"correlation_id,target\nreq-1,tall\n", "column target is text, expected number"),
        (b"correlation_id,prediction\nreq-1,1\n", "no column of true values"),
        (b"\xff\xfe\x00", "file is not UTF-8"),
    ],
)
def test_a_bad_label_file_is_quarantined_with_its_reasons(data: bytes, reason: str) -> None:
    deps = make_deps()
    served(deps)

    land_labels(deps, "bad.csv", data)

    [quarantined] = actions(deps, "labels.quarantined")
    assert reason in quarantined.detail["reasons"][0]
    stored = json.loads(deps.blobs.text("quarantine", "labels/bad.csv.reason.json"))
    assert stored["reasons"] == quarantined.detail["reasons"]
    assert deps.blobs.read("quarantine", "labels/bad.csv").data == data
    assert record(deps, "bad.csv")["status"] == "quarantined"


def test_class_labels_are_checked_against_the_classes_the_schema_knows() -> None:
    schema = '{"columns": {"x1": "number", "target": {"type": "category", "categories": ["no", "yes"]}}}'
    deps = make_deps(MLOPS_TASK="binary", MLOPS_SCHEMA=schema, MLOPS_ABSOLUTE_GATES="")
    ids = served(deps)

    land_labels(deps, "classes.csv", label_csv({ids[0]: "yes", ids[1]: "perhaps"}))
    land_labels(deps, "fine.csv", label_csv({ids[0]: "yes", ids[1]: "no"}))

    assert "'perhaps'" in actions(deps, "labels.quarantined")[0].detail["reasons"][0]
    assert actions(deps, "labels.accepted")[0].subject == "fine.csv"


def test_a_redelivered_event_files_nothing_twice() -> None:
    deps = make_deps()
    ids = served(deps)
    message = land_labels(deps, "day-1.csv", label_csv({ids[0]: 1}))

    on_labels_landed(message, deps)

    assert len(actions(deps, "labels.accepted")) == 1
    assert len(deps.blobs.names("datasets")) == 1


def test_label_and_data_files_never_cross_over() -> None:
    deps = make_deps()
    ids = served(deps)
    deps.blobs.write("labels", "day-1.csv", label_csv({ids[0]: 1}))
    deps.blobs.write("landing", "rows.csv", b"correlation_id,target\nx,1\n")

    on_blob_created(blob_created(deps, "day-1.csv", "evt-l", "labels"), deps)
    on_labels_landed(blob_created(deps, "rows.csv", "evt-d"), deps)

    ignored = [e.detail["reason"] for e in actions(deps, "event.ignored")]
    assert ignored == [
        "container 'labels' is not the landing container",
        "container 'landing' is not the labels container",
    ]
    assert actions(deps, "file.quarantined") == actions(deps, "labels.accepted") == []


def test_reconcile_picks_up_a_label_file_whose_event_was_lost() -> None:
    deps = make_deps()
    ids = served(deps)
    deps.blobs.write("labels", "lost.csv", label_csv({ids[0]: 1}))

    reconciliation.reconcile(deps)
    reconciliation.reconcile(deps)

    [accepted] = actions(deps, "labels.accepted")
    assert accepted.actor == "reconcile" and accepted.subject == "lost.csv"


def _end_state(deps: FakeDeps) -> dict:
    return {
        "labels": deps.blobs.names("labels"),
        "quarantine": deps.blobs.names("quarantine"),
        "store": {n: deps.blobs.text("datasets", n) for n in deps.blobs.names("datasets")},
        "records": sorted((r["blob"], r["status"], r["matched"], tuple(r["stored"])) for r in _records(deps)),
        "audit": sorted(
            (e.action, e.subject) for e in deps.audit.entries() if e.action.startswith("labels.")
        ),
    }


def _records(deps: FakeDeps) -> list[dict]:
    return [record(deps, s.record.blob) for s in deps.state.list(keys.LABEL_FILES)]


def _land_both(messages: list[BlobCreated], target: FakeDeps) -> None:
    for message in messages:
        on_labels_landed(message, target)


def _prepared() -> tuple[FakeDeps, list[BlobCreated]]:
    """Two label files in the labels container and the events storage sends for them (one to accept, one
    whose ids match nothing)."""
    deps = make_deps()
    ids = served(deps)
    deps.blobs.write("labels", "good.csv", label_csv({ids[0]: 1, ids[2]: 3}))
    deps.blobs.write("labels", "none.csv", label_csv({"nobody": 1}))
    return deps, [blob_created(deps, name, f"evt-{name}", "labels") for name in ("good.csv", "none.csv")]


def _effects() -> int:
    deps, messages = _prepared()
    faulty, fault = faults.inject(deps, after=10_000)
    _land_both(messages, faulty)
    return fault.effects


REFERENCE_DEPS, REFERENCE_MESSAGES = _prepared()
_land_both(REFERENCE_MESSAGES, REFERENCE_DEPS)
REFERENCE = _end_state(REFERENCE_DEPS)


@pytest.mark.parametrize("after", range(1, _effects() + 1))
def test_a_crash_after_any_side_effect_files_and_quarantines_exactly_once(after: int) -> None:
    deps, messages = _prepared()
    faulty, _ = faults.inject(deps, after)
    with pytest.raises(faults.InjectedCrash):
        _land_both(messages, faulty)

    deps.clock.advance(workflow.LEASE_SECONDS + 1)  # the dead worker's lease expires
    reconciliation.reconcile(deps)
    _land_both(messages, deps)  # and Event Grid redelivers

    end = _end_state(deps)
    assert end == {**REFERENCE, "store": _restamped(REFERENCE["store"], end["store"])}
    assert deps.audit.verify() == []


def _restamped(reference: dict[str, str], end: dict[str, str]) -> dict[str, str]:
    """The store's names carry the acceptance time, which a crash may move: compare what they hold."""
    assert len(end) == len(reference) and sorted(end.values()) == sorted(reference.values())
    return end


def test_the_labels_store_keeps_a_later_correction() -> None:
    deps = make_deps()
    ids = served(deps)
    land_labels(deps, "first.csv", label_csv({ids[0]: 1, ids[1]: 2}))
    deps.clock.advance(60)
    land_labels(deps, "correction.csv", label_csv({ids[1]: 5}))

    lookup = labels.Lookup(deps.blobs, "datasets", "model-v1")
    at = deps.clock() - timedelta(hours=2, seconds=60)
    first, corrected = lookup.get(ids[0], at), lookup.get(ids[1], at)
    assert first is not None and corrected is not None
    assert (first.value, corrected.value) == (1.0, 5.0)
    assert corrected.accepted_at > first.accepted_at
    assert lookup.get(ids[0], at + timedelta(hours=1)) is None  # another hour's folder
