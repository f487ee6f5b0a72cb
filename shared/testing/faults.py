"""Fault injection: kill a handler right after its k-th side effect, to prove crashes lose and double nothing.

Test and bench support, never imported by production code. Tests wrap dependencies with
`inject(deps, after=k)`; the local host, given `MLOPS_FAULT_AFTER_EFFECTS=k` with `MLOPS_FAULT_FUNCTION=name`,
wraps the first invocation of that function the same way (an invocation hook around `bootstrap.deps()`). A side effect is any write to the outside world: a blob written or deleted, a job
submitted, a model registered, a deployment or traffic changed, an event published.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from shared.deps import Deps
from shared.state.audit import AuditLog
from shared.state.store import StateStore

EFFECTS: dict[str, tuple[str, ...]] = {
    "blobs": ("write", "delete"),
    "jobs": ("submit",),
    "registry": ("register",),
    "endpoints": ("begin_deployment", "set_traffic", "delete_deployment"),
    "publisher": ("publish",),
}


class InjectedCrash(BaseException):
    """A simulated process death. BaseException, so no handler's `except Exception` can swallow it."""


class Fault:
    def __init__(self, after: int) -> None:
        self.after = after
        self.effects = 0
        self.crashed = False
        self._lock = threading.Lock()

    def around(self, name: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self.crashed:
                raise InjectedCrash(f"the process died before {name}")
        result = call(*args, **kwargs)
        with self._lock:
            self.effects += 1
            if self.effects == self.after:
                self.crashed = True
                raise InjectedCrash(f"killed right after side effect {self.after} ({name})")
        return result


class _Faulty:
    def __init__(self, target: Any, methods: tuple[str, ...], fault: Fault) -> None:
        self._target = target
        self._methods = methods
        self._fault = fault

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._methods:
            return attribute
        return lambda *args, **kwargs: self._fault.around(name, attribute, *args, **kwargs)


def inject(deps: Deps, after: int) -> tuple[Deps, Fault]:
    """Dependencies that behave like `deps` until the `after`-th side effect, then die."""
    fault = Fault(after)
    return wrap(deps, fault), fault


def wrap(deps: Deps, fault: Fault) -> Deps:
    wrapped = {port: _Faulty(getattr(deps, port), methods, fault) for port, methods in EFFECTS.items()}
    blobs = wrapped["blobs"]
    return dataclasses.replace(
        deps,
        **wrapped,
        state=StateStore(blobs, deps.settings.containers.state),
        audit=AuditLog(blobs, deps.settings.containers.audit, deps.clock),
    )
