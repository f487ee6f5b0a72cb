"""What a notification says, and the body each receiver gets: Teams' Adaptive Card, Slack's text and blocks,
and signed JSON a receiver can verify with the shared secret."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from shared.domain.notifications import (
    EVENT_KINDS,
    SIGNATURE_HEADER,
    Kind,
    Target,
    notification,
    render,
    retry_delay,
    target_of,
    verify,
)

TEAMS = "https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def/ghi"
WORKFLOW = "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x"
POWER = "https://default123.07.environment.api.powerplatform.com/powerautomate/automations/direct/x"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
GENERIC = "https://ops.example.com/hooks/mlops"


def approval(**data: object):
    fields = {"releaseId": "mlops-model-v3", "modelName": "mlops-model", "modelVersion": "3"}
    fields |= {"deployment": "v3", "approve": "/api/releases/mlops-model-v3/approve", **data}
    return notification(
        id="mlops-model-v3:approval",
        event_type="MLOps.ApprovalRequested",
        subject="releases/mlops-model-v3",
        time="2024-05-06T12:00:00+00:00",
        data=fields,
        public_url="https://app.example.net",
    )


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (TEAMS, Target.TEAMS),
        (WORKFLOW, Target.TEAMS),
        (POWER, Target.TEAMS),
        (SLACK, Target.SLACK),
        (GENERIC, Target.SIGNED_JSON),
        ("https://hooks.slack.com.evil.example/services/x", Target.SIGNED_JSON),
        ("https://webhook.office.com.evil.example/x", Target.SIGNED_JSON),
        ("not a url", Target.SIGNED_JSON),
    ],
)
def test_receivers_are_recognised_by_host(url: str, target: Target) -> None:
    assert target_of(url) is target


def test_approval_says_which_release_and_how_to_approve() -> None:
    note = approval()
    assert note is not None and note.kind is Kind.APPROVAL_REQUESTED
    assert "mlops-model-v3" in note.title
    assert "POST https://app.example.net/api/releases/mlops-model-v3/approve" in note.summary
    assert ("Model", "mlops-model v3") in note.facts
    assert ("Review", "https://app.example.net/api/releases/mlops-model-v3") in note.links


def test_teams_gets_an_adaptive_card() -> None:
    body, headers = render(approval(), TEAMS, "secret")
    message = json.loads(body)
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [block.get("text", "") for block in card["body"]]
    assert any("mlops-model-v3" in text for text in texts)
    facts = next(block for block in card["body"] if block["type"] == "FactSet")["facts"]
    assert {"title": "Release", "value": "mlops-model-v3"} in facts
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Review",
            "url": "https://app.example.net/api/releases/mlops-model-v3",
        }
    ]
    assert SIGNATURE_HEADER not in headers  # Teams neither needs nor checks it


def test_teams_card_leaves_out_links_that_are_only_paths() -> None:
    note = notification(
        id="e",
        event_type="MLOps.ApprovalRequested",
        subject="",
        time="",
        data={"releaseId": "r"},
    )
    assert note is not None
    card = json.loads(render(note, TEAMS, "")[0])["attachments"][0]["content"]
    assert "actions" not in card
    assert "POST /api/releases/r/approve" in card["body"][1]["text"]


def test_slack_gets_text_and_blocks() -> None:
    message = json.loads(render(approval(), SLACK, "")[0])
    assert message["text"].startswith("Approval requested: release mlops-model-v3")
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds[:2] == ["header", "section"]
    assert "*Release:* mlops-model-v3" in message["blocks"][2]["text"]["text"]
    assert (
        message["blocks"][-1]["elements"][0]["text"]
        == "<https://app.example.net/api/releases/mlops-model-v3|Review>"
    )


def test_generic_json_is_signed_and_verifiable_by_a_receiver() -> None:
    body, headers = render(approval(), GENERIC, "s3cret")
    payload = json.loads(body)
    assert set(payload) >= {"id", "kind", "time", "subject", "summary", "data"}
    assert payload["kind"] == "approval_requested" and payload["data"]["releaseId"] == "mlops-model-v3"
    # what a receiver does, with nothing but the standard library and the secret
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    assert verify("s3cret", body, headers[SIGNATURE_HEADER])
    assert not verify("another", body, headers[SIGNATURE_HEADER])
    assert not verify("s3cret", body + b" ", headers[SIGNATURE_HEADER])


def test_generic_json_without_a_secret_is_unsigned() -> None:
    assert SIGNATURE_HEADER not in render(approval(), GENERIC, "")[1]


def test_every_kind_says_what_happened() -> None:
    samples = {
        "MLOps.ModelPromoted": ({"releaseId": "r1", "previous": "m:2"}, "r1"),
        "MLOps.ReleaseRolledBack": ({"releaseId": "r2", "reason": "canary: errors"}, "canary: errors"),
        "MLOps.PerformanceDegraded": ({"metric": "rmse", "liveValue": 3.5, "reasons": ["below"]}, "rmse"),
        "MLOps.DriftDetected": ({"driftShare": 0.5, "driftedColumns": ["a", "b"]}, "a, b"),
        "MLOps.RunFailed": ({"runId": "run-7", "reason": "OOM", "attempt": 2, "maxAttempts": 2}, "run-7"),
        "MLOps.FilesQuarantined": ({"count": 12, "reasons": ["bad column x (12)"]}, "12"),
        "MLOps.ApprovalRequested": ({"releaseId": "r3"}, "r3"),
    }
    assert set(samples) == set(EVENT_KINDS)
    for event_type, (data, said) in samples.items():
        note = notification(id="e", event_type=event_type, subject="s", time="t", data=data)
        assert note is not None
        words = " ".join([note.title, note.summary, *(value for _, value in note.facts)])
        assert said in words, event_type


def test_an_event_type_that_is_no_kind_makes_no_notification() -> None:
    assert (
        notification(id="e", event_type="Microsoft.Storage.BlobCreated", subject="", time="", data={}) is None
    )


def test_held_back_notifications_are_mentioned() -> None:
    note = notification(id="e", event_type="MLOps.DriftDetected", subject="", time="", data={}, suppressed=4)
    assert note is not None and "4 more like this held back" in note.summary


HOSTILE_VALUES = [
    None,
    True,
    0,
    -1.5e308,
    float("nan"),
    "",
    "x" * 100_000,
    "\ud800 lone surrogate",
    "line\nbreak\r\0",
    [],
    [None, {"a": [1, 2]}, "x"],
    {"nested": {"deeper": [{}]}},
    [[[[[[[[[[[]]]]]]]]]]],
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
@pytest.mark.parametrize("event_type", sorted(EVENT_KINDS))
def test_any_json_value_in_any_field_renders_for_every_receiver(event_type: str, value: object) -> None:
    fields = [
        "releaseId",
        "modelName",
        "modelVersion",
        "deployment",
        "approve",
        "previous",
        "restored",
        "reason",
        "metric",
        "liveValue",
        "offlineValue",
        "rows",
        "reasons",
        "driftShare",
        "driftedColumns",
        "reportUrl",
        "htmlReportUrl",
        "runId",
        "attempt",
        "maxAttempts",
        "stage",
        "status",
        "datasetVersion",
        "count",
        "files",
        "since",
        "until",
    ]
    for data in ({name: value for name in fields}, value):
        note = notification(
            id="evt\n1", event_type=event_type, subject="s", time="t", data=data, public_url="https://a.b"
        )
        assert note is not None
        for url in (TEAMS, SLACK, GENERIC):
            body, headers = render(note, url, "secret")
            json.loads(body)  # valid JSON, whatever came in
            assert all("\n" not in header for header in headers.values())
            assert len(note.title) < 2000


def test_back_off_doubles_up_to_a_cap() -> None:
    assert [retry_delay(n, 60) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(30, 60) == 6 * 3600


def test_values_from_events_cannot_link_or_ping_in_slack_or_teams() -> None:
    """A landed blob's name is whatever the sender chose: in the team's channel it stays text."""
    note = notification(
        id="q",
        event_type="MLOps.FilesQuarantined",
        subject="",
        time="",
        data={
            "count": 1,
            "files": ["<https://evil.example|Approve here> <!channel> [click](https://evil.example)"],
        },
    )
    assert note is not None
    slack = json.dumps(json.loads(render(note, SLACK, "")[0]))
    assert "<https://evil" not in slack and "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    teams = json.loads(render(note, TEAMS, "")[0])["attachments"][0]["content"]
    assert "](https://evil" not in json.dumps(teams, ensure_ascii=False)
