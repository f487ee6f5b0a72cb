"""A burst: 1,000 BlobCreated events for 1,000 small files, 10 % delivered twice, pushed by 4 concurrent
deliverers through the local host's Event Grid webhook, against Azurite.

Throughput here is the store's operation rate divided by the operations a file costs, so the bench counts them
(every call of the handlers' blob store, by operation and by what it was for) and measures, in the same run,
the raw rate of the store: 4 threads writing small blobs, as the handlers do. Prints `storage ops per file N`
with the breakdown, events/s beside the ceiling the raw rate allows (raw writes/s / ops per file), p50 and p95
handler latency, and the number of training runs started (1 expected; 2 if the burst outlived the maximum wait).
Usage: python bench/burst.py [--files 1000] [--deliverers 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import bootstrap
from shared.deps import Deps
from shared.handlers import reconcile
from shared.host.azurite import free_port
from shared.host.services import LocalServices
from shared.host.watcher import blob_created_event
from shared.ports import BlobStore
from shared.state.audit import AuditLog
from shared.state.store import StateStore
from shared.testing import invariants
from shared.testing.counting import CountingBlobStore, breakdown

RAW_WRITES = 1000


def raw_write_rate(blobs: BlobStore, container: str, threads: int) -> float:
    """Writes/s of `threads` threads writing small blobs to `container`: the store's own ceiling."""
    body = b"x" * 400
    names = iter(range(RAW_WRITES))
    lock = threading.Lock()

    def write() -> None:
        while True:
            with lock:
                index = next(names, None)
            if index is None:
                return
            blobs.write(container, f"raw/{index:05d}.json", body, if_none_match=True)

    workers = [threading.Thread(target=write) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return RAW_WRITES / (time.perf_counter() - started)


def counted(deps: Deps) -> tuple[Deps, CountingBlobStore]:
    """`deps` whose blob store (under the state store and the audit log too) counts its operations."""
    containers = deps.settings.containers
    roles = {getattr(containers, f.name): f.name for f in dataclasses.fields(containers)}
    blobs = CountingBlobStore(deps.blobs, roles)
    wrapped = dataclasses.replace(
        deps,
        blobs=blobs,
        state=StateStore(blobs, containers.state),
        audit=AuditLog(blobs, containers.audit, deps.clock),
    )
    return wrapped, blobs


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
        deps, counter = counted(services.deps)
        bootstrap.install(deps)  # the functions the host invokes use the counting store
        landing = deps.settings.containers.landing
        scratch = "bench-raw-writes"
        services.deps.blobs.ensure_containers([scratch])
        raw_rate = raw_write_rate(services.deps.blobs, scratch, args.deliverers)
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

        counter.reset()
        started = time.perf_counter()
        threads = [threading.Thread(target=deliver) for _ in range(args.deliverers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        operations = counter.reset()
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
        ops_per_file = sum(operations.values()) / args.files
        print("\n".join(breakdown(operations, args.files)))
        print(f"raw store rate   {raw_rate:.0f} writes/s ({args.deliverers} threads, same Azurite)")
        print(
            f"throughput       {len(deliveries) / elapsed:.1f} events/s ({elapsed:.1f} s); ceiling "
            f"{raw_rate / ops_per_file:.1f} files/s (raw rate / ops per file), "
            f"{args.files / elapsed / (raw_rate / ops_per_file):.2f} of it"
        )
        print(
            f"handler latency  p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.0f} ms"
        )
        print(f"training runs    {len(runs)} started, the first with {run_files} files")
        print(f"invariants       {'hold' if not problems else problems[:5]}")
        return 0 if len(runs) in (1, 2) and not problems and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
