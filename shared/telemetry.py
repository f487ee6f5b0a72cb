"""Traces and logs that carry the ids people look things up by.

A handler's work is a span named for what it does, with the ids it concerns as attributes (`mlops.event_id`,
`mlops.run_id`, `mlops.release_id`, `mlops.model_version`, `mlops.blob`); every log record written inside a span
carries the same ids, as attributes (Application Insights' custom dimensions) in Azure and as `key=value` pairs
in local logs. A run remembers the trace that started it (`Run.trace`) and a release the run's (`Release.trace`),
so a run's start, its job (which gets the trace as `TRACEPARENT`), its evaluation and registration, and its
release's every step are one trace, whichever worker or tick moves them.

In Azure (`APPLICATIONINSIGHTS_CONNECTION_STRING` set) the Azure Monitor OpenTelemetry distribution exports both,
signing in with the app's identity (the component takes Entra ID telemetry only). Elsewhere the OpenTelemetry API
is a no-op unless a provider is installed (the tests install one with an in-memory exporter).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "mlops."
_ids: ContextVar[dict[str, str]] = ContextVar("mlops_telemetry_ids", default={})  # noqa: B039 - never mutated
_configured = threading.Event()
_lock = threading.Lock()


def configure(client_id: str | None = None) -> bool:
    """Export traces and logs to Application Insights, once per process, when the app runs in Azure; True if
    exporting."""
    connection = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    with _lock:
        if _configured.is_set() or not connection:
            return _configured.is_set()
        from azure.identity import ManagedIdentityCredential
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=connection,
            credential=ManagedIdentityCredential(client_id=client_id)
            if client_id
            else ManagedIdentityCredential(),
            logger_name="shared",  # the library's loggers; the worker's own go through the Functions host
        )
        _configured.set()
        log_ids(logging.getLogger("shared"))
    return True


@contextmanager
def span(name: str, parent: str | None = None, **ids: Any) -> Iterator[None]:
    """Work named `name` concerning `ids` (those not None), inside the trace `parent` (a W3C traceparent) when
    given, else inside the current one."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    named = {key: str(value) for key, value in ids.items() if value not in (None, "")}
    attributes = {f"{PREFIX}{key}": value for key, value in named.items()}
    parent_context = TraceContextTextMapPropagator().extract({"traceparent": parent}) if parent else None
    token = _ids.set({**_ids.get(), **named})
    try:
        tracer = trace.get_tracer("mlops")
        with tracer.start_as_current_span(name, context=parent_context, attributes=attributes) as current:
            try:
                yield
            except Exception as error:
                current.record_exception(error)
                current.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                raise
    finally:
        _ids.reset(token)


def traceparent() -> str | None:
    """The current span as a W3C traceparent, to store or pass on; None outside any recorded span."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


class IdsFilter(logging.Filter):
    """Adds the current span's ids to each record a handler emits (`extra` given by the caller wins): local logs
    print them, Application Insights keeps them as custom dimensions. A handler filter, so that it sees records
    after `extra` was applied, from every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            record.__dict__.setdefault(key, value)
        return True


def log_ids(logger: logging.Logger) -> None:
    """Every handler of `logger` adds the ids (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, IdsFilter) for f in handler.filters):
            handler.addFilter(IdsFilter())
