"""python -m shared.drift_job --job JOB.json --output DIR [--champion MODEL_DIR]

Reads the check to run (a `DriftJob` as JSON), the settings from the environment (the app's own), the blobs
with the same access the app has (Azurite's connection string locally, the managed identity in Azure), and
writes `DIR/outcome.json` (`shared.drift_job.check`) or, when the check fails, `DIR/failure.json` with the
reason, before exiting non-zero."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.drift_job import check
from shared.drift_job.inputs import Context
from shared.ports import BlobStore, DriftJob, ModelVersion

if TYPE_CHECKING:
    import pandas as pd

OUTCOME = "outcome.json"
FAILURE = "failure.json"
TAIL_LINES = 30

log = logging.getLogger("mlops.drift_job")


def read_job(data: Any) -> DriftJob:
    model = data["model"]
    return DriftJob(
        check_id=str(data["check_id"]),
        model=ModelVersion(
            str(model["name"]), str(model["version"]), dict(model["tags"]), str(model["source"])
        ),
        deployment=str(data["deployment"]),
        dataset_version=str(data["dataset_version"]),
        trace=data.get("trace"),
    )


def blob_store(settings: Settings) -> BlobStore:
    from shared.adapters.azure.storage import AzureBlobStore

    if settings.backend == "local":
        return AzureBlobStore.from_connection_string(settings.storage.connection_string)
    from shared.adapters.azure.credentials import default_credential

    client_id = settings.azure.client_id if settings.azure else ""
    return AzureBlobStore.from_account_url(settings.storage.account_url, default_credential(client_id))


def scorer(champion: str | None) -> Callable[[pd.DataFrame], list[Any]] | None:
    """The champion's predictions, made as the evaluation makes them (loaded on first use)."""
    if not champion:
        return None
    loaded: list[tuple[Any, list[str] | None]] = []

    def score(frame: pd.DataFrame) -> list[Any]:
        if not loaded:
            from shared.training.model import load_model

            loaded.append(load_model(Path(champion)))
        model, columns = loaded[0]
        predictions = model.predict(frame[columns] if columns else frame)
        return predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)

    return score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.drift_job")
    parser.add_argument("--job", required=True, help="the check to run, as JSON")
    parser.add_argument("--output", required=True, help="where outcome.json (or failure.json) goes")
    parser.add_argument("--champion", default="", help="the champion's model folder (MLflow)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    try:
        job = read_job(json.loads(Path(args.job).read_text(encoding="utf-8")))
        settings = Settings.from_env()
        context = Context(blob_store(settings), settings, datetime.now(UTC), scorer(args.champion))
        outcome = check.run(context, job)
    except Exception as error:  # recorded as the check's reason, then the job fails
        tail = traceback.format_exc().splitlines()[-TAIL_LINES:]
        failure = {"reason": f"{type(error).__name__}: {error}", "log_tail": "\n".join(tail)}
        (output / FAILURE).write_text(json.dumps(failure, indent=1), encoding="utf-8")
        log.exception("drift check failed")
        return 1
    (output / OUTCOME).write_text(json.dumps(outcome, indent=1, default=str), encoding="utf-8")
    log.info("drift check %s: %s", job.check_id, outcome["outcome"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
