"""The local backend of the contract suite: Azurite, a migrated MLflow store, the module's one finished run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.local.paths import mlflow_uri
from shared.ports import RunResults
from tests.contract.local_platform import EventSink, LocalPlatform, local_settings

FINISHED_RUN = "train-1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"finished_run: the local backend may serve the test from the module's finished {FINISHED_RUN}",
    )


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow store, migrated once. Every fresh MLOPS_HOME starts from a copy of it: creating a SQLite
    store runs the same schema migrations each time, seconds of them."""
    from mlflow.tracking import MlflowClient

    home = tmp_path_factory.mktemp("mlflow-store")
    MlflowClient(tracking_uri=mlflow_uri(home)).search_experiments()
    return home / "mlflow.db"


def _fresh_home(home: Path, store: Path) -> Path:
    home.mkdir(parents=True)
    shutil.copy(store, home / store.name)
    return home


@pytest.fixture(scope="module")
def local_finished(
    azurite: str, mlflow_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalPlatform, RunResults]]:
    """A backend where one real run has finished; its model is what the registry tests register."""
    sink = EventSink()
    home = _fresh_home(tmp_path_factory.mktemp("finished") / "home", mlflow_store)
    # The environment is the job process's configuration, so it is set only while the job is started.
    with local_settings(home, azurite, sink, f"t{os.urandom(4).hex()}") as settings:
        platform = LocalPlatform(settings, sink)
        platform.jobs.submit(platform.job(FINISHED_RUN))
    try:
        results = platform.job_finishes(FINISHED_RUN)
        yield platform, results
    finally:
        platform.close()
        sink.close()


@pytest.fixture()
def local_platform(
    request: pytest.FixtureRequest, azurite: str, mlflow_store: Path, tmp_path: Path, unique: str
) -> Iterator[LocalPlatform]:
    """A fresh local backend (its own MLOPS_HOME, MLflow store and datasets container) for one test."""
    if request.node.get_closest_marker("finished_run"):
        yield request.getfixturevalue("local_finished")[0]
        return
    sink = EventSink()
    with local_settings(_fresh_home(tmp_path / "home", mlflow_store), azurite, sink, unique) as settings:
        # The finished run is made the first time a test asks for one, so the jobs tests do not wait for it.
        platform = LocalPlatform(settings, sink, lambda: request.getfixturevalue("local_finished")[1])
        try:
            yield platform
        finally:
            platform.close()
            sink.close()
