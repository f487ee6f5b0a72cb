"""The first invocation in a fresh worker: process start to the first BlobCreated handled.

Each trial starts a new Python process, as the Functions host starts a worker: it imports `function_app`,
indexes it, and invokes `on_data_landed` with a BlobCreated for a file just landed in Azurite; building the
dependencies (the Blob client, the state store, the audit log finding its tail) and validating the file are part
of it. The parent times the process from spawn to the handled event. The baselines, in the same run: a bare
interpreter (`python -c pass`) and `import azure.functions` alone; the ratio `import function_app` /
`import azure.functions` is the cold-start cost the app itself adds (goal at most 1.5).
Usage: python bench/first_invocation.py [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.adapters.azure.storage import AzureBlobStore
from shared.config import Settings
from shared.host.azurite import Azurite, free_port
from shared.host.watcher import blob_created_event

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5

WORKER = """
import json, sys, time
started = time.perf_counter()
import function_app
imported = time.perf_counter()
from shared.host.functions_host import FunctionHost
host = FunctionHost(function_app.app, {})
host.invoke_event("on_data_landed", json.loads(sys.argv[1]))
handled = time.perf_counter()
print(json.dumps({"import": imported - started, "first_event": handled - imported}))
"""

IMPORT_ONLY = """
import json, time
started = time.perf_counter()
import %s
print(json.dumps({"import": time.perf_counter() - started}))
"""


def _run(code: str, env: dict[str, str], *args: str) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"worker failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return wall, json.loads(lines[-1]) if lines else {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="first-invocation-"))
    azurite = Azurite(home, free_port(), in_memory=True).start()
    try:
        env = {
            **os.environ,
            "MLOPS_HOME": str(home),
            "MLOPS_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "MLOPS_MIN_ROWS": "5",
        }
        settings = Settings.from_env(env)
        blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
        blobs.ensure_containers(settings.containers.all())
        landing = settings.containers.landing

        bare = [_run("pass", env)[0] for _ in range(args.trials)]
        sdk = [_run(IMPORT_ONLY % "azure.functions", env)[1]["import"] for _ in range(args.trials)]
        app = [_run(IMPORT_ONLY % "function_app", env)[1]["import"] for _ in range(args.trials)]
        walls, firsts = [], []
        for trial in range(args.trials):
            name = f"first/file-{trial}.csv"
            rows = "".join(f"{trial},{j},{j * 0.5}\n" for j in range(20))
            blobs.write(landing, name, f"a,b,target\n{rows}".encode())
            info = blobs.info(landing, name)
            assert info is not None
            event = blob_created_event(info, blobs.url(landing, name), settings.topics.storage)
            wall, timings = _run(WORKER, env, json.dumps(event))
            walls.append(wall)
            firsts.append(timings["first_event"])
        accepted = sum(1 for info in blobs.list(settings.containers.state, "files/"))
        blobs.close()
    finally:
        azurite.stop()

    def median_ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.0f} ms"

    ratio = statistics.median(app) / statistics.median(sdk)
    print(f"trials: {args.trials} fresh processes each; medians")
    print(f"bare interpreter start            {median_ms(bare)}")
    print(f"import azure.functions            {median_ms(sdk)}")
    print(f"import function_app               {median_ms(app)}")
    print(f"ratio function_app / azure.functions: {ratio:.2f} (goal <= {GOAL_RATIO})")
    print(f"first BlobCreated handled (after import, dependencies built on the way) {median_ms(firsts)}")
    print(f"process start to first BlobCreated handled {median_ms(walls)}")
    print(f"files accepted: {accepted} of {args.trials}")
    return 0 if accepted == args.trials else 1


if __name__ == "__main__":
    raise SystemExit(main())
