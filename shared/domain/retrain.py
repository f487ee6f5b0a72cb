"""A request to retrain, made over HTTP by a person (`mlops retrain`) or a pipeline (new training code on main).

The body is `{"reason": "...", "code_version": "..."}`, both optional; an empty body asks with neither. The
cause is `code` when a code version is given, else `manual`. Its id is `retrain:` and the caller's idempotency
key (`Idempotency-Key`, else `x-ms-client-request-id`, which Azure's SDKs keep across their retries), so a
retried request asks once; without a key, a fresh id per request. Anything else in the body is refused with
the reason: the caller sees it, the function records it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shared.domain.messages import RequestTraining

MANUAL = "manual"
CODE = "code"
ID_PREFIX = "retrain:"
IDEMPOTENCY_HEADERS = ("Idempotency-Key", "x-ms-client-request-id")

MAX_BODY_BYTES = 16 * 1024
MAX_REASON = 1000
MAX_CODE_VERSION = 200
MAX_IDENTITY = 256
MAX_KEY = 128
FIELDS = ("reason", "code_version")

# a git commit, a tag, `sha256:<hex>` of a folder's content, a package version: no spaces, no control characters
_CODE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/@-]*")
_KEY = re.compile(r"[\x21-\x7e]+")  # visible ASCII
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, newline and carriage return are text


class BadRetrain(ValueError):
    """The request cannot be read; the message says why, for the caller."""


def request_id(headers: Mapping[str, str], fresh: str) -> str:
    """The request's id: from the caller's idempotency key if it sent one (a key that cannot be one is
    refused), else from `fresh`, a new unique id."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in IDEMPOTENCY_HEADERS:
        if name.lower() in lowered:
            key = lowered[name.lower()]
            if len(key) > MAX_KEY or not _KEY.fullmatch(key):
                raise BadRetrain(f"{name} must be 1 to {MAX_KEY} visible ASCII characters")
            return ID_PREFIX + key
    return ID_PREFIX + fresh


def retrain_command(body: bytes, requested_by: str, request_id: str) -> RequestTraining:
    """The training request the body asks for, made by `requested_by`, under the id `request_id`."""
    if len(requested_by) > MAX_IDENTITY or _CONTROL.search(requested_by):
        raise BadRetrain(f"the caller's identity must be at most {MAX_IDENTITY} printable characters")
    fields = _fields(body)
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        names = ", ".join(_name(n) for n in unknown[:5])
        raise BadRetrain(f"unknown field(s) {names}; the body takes {' and '.join(FIELDS)}, both optional")
    reason = _text(fields, "reason", MAX_REASON)
    if reason is not None and _CONTROL.search(reason):
        raise BadRetrain("reason must not contain control characters")
    code_version = _text(fields, "code_version", MAX_CODE_VERSION)
    if code_version is not None and not _CODE_VERSION.fullmatch(code_version):
        raise BadRetrain(
            "code_version must be a version such as a commit id: a letter or digit, then letters, digits or "
            "._:+/@- (no spaces)"
        )
    return RequestTraining(
        CODE if code_version is not None else MANUAL,
        request_id,
        {"reason": reason, "code_version": code_version, "requested_by": requested_by},
    )


def _fields(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise BadRetrain(f"the body is {len(body)} bytes; at most {MAX_BODY_BYTES} are read")
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body, object_pairs_hook=_unique)
    except BadRetrain:
        raise
    except RecursionError:
        raise BadRetrain("the body is not JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise BadRetrain(f"the body is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise BadRetrain(f"the body must be a JSON object, not {_kind(parsed)}")
    return parsed


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRetrain(f"field {_name(name)} appears twice")
        fields[name] = value
    return fields


def _text(fields: dict[str, Any], name: str, limit: int) -> str | None:
    """A string field; absent or null is None."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRetrain(f"{name} must be a string, not {_kind(value)}")
    if len(value) > limit:
        raise BadRetrain(f"{name} is {len(value)} characters long; at most {limit} are allowed")
    if name == "code_version" and not value:
        raise BadRetrain("code_version must not be empty: leave it out to ask without one")
    return value


def _name(field: str) -> str:
    return repr(field if len(field) <= 40 else f"{field[:40]}...")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
