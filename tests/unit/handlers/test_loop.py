"""The whole loop on fakes, from a landed file to a model in production, leaves an intact audit chain."""

from __future__ import annotations

from shared.handlers import reconcile as reconciliation
from tests.builders import (
    actions,
    deploy,
    release_status,
    train,
)
from tests.fakes import make_deps


def test_the_whole_loop_leaves_an_intact_audit_chain() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert actions(deps) == [
        "schema.learned",
        "file.accepted",
        "training.started",
        "model.registered",
        "deployment.started",
        "release.owns_endpoint",
        "release.smoke_testing",
        "release.approved",
        "release.promoting",
        "release.promoted",
    ]
    assert deps.audit.verify() == []
