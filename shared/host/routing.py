"""The routing table (infra/routing.json): which events reach which function. The local host delivers by it
and infra creates the Azure Event Grid subscriptions from it, so the two cannot disagree.

Placeholders in the subject filters and in advanced filters' string values are filled in when the table is
read: a container's name (`{landing}`, `{deadletter}`, ... from MLOPS_CONTAINER_*) and `{experiment}`, the
experiment the training jobs run in (MLOPS_AZURE_EXPERIMENT). A table Event Grid would refuse is refused here,
naming the subscription and what is wrong.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from shared.config import Containers
from shared.host.filters import AdvancedFilter, FilterError, all_match, parse_filters

TABLE = Path(__file__).resolve().parents[2] / "infra" / "routing.json"


class RoutingError(ValueError):
    """The routing table holds a subscription Event Grid would refuse."""


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    function: str
    event_types: tuple[str, ...]
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    advanced_filters: tuple[AdvancedFilter, ...] = ()
    enable_advanced_filtering_on_arrays: bool = False
    max_delivery_attempts: int = 30
    event_ttl_minutes: int = 1440

    def matches(self, topic: str, event: Mapping[str, Any]) -> bool:
        """Whether Event Grid would deliver `event`, published to `topic`, through this subscription."""
        event_type = str(event.get("eventType") or event.get("type") or "")
        subject = str(event.get("subject") or "")
        return (
            topic == self.topic
            and event_type.lower() in (t.lower() for t in self.event_types)
            and subject.startswith(self.subject_begins_with)
            and subject.endswith(self.subject_ends_with)
            and all_match(self.advanced_filters, event, self.enable_advanced_filtering_on_arrays)
        )


_FIELDS = {f.name for f in fields(Subscription)}
_REQUIRED = {"name", "topic", "function", "event_types"}


def load(containers: Containers, path: Path = TABLE, *, experiment: str) -> tuple[Subscription, ...]:
    """The table at `path` with its placeholders filled in; raises RoutingError for a table Event Grid would
    refuse (an unknown field, a malformed or over-limit advanced filter, an unknown placeholder)."""
    table = json.loads(path.read_text())
    names = {**vars(containers), "experiment": experiment}
    return tuple(_subscription(entry, names) for entry in table["subscriptions"])


def _subscription(entry: Any, names: Mapping[str, str]) -> Subscription:
    label = f"subscription {entry.get('name')!r}" if isinstance(entry, dict) else "a subscription"
    if not isinstance(entry, dict):
        raise RoutingError(f"{label} must be an object")
    unknown, missing = sorted(set(entry) - _FIELDS), sorted(_REQUIRED - set(entry))
    if unknown or missing:
        problems = [f"unknown {', '.join(unknown)}"] if unknown else []
        problems += [f"missing {', '.join(missing)}"] if missing else []
        raise RoutingError(f"{label}: {'; '.join(problems)}")

    def fill(text: str) -> str:
        return _fill(text, names, label)

    try:
        filters = parse_filters(entry.get("advanced_filters"), fill)
    except FilterError as error:
        raise RoutingError(f"{label}: {error}") from None
    arrays = entry.get("enable_advanced_filtering_on_arrays", False)
    if not isinstance(arrays, bool):
        raise RoutingError(f"{label}: enable_advanced_filtering_on_arrays must be true or false")
    return Subscription(
        **{
            **entry,
            "event_types": tuple(entry["event_types"]),
            "subject_begins_with": fill(entry.get("subject_begins_with", "")),
            "subject_ends_with": fill(entry.get("subject_ends_with", "")),
            "advanced_filters": filters,
            "enable_advanced_filtering_on_arrays": arrays,
        }
    )


def _fill(text: str, names: Mapping[str, str], label: str) -> str:
    """`text` with each `{name}` replaced; `{{` and `}}` stand for braces."""
    try:
        wanted = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as error:
        raise RoutingError(f"{label}: {text!r}: {error}") from None
    unknown = sorted(wanted - set(names))
    if unknown:
        raise RoutingError(
            f"{label}: unknown placeholder {{{unknown[0]}}} in {text!r}; known: "
            + ", ".join(f"{{{name}}}" for name in sorted(names))
        )
    return text.format_map(names)
