"""Chaos: seeded random deliveries — duplicates, replays with new ids, reordering, lost events, late
redeliveries, crashes, and workers so slow that their lease expires mid-handler while a redelivery takes over —
by concurrent workers against Azurite, with a registry that looks a run up and creates in two steps as Azure ML
does, and a reconcile tick running alongside each batch. Releases overlap: a model registered by hand while the
last one is on its way, canaries with and without live requests, a stalled worker's late traffic call. After the
system settles, every invariant holds. A failing seed is printed; replay it with
`CHAOS_SEEDS=N+1 pytest tests/integration/test_chaos.py -k "seed-N"`."""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure.storage import AzureBlobStore
from shared.deps import Deps
from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.handlers.release import on_model_registered
from shared.handlers.training import on_run_completed
from shared.ports import ModelVersion, PreconditionFailed, RunResults
from shared.state import keys
from shared.state import lease as workflow
from shared.testing import faults, invariants
from tests.azurite import StampedBySimulatedClock, fresh_azurite
from tests.builders import blob_created, run_completed
from tests.fakes import FakeClock, make_deps

pytestmark = pytest.mark.integration

# Every seed meets every fault (each asserts it did); more seeds are more interleavings, at 35-45 s each here.
# `make test` runs four; `CHAOS_SEEDS=50 pytest tests/integration/test_chaos.py -n 2` soaks.
SEEDS = range(int(os.environ.get("CHAOS_SEEDS", "4")))
WORKERS = 4
SLOW = 0.25  # the share of completions whose worker stalls past its lease
MODEL = "mlops-model"


def _deps(connection_string: str, seed: int) -> Deps:
    prefix = f"x{seed}{uuid.uuid4().hex[:6]}"
    containers = {
        f"MLOPS_CONTAINER_{c.upper()}": f"{prefix}-{c}"
        for c in ("landing", "quarantine", "datasets", "inference", "reports", "state", "audit", "deadletter")
    }
    clock = FakeClock()
    return make_deps(
        StampedBySimulatedClock(AzureBlobStore.from_connection_string(connection_string), clock),
        clock=clock,
        **containers,
        MLOPS_QUIET_PERIOD_SECONDS="30",
        MLOPS_MAX_WAIT_SECONDS="300",
        MLOPS_CANARY_SECONDS="240",  # two ticks
        MLOPS_CANARY_MAX_SECONDS="480",  # four: a canary without requests is rolled back while settling
    )


def _csv(rng: random.Random, good: bool) -> bytes:
    if not good:
        return rng.choice([b"x1,x2\n1,2\n", b"\xff\xfe not text", b"x1,x2,target\n1,2,\n"])
    start = rng.randrange(10_000)
    rows = "".join(f"{i},{(i * 7) % 5},{2.0 * i + 1}\n" for i in range(start, start + 12))
    return f"x1,x2,target\n{rows}".encode()


