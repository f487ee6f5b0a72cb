"""Every metrics query the app sends asks for what Azure Monitor's reference lists for an online endpoint: the
metric, its aggregation, its dimensions and its time grain (tests/fixtures/azure_monitor/). The stub answers only
such queries, but this checks the queries against the table itself, so a stub kinder than Azure cannot hide one."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from shared.adapters.azure.metrics import EndpointMetrics
from tests.contract.azure_stub import FakeCredential, Recorded, Reply, StubTransport

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ENDPOINT = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w/onlineEndpoints/e"


def _reference() -> dict[str, dict[str, set[str]]]:
    with (FIXTURES / "azure_monitor" / "online_endpoint_metrics.csv").open(encoding="utf-8") as rows:
        return {
            row["metric"]: {
                "aggregations": set(filter(None, row["aggregations"].split(";"))),
                "dimensions": set(filter(None, row["dimensions"].split(";"))),
                "grains": set(filter(None, row["time_grains"].split(";"))),
            }
            for row in csv.DictReader(rows)
        }


def _sent_queries() -> list[Recorded]:
    transport = StubTransport(
        {"management.azure.com": lambda request: Reply(200, json.dumps({"value": []}).encode())}
    )
    EndpointMetrics(FakeCredential(), ENDPOINT, transport=transport).stats("blue", 600)
    return transport.requests


def test_every_metrics_query_uses_a_combination_the_reference_lists() -> None:
    reference = _reference()
    queries = _sent_queries()
    assert {q.query["metricnames"] for q in queries} == {"RequestsPerMinute", "RequestLatency_P95"}
    for query in queries:
        metric = reference[query.query["metricnames"]]
        assert query.query["aggregation"] in metric["aggregations"], query.query
        filtered = set(re.findall(r"(\w+) eq '", query.query["$filter"]))
        assert filtered and filtered <= metric["dimensions"], query.query
        assert query.query["interval"] in metric["grains"]
        assert query.path == f"{ENDPOINT}/providers/Microsoft.Insights/metrics"


def test_the_documented_answer_layout_is_read() -> None:
    """Microsoft's example answer of the metrics API (value, timeseries, metadatavalues, data points keyed by the
    aggregation), read by the same code as the endpoint's."""
    example = (FIXTURES / "azure_ml" / "monitor_metrics_get_spec_example.json").read_bytes()
    points = [
        point["average"]
        for value in json.loads(example)["value"]
        for series in value["timeseries"]
        for point in series["data"]
        if "average" in point
    ]
    transport = StubTransport({"management.azure.com": lambda request: Reply(200, example)})

    stats = EndpointMetrics(FakeCredential(), ENDPOINT, transport=transport).stats("blue", 600)

    assert points and stats["requests"] == round(sum(points))
