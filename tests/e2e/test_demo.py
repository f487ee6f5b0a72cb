"""The demo story, end to end through the local host, asserted on versions, decisions and the audit log."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from shared.host.azurite import free_port
from shared.state import keys
from shared.state.store import to_json
from tests.builders import production_state

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory):
    from shared import bootstrap
    from shared.tools import demo

    home = tmp_path_factory.mktemp("demo")
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
    }
    captured: list[str] = []
    stories: list[demo.Story] = []
    original = demo.Story.report

    def keep(self, started):  # capture the story object to inspect its state after the run
        stories.append(self)
        self.audit_entries = self.deps.audit.entries()
        self.runs = {s.record.run_id: to_json(s.record) for s in self.deps.state.list(keys.RUNS)}
        self.production = production_state(self.deps)
        self.chain_problems = self.deps.audit.verify()
        return original(self, started)

    demo.Story.report = keep
    try:
        code = demo.run_demo(env, out=captured.append)
    finally:
        demo.Story.report = original
        bootstrap.reset()
    return code, "\n".join(captured), stories[0], home


def test_demo_exits_zero_and_tells_the_story(story) -> None:
    code, output, _, _ = story
    assert code == 0, output
    for heading in ("Timeline", "Lineage of the production model", "One prediction from the local endpoint"):
        assert heading in output


def test_files_are_validated_and_the_broken_one_quarantined(story) -> None:
    _, _, state, _ = story
    actions = Counter(e.action for e in state.audit_entries)
    assert actions["file.accepted"] == 5
    assert actions["file.quarantined"] == 1
    quarantined = next(e for e in state.audit_entries if e.action == "file.quarantined")
    assert quarantined.subject == "clinic-a/export-broken.csv"


def test_a_burst_trains_once_and_drift_leads_to_a_challenger(story) -> None:
    _, _, state, _ = story
    assert len(state.runs) == 2
    first, second = sorted(state.runs.values(), key=lambda r: r["submitted_at"])
    assert set(first["request"]["causes"]) == {"data"}
    assert len(first["request"]["events"]) == 3  # three good files, one run
    assert {"data", "drift"} <= set(second["request"]["causes"]) <= {"data", "drift", "performance"}
    assert second["champion"] is not None
    evaluation = second["evaluation"]
    assert evaluation["champion"] is not None  # both models scored on the same holdout
    assert evaluation["rows"]["holdout"] > 0


def test_drift_was_found_in_the_traffic_the_endpoint_captured(story) -> None:
    _, _, state, _ = story
    checked = next(e for e in state.audit_entries if e.action == "drift.checked")
    assert checked.detail["drifted"] is True and "bmi" in checked.detail["drifted_columns"]
    window = checked.detail["window"]
    assert window["captured_hours"] >= 1 and window["files"] == 0  # nothing was uploaded by hand
    assert checked.detail["current_rows"] == len(
        state.high
    )  # every high-BMI row the clients sent, and only those
    assert any(e.action == "drift.published" for e in state.audit_entries)


def test_late_labels_are_joined_to_what_was_served_and_the_live_metric_is_judged(story) -> None:
    _, output, state, _ = story
    [accepted] = [e for e in state.audit_entries if e.action == "labels.accepted"]
    assert accepted.detail["matched"] == len(state.high)
    [checked] = [e for e in state.audit_entries if e.action == "quality.checked"]
    detail = checked.detail
    assert checked.subject == "diabetes-progression:1" and detail["joined"] == len(state.high)
    assert detail["metric"] == "rmse" and detail["offline"] > 0
    assert detail["live"]["low"] <= detail["live"]["value"] <= detail["live"]["high"]
    assert detail["verdict"] in ("healthy", "degraded")
    assert f"diabetes-progression:1: live rmse {detail['live']['value']:.1f}" in output


def test_challenger_is_promoted_or_rejected_with_reasons(story) -> None:
    _, _, state, _ = story
    second = max(state.runs.values(), key=lambda r: r["submitted_at"])
    if second["status"] == "registered":
        assert state.production["version"] == "2"
        assert any(e.action == "release.promoted" and e.subject.endswith("-v2") for e in state.audit_entries)
    else:
        assert second["status"] == "rejected"
        rejected = next(e for e in state.audit_entries if e.action == "challenger.rejected")
        assert rejected.detail["reasons"]
        assert state.production["version"] == "1"


def test_the_challenger_is_a_shadow_then_a_canary_before_production(story) -> None:
    import re

    _, output, state, _ = story
    assert "-> approved -> shadow -> canary -> promoting -> production" in output, output
    found = re.search(r"shadow: (\d+) mirrored requests, p95 \d+ ms, (\d+) errors; (\d+) rows paired", output)
    assert found, output
    requests, errors, pairs = map(int, found.groups())
    assert requests >= 5 and errors == 0 and pairs >= 5  # MLOPS_SHADOW_MIN_REQUESTS in the demo
    canary = next(
        e for e in state.audit_entries if e.action == "release.canary" and e.subject.endswith("-v2")
    )
    assert canary.detail["shadow"]["pairs"] == pairs


def test_a_signed_webhook_receives_the_storys_notifications(story) -> None:
    _, output, _, _ = story
    section = output[output.index("Notifications (signed JSON webhooks") :]
    counts = dict(line.split() for line in section.splitlines()[2:] if len(line.split()) == 2)
    assert counts.get("files_quarantined") == "1"  # one summary for the burst
    assert counts.get("drift_detected") == "1" and counts.get("performance_degraded") == "1"
    assert int(counts.get("promoted", "0")) >= 1
    assert "refused" not in section


def test_audit_chain_verifies(story) -> None:
    _, _, state, _ = story
    assert state.chain_problems == []


def test_no_process_is_left_running(story) -> None:
    import os

    _, _, _, home = story
    pids = [int(p.read_text()) for p in Path(home).glob("runs/*/pid")]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
