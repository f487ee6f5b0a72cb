"""What the local endpoint's integration tests share: small real models, requests, and looks at processes."""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from shared.adapters.local.endpoint import LocalEndpoint
from shared.host.endpoint.router import Router
from shared.ports import Deployment

COLUMNS = ["a", "b"]
ROWS = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]
READY_TIMEOUT_SECONDS = 60.0


def train(coef_a: float, coef_b: float, intercept: float) -> Any:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    features = pd.DataFrame([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 3.0], [4.0, 1.0]], columns=COLUMNS)
    target = coef_a * features["a"] + coef_b * features["b"] + intercept
    return LinearRegression().fit(features, target)


def save(model: Any, path: Path) -> Path:
    import mlflow.sklearn

    # Explicit requirements: inferring them would import and probe the model for seconds.
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
    return path


def expected(model: Any) -> list[float]:
    import pandas as pd

    return model.predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()


def request(rows: list[list[float]] = ROWS) -> dict[str, Any]:
    return {"input_data": {"columns": COLUMNS, "index": list(range(len(rows))), "data": rows}}


def wait_until_settled(endpoint: LocalEndpoint, names: list[str]) -> dict[str, Deployment]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        observed = {name: endpoint.deployment(name) for name in names}
        if all(d is not None and d.state != "Creating" for d in observed.values()):
            return observed  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"deployments still creating after {READY_TIMEOUT_SECONDS} s: {observed}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def admin(router: Router, path: str) -> Any:
    """What the router's admin API answers, as any other process would see it."""
    response = requests.get(f"{router.url}/admin{path}", timeout=30)
    response.raise_for_status()
    return response.json()


def pids(router: Router) -> list[int]:
    return [d["pid"] for d in admin(router, "/deployments")["deployments"]]


def pid(router: Router, deployment: str) -> int:
    return int(admin(router, f"/deployments/{deployment}")["pid"])


def observed(endpoint: LocalEndpoint, name: str) -> Deployment:
    deployment = endpoint.deployment(name)
    assert deployment is not None, f"no deployment {name!r}"
    return deployment


def send_signal(pid: int, sig: int) -> None:
    # Each scorer leads its own session: signal the group, which is the scorer and all it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def fresh_window() -> float:
    """Wait for the next whole second and return the time: stats are kept in one-second buckets, so a window
    from here holds only what the test does next."""
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)
    return time.time()
