"""One training run in one process, with the built-in trainer: split the manifest's data by row hash, fit on the
training rows, then the platform's evaluation (challenger and champion on the same holdout). The same stages as
a run of a team's own command (`python -m shared.training prepare`, the command, `... evaluate`), without the
processes between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shared.training.builtin as builtin
import shared.training.model as model
import shared.training.split as split_data
from shared.training.evaluate import evaluate


def run_training(
    manifest: dict[str, Any],
    data_dir: Path,
    config: dict[str, Any],
    output: Path,
    champion: Path | None = None,
    run_id: str = "",
) -> dict[str, Any]:
    split = split_data.load(manifest, data_dir, config)
    settings = split.settings
    pipeline = builtin.fit(
        split.train_x, split.train_y, settings.estimator, settings.estimator_params, settings.seed
    )
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_model(pipeline, output / "model", split.train_x)
    return evaluate(split, output / "model", output, champion=champion, run_id=run_id)