class Chaos:
    def __init__(self, deps: Deps, seed: int) -> None:
        self.deps = deps
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.delivered = 0
        self.overlapping_ticks = 0

    def deliver(
        self, handlers: list[Callable[[Deps], Any]], slow: float = 0.0, tick_alongside: bool = False
    ) -> None:
        """Each handler runs on one of several workers, in random order, some twice, some dropped, some
        crashing after a random side effect, some failing because their worker lost its lease (Event Grid
        then redelivers it later); a `slow` share of them stalls past its lease (`_stalling`)."""
        batch: list[tuple[Callable[[Deps], Any], int, bool]] = []
        for handler in handlers:
            roll = self.rng.random()
            if roll < 0.10:
                continue  # lost: reconcile has to notice
            copies = 2 if roll > 0.85 else 1
            crash_after = self.rng.randrange(1, 12) if self.rng.random() < 0.15 else 0
            batch += [(handler, crash_after, self.rng.random() < slow)] * copies
        self.rng.shuffle(batch)
        late: list[Callable[[Deps], Any]] = []

        def run(handler: Callable[[Deps], Any], deps: Deps) -> None:
            try:
                handler(deps)
            except (faults.InjectedCrash, PreconditionFailed):
                with self.lock:
                    late.append(handler)
            with self.lock:
                self.delivered += 1

        def work(items: list[tuple[Callable[[Deps], Any], int, bool]]) -> None:
            for handler, crash_after, stalls in items:
                deps = self.deps if not crash_after else faults.inject(self.deps, crash_after)[0]
                if stalls:
                    self._stalling(handler, deps, run)
                else:
                    run(handler, deps)

        def reconcile_alongside() -> None:
            """The timer fires while the handlers run; one that fails (a lost race) fires again later."""
            try:
                reconciliation.reconcile(self.deps)
            except Exception:
                return
            with self.lock:
                self.overlapping_ticks += 1

        chunks = [batch[i::WORKERS] for i in range(WORKERS)]
        threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
        if tick_alongside:
            threads.append(threading.Thread(target=reconcile_alongside))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.tick()  # leases of crashed workers expire, then Event Grid retries
        for handler in late:
            handler(self.deps)
            self.delivered += 1

    def _stalling(
        self, handler: Callable[[Deps], Any], deps: Deps, run: Callable[[Callable[[Deps], Any], Deps], None]
    ) -> None:
        """The worker stalls reading the run's results until its lease has expired, and Event Grid redelivers
        meanwhile; the redelivery's worker is held between its registry look-up and its create until the stalled
        worker has gone on: the interleaving in which a run was registered twice."""
        gone_on = threading.Event()
        redelivery: list[threading.Thread] = []
        real = deps.jobs

        def hold() -> None:
            gone_on.wait(10)

        def results(run_id: str) -> RunResults:
            if not redelivery:
                entered = threading.Event()
                self.deps.registry.before_once("create", lambda: (entered.set(), hold()))
                self.deps.clock.advance(workflow.LEASE_SECONDS + 1)
                redelivery.append(threading.Thread(target=run, args=(handler, self.deps)))
                redelivery[0].start()
                while not entered.wait(0.05) and redelivery[0].is_alive():
                    pass
            return real.results(run_id)

        stalled = dataclasses.replace(deps, jobs=_Jobs(real, results))
        try:
            run(handler, stalled)
        finally:
            gone_on.set()
            for thread in redelivery:
                thread.join()

    def tick(self) -> None:
        self.deps.clock.advance(workflow.LEASE_SECONDS + 1)
        reconciliation.reconcile(self.deps)


class _Jobs:
    """`jobs` whose `results` is `results`; everything else as `real`."""

    def __init__(self, real: Any, results: Callable[[str], RunResults]) -> None:
        self._real, self.results = real, results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _by_hand(deps: Deps, burst: int) -> ModelVersion:
    """A version registered by hand from an existing dataset, as a person may while a release is on its way."""
    dataset = next(stored.record.dataset_version for stored in deps.state.list(keys.RUNS))
    evaluation = {
        "primary_metric": "rmse",
        "greater_is_better": False,
        "challenger": {"rmse": 2.0, "r2": 0.8},
    }
    results = deps.jobs.complete(f"by-hand-{burst}", evaluation)
    return deps.registry.register(MODEL, results, {"mlops.dataset_version": dataset})


def _succeed(deps: Deps, rng: random.Random) -> None:
    """Deployments being created finish; each canary gets live requests, a few too few to be evidence."""
    for deployment in deps.endpoints.deployments():
        if deployment.state == "Creating":
            deps.endpoints.set_state(deployment.name, "Succeeded")
            deps.endpoints.set_stats(deployment.name, requests=rng.choice([60, 60, 60, 5]))


def _late_traffic_call(deps: Deps, stale: dict[str, int]) -> None:
    """A stalled worker's traffic call lands after the world moved on (when Azure would still accept it)."""
    current = deps.endpoints.traffic()
    if sum(stale.values()) == 100 and all(name in current for name, share in stale.items() if share):
        deps.endpoints.set_traffic({name: stale.get(name, 0) for name in current})


