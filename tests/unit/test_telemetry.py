"""Traces and logs carry the ids people look things up by, and one trace follows a run from its start through
its job, its evaluation and registration, and its release's every step, whichever worker or tick moves them.
Spans are caught with OpenTelemetry's in-memory exporter, as Application Insights would receive them."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry
from shared.handlers.release import advance
from shared.host.logs import StructuredFormatter
from tests.builders import deploy, train
from tests.fakes import make_deps

_EXPORTER = InMemorySpanExporter()


@pytest.fixture()
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # once per process: the global provider is set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "mlops_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider.mlops_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    return _EXPORTER


def test_a_run_its_job_its_registration_and_its_release_are_one_trace(spans: InMemorySpanExporter) -> None:
    deps = make_deps()
    model = train(deps)
    rid = deploy(deps, model)
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(rid, deps, "reconcile") == "production"

    by_name = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    started = by_name["training.start"][0]
    run_id = started.attributes["mlops.run_id"]
    trace_id = started.context.trace_id
    for name in ("training.completed", "release.start", "release.advance"):
        assert {s.context.trace_id for s in by_name[name]} == {trace_id}, name
    assert by_name["training.completed"][0].attributes["mlops.run_id"] == run_id
    release = by_name["release.start"][0].attributes
    assert (release["mlops.release_id"], release["mlops.model_version"]) == (rid, model.version)
    assert by_name["release.advance"][-1].attributes["mlops.release_id"] == rid

    job = deps.jobs.submitted[run_id]  # the job is handed the trace too
    assert job.trace is not None and f"{trace_id:032x}" in job.trace
    landed = by_name["data.landed"][0].attributes
    assert landed["mlops.blob"] == "batch-1.csv" and landed["mlops.event_id"] == "evt-batch-1.csv"


def test_a_failing_handler_marks_its_span_with_the_error(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), telemetry.span("work", run_id="train-1"):
        raise RuntimeError("the backend refused")
    [span] = spans.get_finished_spans()
    assert (
        span.status.status_code is trace.StatusCode.ERROR and "the backend refused" in span.status.description
    )
    assert span.events[0].name == "exception"


def test_logs_written_inside_a_span_carry_its_ids_locally(spans: InMemorySpanExporter) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(StructuredFormatter().format(record))

    logger = logging.getLogger("tests.telemetry")
    handler = Keep()
    handler.addFilter(telemetry.IdsFilter())
    logger.addHandler(handler)
    try:
        with telemetry.span("release.advance", release_id="mlops-model-v3", model_version="3"):
            logger.warning("canary held", extra={"model_version": "3b"})  # what the handler says wins
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    assert "release_id=mlops-model-v3" in records[0] and "model_version=3b" in records[0]
    assert "release_id" not in records[1]
