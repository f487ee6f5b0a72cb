"""A burst: 1,000 BlobCreated events for 1,000 small files, 10 % delivered twice, pushed by 4 concurrent
deliverers through the local host's Event Grid webhook, against Azurite.

Prints events/s, p50 and p95 handler latency, and the number of training runs started (1 expected; 2 if the
burst outlived the maximum wait).  Usage: python bench/burst.py [--files 1000] [--deliverers 4]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.handlers import reconcile
from shared.host.azurite import free_port
from shared.host.services import LocalServices
from shared.host.watcher import blob_created_event
from shared.testing import invariants


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--deliverers", type=int, default=4)
    parser.add_argument("--duplicates", type=float, default=0.10)
    args = parser.parse_args()
    env = {
        "MLOPS_HOME": tempfile.mkdtemp(prefix="burst-"),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_QUIET_PERIOD_SECONDS": "2",
        "MLOPS_MIN_ROWS": "5",
    }
    with LocalServices(env, in_memory_storage=True, timers=False, watch=False) as services:
        deps = services.deps
        landing = deps.settings.containers.landing
        events = []
        started = time.perf_counter()
        for index in range(args.files):
            rows = "\n".join(f"{index},{j},{(index + j) % 11},{index * 0.5 + j}" for j in range(8))
            name = f"burst/file-{index:05d}.csv"
            deps.blobs.write(landing, name, f"a,b,c,target\n{rows}\n".encode())
            info = deps.blobs.info(landing, name)
            events.append(
                blob_created_event(info, deps.blobs.url(landing, name), deps.settings.topics.storage)
            )
        print(f"uploaded {args.files} files in {time.perf_counter() - started:.1f} s")
        rng = random.Random(7)
        deliveries = events + rng.sample(events, int(len(events) * args.duplicates))
        rng.shuffle(deliveries)
        url = f"{services.server.url}/runtime/webhooks/eventgrid?functionName=on_data_landed"
        queue = list(deliveries)
        lock = threading.Lock()
        failures = []

        def deliver() -> None:
            session = requests.Session()
            while True:
                with lock:
                    if not queue:
                        return
                    event = queue.pop()
                response = session.post(
                    url, json=[event], headers={"aeg-event-type": "Notification"}, timeout=60
                )
                if response.status_code != 200:
                    failures.append(response.text[:200])

        started = time.perf_counter()
        threads = [threading.Thread(target=deliver) for _ in range(args.deliverers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        latencies = sorted(i.duration_ms for i in services.host.invocations if i.function == "on_data_landed")
        time.sleep(float(env["MLOPS_QUIET_PERIOD_SECONDS"]) + 0.5)
        reconcile.reconcile(deps)
        runs = [e for e in deps.audit.entries() if e.action == "training.started"]
        run_files = runs[0].detail["files"] if runs else 0
        deps.jobs.stop_all()
        problems = invariants.check(deps, settled=False)
        print(
            f"deliveries       {len(deliveries)} ({len(deliveries) - len(events)} duplicates), "
            f"{args.deliverers} deliverers, {len(failures)} failed"
        )
        print(f"throughput       {len(deliveries) / elapsed:.1f} events/s ({elapsed:.1f} s)")
        print(
            f"handler latency  p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.0f} ms"
        )
        print(f"training runs    {len(runs)} started, the first with {run_files} files")
        print(f"invariants       {'hold' if not problems else problems[:5]}")
        return 0 if len(runs) in (1, 2) and not problems and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
