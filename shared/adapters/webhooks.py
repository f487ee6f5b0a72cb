"""Webhook calls over HTTPS with `requests`, for both backends: one short-timeout POST, no retries (the notify
handler and the `reconcile` tick decide when to call again)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.ports import WebhookError, Webhooks


class RequestsWebhooks(Webhooks):
    def __init__(self) -> None:
        import requests

        self._session = requests.Session()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        import requests

        try:
            # Redirects are not followed: a webhook that moved says so with its status, and the body is not
            # sent on to wherever a redirect points.
            response = self._session.post(
                url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False
            )
        except (
            requests.RequestException,
            ValueError,
        ) as error:  # ValueError: a URL or header requests refuses
            raise WebhookError(f"{type(error).__name__}: {error}"[:300]) from None
        response.close()
        return response.status_code
