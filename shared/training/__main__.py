"""`python -m shared.training`: exit 0 and one JSON summary line on stdout, or exit 2 and one error line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from shared.training.errors import TrainingInputError

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        manifest = _read_json(args.manifest, "manifest")
        config = _read_json(args.config, "config")
        from shared.training.run import run_training

        # Libraries may print (MLflow announces run URLs); stdout is reserved for the summary line.
        with contextlib.redirect_stdout(sys.stderr):
            evaluation = run_training(
                manifest, args.data_dir, config, args.output, champion=args.champion, run_id=args.run_id
            )
    except TrainingInputError as error:
        print(f"training: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    metric = evaluation["primary_metric"]
    summary = {
        "run_id": evaluation["run_id"],
        "dataset_version": evaluation["dataset_version"],
        "primary_metric": metric,
        "challenger": evaluation["challenger"].get(metric),
        "champion": (evaluation["champion"] or {}).get(metric),
        "rows": evaluation["rows"],
        "ci": _interval(evaluation.get("comparison")),
        "code_version": evaluation.get("code_version"),
        "output": str(args.output),
        "seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary), flush=True)
    return 0


def _interval(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    if not comparison:
        return None
    return {key: comparison.get(key) for key in ("ci_low", "ci_high", "level", "p_value")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.training", description=__doc__)
    parser.add_argument("--manifest", type=Path, required=True, help="dataset manifest JSON")
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="folder the manifest's paths are relative to"
    )
    parser.add_argument("--config", type=Path, required=True, help="training config JSON")
    parser.add_argument(
        "--output", type=Path, required=True, help="folder for model/, evaluation.json, run.json"
    )
    parser.add_argument(
        "--champion", type=Path, default=None, help="MLflow model folder of the production model"
    )
    parser.add_argument("--run-id", default="", help="the run's id, recorded in evaluation.json and MLflow")
    return parser


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingInputError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TrainingInputError(f"{what} file {path} is not readable JSON: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
