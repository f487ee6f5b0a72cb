"""Webhook calls over HTTPS with `requests`, for both backends: one short-timeout POST, no retries (the notify
handler and the `reconcile` tick decide when to call again)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

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
        except (requests.RequestException, ValueError) as error:  # ValueError: a URL or header it refuses
            raise WebhookError(_without_url(f"{type(error).__name__}: {error}", url)[:300]) from None
        response.close()
        return response.status_code


def _without_url(message: str, url: str) -> str:
    """The error without the URL's path and query: for Teams and Slack webhooks they are the secret, and errors
    end up in records and the audit log. The host stays, to say which webhook failed."""
    parts = urlsplit(url)
    secret = [url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query]
    for text in sorted(filter(None, secret), key=len, reverse=True):
        if len(text) > 1:
            message = message.replace(text, "…")
    return message
