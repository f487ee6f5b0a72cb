"""Indexes the real function app and invokes its functions as the Python worker does.

Event Grid payloads are decoded by azure-functions' own EventGridEventInConverter, so a function receives
exactly the object it would receive in Azure (EventGridEvent or CloudEvent).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequest

from shared.testing.faults import InjectedCrash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexedFunction:
    name: str
    trigger: str
    binding: dict[str, Any]
    call: Any

    @property
    def arg_name(self) -> str:
        return str(self.binding["name"])


@dataclass
class Invocation:
    function: str
    trigger: str
    subject: str
    event_type: str
    started: str
    duration_ms: float = 0.0
    outcome: str = "running"
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


_indexed: dict[int, tuple[func.FunctionApp, list[Any]]] = {}


def _index(app: func.FunctionApp) -> list[Any]:
    """`get_functions()` validates names against what it built before, so a second call on the same app
    raises; the Functions host indexes once per process, and so do we."""
    if id(app) not in _indexed:
        _indexed[id(app)] = (app, app.get_functions())
    return _indexed[id(app)][1]


class UndecodableEvent(ValueError):
    """An event the Python worker cannot turn into the function's argument (its converter raises, before any
    code of the app runs): in Azure the invocation fails."""


def decode_event(event: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """The argument the worker builds from one event, with azure-functions' own converter."""
    try:
        datum = meta.Datum(value=json.dumps(event), type="json")
        return EventGridEventInConverter.decode(datum, trigger_metadata={})
    except (TypeError, ValueError, RecursionError) as error:
        field = "time" if "specversion" in event else "eventTime"
        what = f"{field} {_shown(event[field])}" if event.get(field) is not None else "it"
        raise UndecodableEvent(f"the Functions worker cannot read {what}: {str(error)[:200]}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


# Wraps one invocation of the named function (the local host's fault injection, a test's observer).
InvocationHook = Callable[[str], AbstractContextManager[Any]]


class FunctionHost:
    def __init__(
        self, app: func.FunctionApp, settings: Mapping[str, str], around: InvocationHook | None = None
    ) -> None:
        self.settings = settings
        self._around = around or (lambda name: nullcontext())
        self.functions: dict[str, IndexedFunction] = {}
        for function in _index(app):
            trigger = function.get_trigger()
            self.functions[function.get_function_name()] = IndexedFunction(
                name=function.get_function_name(),
                trigger=trigger.get_binding_name(),
                binding=trigger.get_dict_repr(),
                call=function.get_user_function(),
            )
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()

    def of_trigger(self, trigger: str) -> list[IndexedFunction]:
        return [f for f in self.functions.values() if f.trigger == trigger]

    def app_setting(self, value: str) -> str:
        """Resolve `%NAME%` binding expressions from app settings, as the Functions host does."""
        return re.sub(r"%([^%]+)%", lambda m: os.environ.get(m[1]) or self.settings[m[1]], value)

    def invoke_event(self, name: str, event: Mapping[str, Any]) -> None:
        """Invoke an Event Grid trigger with one event; raises if the function failed, UndecodableEvent if the
        worker could not even build its argument."""
        function = self._get(name, "eventGridTrigger")
        argument = decode_event(event)
        event_type = str(event.get("eventType") or event.get("type") or "")
        self._run(function, {function.arg_name: argument}, str(event.get("id", "")), event_type)

    def invoke_timer(self, name: str, past_due: bool = False) -> None:
        function = self._get(name, "timerTrigger")
        self._run(function, {function.arg_name: TimerRequest(past_due=past_due)}, "", "timer")

    def invoke_http(self, name: str, request: func.HttpRequest) -> func.HttpResponse:
        function = self._get(name, "httpTrigger")
        return self._run(function, {function.arg_name: request}, request.url, request.method)

    def _get(self, name: str, trigger: str) -> IndexedFunction:
        function = self.functions.get(name)
        if function is None or function.trigger != trigger:
            raise KeyError(f"no {trigger} function named {name!r}")
        return function

    def _run(self, function: IndexedFunction, kwargs: dict[str, Any], subject: str, event_type: str) -> Any:
        record = Invocation(
            function.name, function.trigger, subject, event_type, datetime.now(UTC).isoformat()
        )
        with self._lock:
            self.invocations.append(record)
        started = time.perf_counter()
        try:
            with self._around(function.name):
                result = function.call(**kwargs)
        except InjectedCrash as crash:
            # A worker process died: the host answers 500 and Event Grid redelivers, as in Azure.
            record.outcome, record.error = "crashed", str(crash)
            raise RuntimeError(f"worker crashed: {crash}") from None
        except Exception as error:
            record.outcome, record.error = "failed", f"{type(error).__name__}: {error}"
            log.exception("function failed", extra={"function": function.name, "subject": subject})
            raise
        else:
            record.outcome = "succeeded"
            return result
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000, 1)
