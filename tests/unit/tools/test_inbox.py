"""The demo's webhook receiver takes only what is signed with the shared secret."""

from __future__ import annotations

import json

import requests

from shared.domain.notifications import SIGNATURE_HEADER, signature
from shared.tools.inbox import Inbox


def test_signed_notifications_are_kept_by_kind_and_others_refused() -> None:
    with Inbox("s3cret") as inbox:
        body = json.dumps({"kind": "promoted", "id": "r-1"}).encode()
        ok = requests.post(
            inbox.url, data=body, headers={SIGNATURE_HEADER: signature("s3cret", body)}, timeout=5
        )
        forged = requests.post(
            inbox.url, data=body, headers={SIGNATURE_HEADER: signature("guess", body)}, timeout=5
        )
        unsigned = requests.post(inbox.url, data=b"[1, 2]", timeout=5)

    assert (ok.status_code, forged.status_code, unsigned.status_code) == (200, 401, 401)
    assert inbox.kinds() == {"promoted": 1} and inbox.refused == 2
