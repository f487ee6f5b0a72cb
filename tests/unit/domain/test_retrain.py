"""Reading a request to retrain: its cause, its detail, its id; every malformed body refused with the reason."""

from __future__ import annotations

import json

import pytest

from shared.domain.retrain import (
    MAX_BODY_BYTES,
    MAX_CODE_VERSION,
    MAX_IDENTITY,
    MAX_KEY,
    MAX_REASON,
    BadRetrain,
    request_id,
    retrain_command,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("empty", [b"", b"  \n", b"{}", body({"reason": None, "code_version": None})])
def test_an_empty_request_asks_by_hand_with_no_reason(empty: bytes) -> None:
    command = retrain_command(empty, "alice", "retrain:1")
    assert (command.cause, command.event_id) == ("manual", "retrain:1")
    assert command.detail == {"reason": None, "code_version": None, "requested_by": "alice"}


def test_a_reason_is_kept_and_a_code_version_makes_the_cause_code() -> None:
    manual = retrain_command(body({"reason": "new labels are in\nsee ticket 7"}), "alice", "retrain:1")
    assert manual.cause == "manual" and manual.detail["reason"] == "new labels are in\nsee ticket 7"

    code = retrain_command(body({"reason": "merged #12", "code_version": SHA}), "app:ci", "retrain:2")
    assert code.cause == "code"
    assert code.detail == {"reason": "merged #12", "code_version": SHA, "requested_by": "app:ci"}
    for version in ("v1.2.0", "sha256:9f86d081884c7d65", "release/2026-01", "1.0+local"):
        assert retrain_command(body({"code_version": version}), "a", "r").detail["code_version"] == version


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (b"reason=retrain", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"reason": "a", "reason": "b"}', "'reason' appears twice"),
        (body([]), "must be a JSON object, not an array"),
        (body("retrain"), "not a string"),
        (body(3), "not a number"),
        (b"null", "not null"),
        (b"true", "not a boolean"),
        (body({"reason": 1}), "reason must be a string, not a number"),
        (body({"reason": ["a"]}), "reason must be a string, not an array"),
        (body({"reason": {"why": "a"}}), "reason must be a string, not an object"),
        (body({"reason": False}), "reason must be a string, not a boolean"),
        (b'{"reason": NaN}', "reason must be a string, not a number"),
        (body({"code_version": 12}), "code_version must be a string, not a number"),
        (body({"code_version": True}), "code_version must be a string, not a boolean"),
        (body({"code_version": ""}), "code_version must not be empty"),
        (body({"code_version": "a b"}), "no spaces"),
        (body({"code_version": "-rf"}), "a letter or digit"),
        (body({"code_version": "abc\n"}), "no spaces"),
        (body({"reason": "a\x00b"}), "control characters"),
        (body({"reason": "x" * (MAX_REASON + 1)}), f"at most {MAX_REASON}"),
        (body({"code_version": "a" * (MAX_CODE_VERSION + 1)}), f"at most {MAX_CODE_VERSION}"),
        (body({"codeVersion": SHA}), "unknown field(s) 'codeVersion'"),
        (body({"reason": "r", "x" * 500: 1}), "unknown field(s) 'xxxxx"),
        (body({"reason": "x" * MAX_BODY_BYTES}), "bytes; at most"),
    ],
)
def test_a_malformed_body_is_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRetrain) as refused:
        retrain_command(raw, "alice", "retrain:1")
    assert reason in str(refused.value)
    assert len(str(refused.value)) < 300  # the caller's input is not echoed back at length


def test_the_longest_values_allowed_are_accepted() -> None:
    command = retrain_command(
        body({"reason": "x" * MAX_REASON, "code_version": "a" * MAX_CODE_VERSION}), "alice", "retrain:1"
    )
    assert len(command.detail["reason"]) == MAX_REASON and command.cause == "code"


def test_an_identity_too_long_to_be_a_name_is_refused() -> None:
    assert retrain_command(b"", "a" * MAX_IDENTITY, "r").detail["requested_by"] == "a" * MAX_IDENTITY
    with pytest.raises(BadRetrain, match="identity"):
        retrain_command(b"", "a" * (MAX_IDENTITY + 1), "r")


def test_the_id_is_the_callers_idempotency_key_else_the_fresh_one() -> None:
    assert request_id({}, "5b1c") == "retrain:5b1c"
    assert request_id({"Idempotency-Key": "code-" + SHA}, "5b1c") == f"retrain:code-{SHA}"
    assert request_id({"x-ms-client-request-id": "c0ffee"}, "5b1c") == "retrain:c0ffee"
    assert request_id({"IDEMPOTENCY-KEY": "k", "X-MS-Client-Request-Id": "c"}, "5b1c") == "retrain:k"


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * (MAX_KEY + 1), "tab\there"])
def test_a_key_that_cannot_be_one_is_refused(key: str) -> None:
    with pytest.raises(BadRetrain, match="Idempotency-Key must be 1 to 128 visible ASCII characters"):
        request_id({"Idempotency-Key": key}, "5b1c")
    assert request_id({"Idempotency-Key": "x" * MAX_KEY}, "5b1c") == "retrain:" + "x" * MAX_KEY
