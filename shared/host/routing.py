"""The routing table (infra/routing.json): which events reach which function. The local host delivers by it
and infra creates the Azure Event Grid subscriptions from it, so the two cannot disagree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.config import Containers

TABLE = Path(__file__).resolve().parents[2] / "infra" / "routing.json"


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    function: str
    event_types: tuple[str, ...]
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    max_delivery_attempts: int = 30
    event_ttl_minutes: int = 1440

    def matches(self, topic: str, event_type: str, subject: str) -> bool:
        return (
            topic == self.topic
            and event_type.lower() in (t.lower() for t in self.event_types)
            and subject.startswith(self.subject_begins_with)
            and subject.endswith(self.subject_ends_with)
        )


def load(containers: Containers, path: Path = TABLE) -> tuple[Subscription, ...]:
    table = json.loads(path.read_text())
    names = vars(containers)
    subscriptions = []
    for entry in table["subscriptions"]:
        entry = {**entry, "event_types": tuple(entry["event_types"])}
        for key in ("subject_begins_with", "subject_ends_with"):
            entry[key] = entry.get(key, "").format(**names)
        subscriptions.append(Subscription(**entry))
    return tuple(subscriptions)