@pytest.fixture()
def seed_azurite(tmp_path: Path) -> Iterator[str]:
    """An Azurite of the seed's own: a seed's cost never depends on the seeds before it."""
    yield from fresh_azurite(tmp_path)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def test_invariants_hold_whatever_the_delivery(seed_azurite: str, seed: int) -> None:
    deps = _deps(seed_azurite, seed)
    chaos = Chaos(deps, seed)
    rng = chaos.rng
    landing = deps.settings.containers.landing
    uploaded = 0
    for burst in range(4):
        handlers = []
        for _ in range(rng.randrange(30, 45)):
            name = f"b{burst}/f{uploaded}.csv"
            uploaded += 1
            etag = deps.blobs.write(landing, name, _csv(rng, good=rng.random() > 0.15))
            for replay in range(2 if rng.random() < 0.1 else 1):  # a replay arrives with a new event id
                event_id = f"evt-{name}-{replay}"
                handlers.append(
                    lambda d, n=name, e=etag, i=event_id: on_blob_created(blob_created(d, n, i, etag=e), d)
                )
        chaos.deliver(handlers)
        for _ in range(2):
            chaos.tick()
        completions = []
        for run_id in list(deps.jobs.submitted):
            if deps.jobs.statuses[run_id] in ("Queued", "Running"):
                rmse = rng.uniform(2.0, 4.0)
                deps.jobs.complete(
                    run_id,
                    {
                        "primary_metric": "rmse",
                        "greater_is_better": False,
                        "challenger": {"r2": 0.8, "rmse": rmse, "mae": rmse / 2},
                        "champion": None if burst == 0 else {"r2": 0.8, "rmse": 3.0, "mae": 1.5},
                    },
                )
                completions.append(lambda d, r=run_id: on_run_completed(run_completed(d, r), d))
        chaos.deliver(completions, slow=SLOW)
        announcements = [
            lambda d, m=model: on_model_registered(deps.registry.announcement(m), d)
            for model in deps.registry.models.get(MODEL, [])
        ]
        chaos.deliver(announcements, tick_alongside=True)
        _succeed(deps, rng)
        stale = deps.endpoints.traffic()
        # While that release is on its way (the tick alongside moves it on), another version is registered.
        hand = _by_hand(deps, burst)
        announced = [lambda d, m=hand: on_model_registered(deps.registry.announcement(m), d)]
        chaos.deliver(announced, tick_alongside=True)
        if rng.random() < 0.5:
            _late_traffic_call(deps, stale)
    for _ in range(4):  # settle: runs still out are chased, releases move on
        for run_id, status in list(deps.jobs.statuses.items()):
            if status in ("Queued", "Running"):
                deps.jobs.complete(
                    run_id,
                    {
                        "primary_metric": "rmse",
                        "greater_is_better": False,
                        "challenger": {"r2": 0.8, "rmse": 2.5, "mae": 1.2},
                        "champion": None,
                    },
                )
        _succeed(deps, rng)
        chaos.tick()

    problems = invariants.check(deps, settled=True)
    assert problems == [], f"seed {seed}: {problems}"
    runs = [stored.record for stored in deps.state.list(keys.RUNS)]
    assert len(deps.jobs.submitted) == len(runs) == len({r.dataset_version for r in runs}), f"seed {seed}"
    assert chaos.delivered >= 150, f"seed {seed}: only {chaos.delivered} deliveries"
    assert chaos.overlapping_ticks >= 4, (
        f"seed {seed}: only {chaos.overlapping_ticks} ticks overlapped handlers"
    )
    releases = [stored.record for stored in deps.state.list(keys.RELEASES)]
    overlapped = [
        r.id
        for r in releases
        if r.status == "superseded" and all(step.status != "production" for step in r.history)
    ]
    assert overlapped, f"seed {seed}: no release was superseded on its way: releases never overlapped"
    assert deps.state.exists(keys.production(MODEL)), f"seed {seed}: nothing reached production"
