"""The dependency container handlers receive: settings, the ports and the stores built on them.

It is only a type. `shared.bootstrap` (the composition root) fills it from configuration; tests fill it with
fakes. Nothing below the entry points needs to know which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.config import Settings
from shared.ports import (
    BlobStore,
    DriftJobs,
    Endpoints,
    EventPublisher,
    ModelRegistry,
    TokenVerifier,
    TrainingJobs,
    Webhooks,
)
from shared.state.audit import AuditLog
from shared.state.store import StateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: Settings
    blobs: BlobStore
    state: StateStore
    audit: AuditLog
    jobs: TrainingJobs
    drift_jobs: DriftJobs
    registry: ModelRegistry
    endpoints: Endpoints
    publisher: EventPublisher
    webhooks: Webhooks
    clock: Callable[[], datetime] = utc_now
    tokens: TokenVerifier | None = None  # None: no tenant is configured, bearer tokens are not accepted
