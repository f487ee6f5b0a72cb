"""What azure-ai-ml's experimental-warning check costs the Azure endpoints adapter, and what the quick one saves.

Against the contract suite's stub transport (the real SDK, no network), an endpoint with `--deployments`
capturing deployments: each trial lists them (`deployments()`, one REST read, every capture's entities built
from the response). Timed first with the SDK's own `_should_skip_warning` (`inspect.stack()` on every
experimental entity), then with `shared.adapters.azure.sdk.quicken_experimental_check` installed, in the same
process, at the stack depth of `--depth` callers (a handler in the Functions worker runs some 30-60 frames deep). Prints milliseconds per
listing and the ratio quick / SDK.
Usage: python bench/experimental_check.py [--deployments 3] [--trials 20] [--depth 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import function_app  # noqa: F401  (the modules a worker has loaded: inspect.stack() scans them)
from shared.adapters.azure import sdk
from shared.ports import ModelVersion
from tests.contract.azure_stub import AzureWorld

MODEL_URI = "azureml://jobs/train-1/outputs/output/paths/model"


def at_depth(depth: int, call: Callable[[], None]) -> None:
    if depth <= 0:
        call()
    else:
        at_depth(depth - 1, call)


def median_ms(trials: int, depth: int, call: Callable[[], None]) -> float:
    times = []
    for _ in range(trials):
        started = time.perf_counter()
        at_depth(depth, call)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--depth", type=int, default=40)
    args = parser.parse_args()
    from azure.ai.ml._utils import _experimental

    own = _experimental._should_skip_warning  # before the client is made: making it installs the quick one
    world = AzureWorld()
    endpoints = world.endpoints()
    endpoint = world.azure.endpoint
    for index in range(args.deployments):
        name = f"model-v{index + 1}"
        endpoints.begin_deployment(name, ModelVersion("mlops-model", "1", {}, MODEL_URI))
        world.ml.set_deployment_state(endpoint, name, "Succeeded")

    def listing() -> None:
        assert len(endpoints.deployments()) == args.deployments

    listing()  # the SDK's imports and the client, outside the timing
    results = {}
    for mode in ("SDK check", "quick check"):
        if mode == "quick check":
            sdk.quicken_experimental_check()
        else:
            _experimental._should_skip_warning = own
        results[mode] = median_ms(args.trials, args.depth, listing)
    print(f"{args.deployments} deployments, {args.trials} trials, {args.depth} frames deep (medians)")
    for mode, listed in results.items():
        print(f"{mode:>12}: {listed:8.2f} ms per listing")
    print(f"{'quick / SDK':>12}: {results['quick check'] / results['SDK check']:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
