"""The shared Azurite holds only what the running test wrote: what a test created is gone before the next one
starts, so no test slows down because the ones before it filled the store. (The two tests run in this order.)"""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient

pytestmark = pytest.mark.integration

CONTAINER = "isolation-left-behind"


def test_a_test_fills_a_container(azurite: str) -> None:
    service = BlobServiceClient.from_connection_string(azurite)
    container = service.create_container(CONTAINER)
    container.upload_blob("state/a.json", b"{}")
    assert CONTAINER in {c.name for c in service.list_containers()}


def test_the_next_test_finds_none_of_it(azurite: str) -> None:
    service = BlobServiceClient.from_connection_string(azurite)
    assert CONTAINER not in {c.name for c in service.list_containers()}
