"""The time of a training run with a team's project (examples/) against the built-in trainer, on the same data.

    python bench/training.py                         # diabetes (regression): built-in, both examples
    python bench/training.py --data breast_cancer    # binary
    python bench/training.py --cold-pip              # the first build without pip's cache (downloads lightgbm)
    python bench/training.py --parts 5               # the first run and 4 with the cached environment

Each trainer gets a fresh local host (Azurite in memory, MLOPS_HOME in a temporary folder, so no environment is
cached): the shuffled rows are cut in `--parts` parts; the first lands as one CSV, `reconcile` is fired until the
run is decided (registered or rejected) and its release has settled; then each other part lands in turn and a
new run trains on all rows so far, with the environment cached and a champion to beat (the median of those runs
is compared). Timed: each run from the landing
to its decision (quiet period and polling included: 0.2 s and 0.3 s) and the run's own job (submitted ->
finished, as recorded), the first model's release (deploy in its scoring process, in the model's own
environment when the project needs one, smoke test), and the environment's first build alone (the example's
requirements file into a fresh cache, as the first run does). Prints the scores too. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COMMAND = "python train.py --train {train} --model {model} --params {params}"
TRAINERS = {"built-in": None, "lightgbm-features": "lightgbm-features", "sklearn-script": "sklearn-script"}
METRICS = {"regression": ("rmse", "r2"), "binary": ("roc_auc", "f1")}
TIMEOUT = 600.0


def bench(trainer: str, data: str, task: str, parts: int, folder: Path) -> dict[str, Any]:
    import requests

    from shared.host.azurite import free_port
    from shared.host.services import LocalServices

    example = TRAINERS[trainer]
    env = {
        "MLOPS_HOME": str(folder / trainer / "home"),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_MODEL_NAME": f"bench-{trainer}",
        "MLOPS_QUIET_PERIOD_SECONDS": "0.2",
        "MLOPS_CANARY_SECONDS": "0",
        "MLOPS_TASK": task,
        "MLOPS_TRAINING_CODE": str(EXAMPLES / example) if example else "",
        "MLOPS_TRAINING_COMMAND": COMMAND if example else "",
        "MLOPS_TRAINING_ENVIRONMENT": "requirements.txt" if example else "",
    }
    halves = _parts(data, parts)
    result: dict[str, Any] = {"trainer": trainer, "runs": []}
    with LocalServices(env, in_memory_storage=True, timers=False, watch_interval=0.1) as services:

        def reconcile_until(condition: Callable[[], Any]) -> Any:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                if value := condition():
                    return value
                requests.post(
                    f"{services.server.url}/admin/functions/reconcile?wait=true",
                    json={"input": ""},
                    timeout=300,
                ).raise_for_status()
                time.sleep(0.3)
            raise TimeoutError(f"{trainer}: nothing decided in {TIMEOUT:.0f} s")

        for index, half in enumerate(halves, start=1):
            buffer = io.StringIO()
            half.to_csv(buffer, index=False)
            started = time.perf_counter()
            services.deps.blobs.write(
                services.settings.containers.landing,
                f"{data}-{index}.csv",
                buffer.getvalue().encode(),
                content_type="text/csv",
            )
            decided = reconcile_until(lambda n=index: _decided(services, n))
            seconds = time.perf_counter() - started
            run = _run(services, decided.detail.get("run_id") or decided.subject)
            released = time.perf_counter()
            reconcile_until(lambda: not _release_active(services))
            result["runs"].append(
                {
                    "decision": decided.action,
                    "seconds": seconds,
                    "job_seconds": _job_seconds(run),
                    "release_seconds": time.perf_counter() - released,
                    "stages": _stages(Path(env["MLOPS_HOME"]) / "runs" / run.run_id),
                    "scores": (run.evaluation or {}).get("challenger", {}),
                    "rows": (run.evaluation or {}).get("rows", {}),
                }
            )
    if example:
        result["build_seconds"] = _first_build(EXAMPLES / example, folder / trainer / "build")
    return result


def _parts(data: str, parts: int) -> list[Any]:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{data}")(as_frame=True).frame
    frame = frame.sample(frac=1.0, random_state=11).reset_index(drop=True)
    size = -(-len(frame) // parts)
    return [frame.iloc[start : start + size] for start in range(0, len(frame), size)]


def _decided(services: Any, count: int) -> Any:
    entries = [
        e
        for e in services.deps.audit.entries()
        if e.action in ("model.registered", "challenger.rejected", "run.failed")
    ]
    if any(e.action == "run.failed" for e in entries):
        failed = next(e for e in entries if e.action == "run.failed")
        raise RuntimeError(f"the run failed: {failed.detail}")
    return entries[count - 1] if len(entries) >= count else None


def _run(services: Any, run_id: str) -> Any:
    from shared.state import keys

    runs = [stored.record for stored in services.deps.state.list(keys.RUNS)]
    finished = sorted((r for r in runs if r.finished_at), key=lambda r: r.finished_at)
    return next((r for r in finished if r.run_id == run_id), finished[-1])


def _job_seconds(run: Any) -> float:
    return (
        datetime.fromisoformat(run.finished_at) - datetime.fromisoformat(run.submitted_at)
    ).total_seconds()


def _stages(folder: Path) -> dict[str, float]:
    """Where a team's run spends its time, from what each step writes last: fetching the inputs, prepare (its
    own process: the training rows), the environment (found or built) and the command (the model's files),
    our evaluation (its own process, in the environment: evaluation.json), then tracking and the completion
    event (status.json). Empty for the built-in trainer, which runs in one process."""
    model = [p.stat().st_mtime for p in (folder / "work" / "model").rglob("*") if p.is_file()]
    marks = [folder / n for n in ("job.json", "inputs/config.json", "work/params.json")]
    ends = [folder / n for n in ("outputs/evaluation.json", "status.json")]
    if not model or not all(mark.exists() for mark in marks + ends):
        return {}
    times = [*(m.stat().st_mtime for m in marks), max(model), *(m.stat().st_mtime for m in ends)]
    names = ("inputs", "prepare", "environment + command", "evaluate", "tracking + event")
    return {name: times[i + 1] - times[i] for i, name in enumerate(names)}


def _release_active(services: Any) -> bool:
    from shared.handlers.release import active_releases

    return bool(active_releases(services.deps))


def _first_build(code: Path, home: Path) -> float:
    from shared.adapters.local.environments import ensure_environment

    started = time.perf_counter()
    ensure_environment(home, code, "requirements.txt", TIMEOUT)
    return time.perf_counter() - started


def main() -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=("diabetes", "breast_cancer"), default="diabetes")
    parser.add_argument("--trainers", nargs="+", choices=list(TRAINERS), default=list(TRAINERS))
    parser.add_argument("--parts", type=int, default=3, help="files landed in turn, one run each (>= 2)")
    parser.add_argument("--cold-pip", action="store_true", help="build environments without pip's cache")
    args = parser.parse_args()
    if args.cold_pip:
        os.environ["PIP_NO_CACHE_DIR"] = "1"
    task = "regression" if args.data == "diabetes" else "binary"
    with tempfile.TemporaryDirectory(prefix="training-bench-") as folder:
        results = [bench(t, args.data, task, max(args.parts, 2), Path(folder)) for t in args.trainers]
    print(f"\n{args.data} ({task}), {os.cpu_count()} cores{', pip cache off' if args.cold_pip else ''}")
    head = f"{'trainer':<18} {'run':>3} {'decision':<20} {'landing->decision':>17} {'job':>7} {'release':>8}  scores"
    print(head + "\n" + "-" * len(head))
    for result in results:
        for number, run in enumerate(result["runs"], start=1):
            scores = ", ".join(f"{m}={run['scores'][m]:.3f}" for m in METRICS[task] if m in run["scores"])
            print(
                f"{result['trainer']:<18} {number:>3} {run['decision']:<20} {run['seconds']:>15.1f} s "
                f"{run['job_seconds']:>5.1f} s {run['release_seconds']:>6.1f} s  {scores} "
                f"({run['rows'].get('train', '?')} training rows)"
            )
    later = {r["trainer"]: statistics.median(run["seconds"] for run in r["runs"][1:]) for r in results}
    print()
    for result in results:
        trainer, first = result["trainer"], result["runs"][0]["seconds"]
        if "build_seconds" not in result:
            print(f"{trainer}: first run {first:.1f} s, later runs (median) {later[trainer]:.1f} s")
            continue
        line = (
            f"{trainer}: first environment build {result['build_seconds']:.1f} s; first run {first:.1f} s, "
            f"later runs with the cached environment (median) {later[trainer]:.1f} s"
        )
        if "built-in" in later:
            line += f" = {later[trainer] / later['built-in']:.2f} x the built-in's {later['built-in']:.1f} s"
        stages = [run["stages"] for run in result["runs"][1:] if run["stages"]]
        if stages:
            line += (
                " ("
                + ", ".join(f"{n} {statistics.median(s[n] for s in stages):.1f} s" for n in stages[0])
                + ")"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
