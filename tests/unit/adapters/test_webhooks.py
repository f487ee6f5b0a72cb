"""The webhook adapter: its errors never carry the URL's path or query, which for Teams and Slack are the secret."""

from __future__ import annotations

import pytest

from shared.adapters.webhooks import RequestsWebhooks
from shared.host.azurite import free_port
from shared.ports import WebhookError


@pytest.mark.parametrize(
    "path", ["/services/T000/B000/s3cr3tT0ken", "/workflows/abc/invoke?sig=s3cr3tT0ken&sp=x"]
)
def test_a_refused_connection_is_reported_without_the_secret(path: str) -> None:
    url = f"http://127.0.0.1:{free_port()}{path}"

    with pytest.raises(WebhookError) as refused:
        RequestsWebhooks().post(url, b"{}", {"content-type": "application/json"}, timeout=2)

    message = str(refused.value)
    assert "s3cr3tT0ken" not in message and "127.0.0.1" in message
    assert "ConnectionError" in message
