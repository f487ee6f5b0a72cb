"""`python -m shared.training`: exit 0 and one JSON summary line on stdout, or exit 2 and one error line.

python -m shared.training [run] --manifest M --data-dir D --config C --output OUT [--champion DIR] [--run-id ID]
    the built-in trainer and the evaluation in one process
python -m shared.training prepare --manifest M --data-dir D --config C --output WORK
    the training rows (WORK/train.parquet) and parameters (WORK/params.json) for a training command
python -m shared.training evaluate --manifest M --data-dir D --config C --model MODEL --output OUT
                                   [--champion DIR] [--run-id ID] [--code DIR [--environment FILE]]
    the platform's evaluation of the model a command saved in MODEL
"""

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


STAGES = ("run", "prepare", "evaluate")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stage = argv.pop(0) if argv and argv[0] in STAGES else "run"
    args = _parser(stage).parse_args(argv)
    started = time.perf_counter()
    try:
        manifest = _read_json(args.manifest, "manifest")
        config = _read_json(args.config, "config")
        # Libraries may print (MLflow announces run URLs); stdout is reserved for the summary line.
        with contextlib.redirect_stdout(sys.stderr):
            if stage == "prepare":
                print(json.dumps(_prepare(manifest, args.data_dir, config, args.output)), file=sys.__stdout__)
                return 0
            evaluation = _evaluate(stage, manifest, config, args)
    except TrainingInputError as error:
        print(f"training: error: {error}", file=sys.stderr)
        write_failure(args.output, "prepare" if stage == "prepare" else "evaluation", str(error))
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


def _prepare(manifest: Any, data_dir: Path, config: Any, output: Path) -> dict[str, Any]:
    import shared.training.split as split_data
    from shared.training.prepare import prepare

    return prepare(split_data.load(manifest, data_dir, config), output)


def _evaluate(stage: str, manifest: Any, config: Any, args: argparse.Namespace) -> dict[str, Any]:
    if stage == "run":
        from shared.training.run import run_training

        return run_training(
            manifest, args.data_dir, config, args.output, champion=args.champion, run_id=args.run_id
        )
    import shared.training.provenance as provenance
    import shared.training.split as split_data
    from shared.training.evaluate import evaluate

    code = None
    if args.code is not None:
        try:
            code = provenance.project_provenance(args.code, args.environment)
        except (OSError, ValueError) as error:
            raise TrainingInputError(f"the training code at {args.code} cannot be read: {error}") from None
    elif isinstance(config, dict) and isinstance(config.get("code"), dict):
        code = provenance.from_identity(config["code"].get("identity"))  # a step apart from the team's code
    split = split_data.load(manifest, args.data_dir, config)
    return evaluate(split, args.model, args.output, champion=args.champion, run_id=args.run_id, code=code)


FAILURE_FILE = "failure.json"


def write_failure(output: Path, stage: str, reason: str, log_tail: str = "") -> None:
    """`failure.json` in the run's output: what the backend reports as the reason a run failed."""
    with contextlib.suppress(OSError):  # the reason is also on stderr; an unwritable output must not hide it
        Path(output).mkdir(parents=True, exist_ok=True)
        body = {"stage": stage, "reason": reason, "log_tail": log_tail}
        (Path(output) / FAILURE_FILE).write_text(json.dumps(body, indent=1), encoding="utf-8")


def _interval(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    if not comparison:
        return None
    return {key: comparison.get(key) for key in ("ci_low", "ci_high", "level", "p_value")}


def _parser(stage: str) -> argparse.ArgumentParser:
    prog = "python -m shared.training" + ("" if stage == "run" else f" {stage}")
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--manifest", type=Path, required=True, help="dataset manifest JSON")
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="folder the manifest's paths are relative to"
    )
    parser.add_argument("--config", type=Path, required=True, help="training config JSON")
    parser.add_argument(
        "--output", type=Path, required=True, help="folder for model/, evaluation.json (prepare: the files)"
    )
    if stage == "prepare":
        return parser
    parser.add_argument(
        "--champion", type=Path, default=None, help="MLflow model folder of the production model"
    )
    parser.add_argument("--run-id", default="", help="the run's id, recorded in evaluation.json and MLflow")
    if stage == "evaluate":
        parser.add_argument("--model", type=Path, required=True, help="the MLflow model folder to evaluate")
        parser.add_argument("--code", type=Path, default=None, help="the training project that made it")
        parser.add_argument("--environment", default=None, help="its environment file, relative to --code")
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
