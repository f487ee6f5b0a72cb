"""Microsoft.Storage.BlobDeleted, parsed from Microsoft's documented sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shared.domain.messages import BlobDeleted, parse_body

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "events" / "azure" / "blob_deleted.eventgrid.json"


def test_the_documented_sample_names_container_and_blob() -> None:
    [message] = parse_body(SAMPLE.read_text())

    assert isinstance(message, BlobDeleted)
    assert (message.container, message.blob_name) == ("testcontainer", "file-to-delete.txt")
    assert message.sequencer == "0000000000000281000000000002F5CA"
    assert message.envelope.id == "4c2359fe-001e-00ba-0e04-58586806d298"
    assert message.envelope.time == datetime(2017, 11, 7, 20, 9, 22, 567400, tzinfo=UTC)


def test_a_deletion_without_subject_is_located_by_its_url() -> None:
    [event] = json.loads(SAMPLE.read_text())
    event = {**event, "subject": "", "eventtype": event.pop("eventType")}

    [message] = parse_body(json.dumps([event]))

    assert isinstance(message, BlobDeleted)
    assert (message.container, message.blob_name) == ("testcontainer", "file-to-delete.txt")
