"""What an online deployment answered lately, from the endpoint's platform metrics in Azure Monitor.

Managed online endpoints publish per-minute metrics with a `deployment` dimension: `RequestsPerMinute` (also
by `statusCodeClass`) and `RequestLatency_P95` (milliseconds), each with the aggregation Azure Monitor's reference
lists for it, `Average` (tests/fixtures/azure_monitor/): a minute's average of requests per minute is that
minute's count, a minute's average p95 its p95. They are read with the metrics REST API of Azure Resource
Manager, with the app's credential. Metrics arrive a minute or two late and come in whole
minutes, so a window is widened to whole minutes and the newest requests may not be counted yet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

ARM = "https://management.azure.com"  # the public cloud's; another cloud's comes from MLOPS_AZURE_CLOUD
API_VERSION = "2023-10-01"
REQUESTS = "RequestsPerMinute"
LATENCY_P95 = "RequestLatency_P95"
AGGREGATION = "Average"  # the one the reference lists for both metrics
SUCCESS_CLASS = "2xx"
# A metrics query that hangs must not hold up the tick: the release step reads again (bounded) and, past the
# canary's deadline, rolls it back with the error.
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30


def empty_stats() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "error_rate": 0.0, "p95_ms": None}


class EndpointMetrics:
    def __init__(
        self,
        credential: TokenCredential,
        endpoint_id: str,
        clock: Callable[[], datetime] | None = None,
        arm: str = ARM,
        **client_options: Any,
    ) -> None:
        """`endpoint_id` is the endpoint's ARM id, `arm` the cloud's Resource Manager; `client_options` go to the
        azure-core pipeline."""
        self._arm = arm.rstrip("/")
        self._credential = credential
        self._endpoint_id = endpoint_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._options = client_options
        self._client: Any = None

    def stats(self, deployment: str, since_seconds: float) -> dict[str, Any]:
        """`{"requests", "errors", "error_rate", "p95_ms", "mirror"}` of `deployment` over the window.

        Azure's metrics do not tell mirrored copies apart, so "mirror" is always empty here.
        """
        if since_seconds < 0:
            raise ValueError(f"since_seconds must not be negative, got {since_seconds!r}")
        end = self._clock().astimezone(UTC).replace(microsecond=0)
        start = (end - timedelta(seconds=max(since_seconds, 60.0))).replace(second=0)
        timespan = f"{_iso(start)}/{_iso(end)}"
        by_class = self._series(
            REQUESTS, AGGREGATION, timespan, f"deployment eq '{deployment}' and statusCodeClass eq '*'"
        )
        counts: dict[str, float] = {}
        for series in by_class:
            counts[series["statusCodeClass"]] = counts.get(series["statusCodeClass"], 0.0) + series["value"]
        requests = round(sum(counts.values()))
        errors = round(sum(v for k, v in counts.items() if k != SUCCESS_CLASS))
        latency = self._series(LATENCY_P95, AGGREGATION, timespan, f"deployment eq '{deployment}'")
        # The slowest minute's p95: the window's p95 is at most this, and a gate should not be generous.
        p95 = max((s["peak"] for s in latency if s["peak"] is not None), default=None)
        return {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            "p95_ms": p95 if requests else None,
            "mirror": empty_stats(),
        }

    def _series(self, metric: str, aggregation: str, timespan: str, filter_: str) -> list[dict[str, Any]]:
        """Each time series of `metric`: its dimension values, its summed value and its largest value."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(
            "GET",
            f"{self._arm}{self._endpoint_id}/providers/Microsoft.Insights/metrics",
            params={
                "api-version": API_VERSION,
                "metricnames": metric,
                "timespan": timespan,
                "interval": "PT1M",
                "aggregation": aggregation,
                "$filter": filter_,
            },
        )
        response = self._pipeline().send_request(
            request, connection_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS
        )
        if response.status_code != 200:
            raise HttpResponseError(response=response, message=f"metrics {metric}: {response.text()[:300]}")
        key = aggregation.lower()
        found = []
        for value in response.json().get("value", []):
            for series in value.get("timeseries", []):
                points = [p[key] for p in series.get("data", []) if p.get(key) is not None]
                dimensions = {_name(m.get("name")): m.get("value") for m in series.get("metadatavalues", [])}
                found.append(
                    {
                        **dimensions,
                        "statusCodeClass": dimensions.get("statuscodeclass", ""),
                        "value": float(sum(points)),
                        "peak": max(points) if points else None,
                    }
                )
        return found

    def _pipeline(self) -> Any:
        if self._client is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import (
                BearerTokenCredentialPolicy,
                HeadersPolicy,
                RetryPolicy,
                UserAgentPolicy,
            )

            policies = [
                HeadersPolicy(),
                UserAgentPolicy(sdk_moniker="mlops-functions"),
                RetryPolicy(retry_total=2),
                BearerTokenCredentialPolicy(self._credential, f"{self._arm}/.default"),
            ]
            self._client = PipelineClient(base_url=self._arm, policies=policies, **self._options)
        return self._client


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(name: Any) -> str:
    """A dimension's name, lower-cased (the API answers `{"value": "statusCodeClass"}` in varying case)."""
    text = name.get("value", "") if isinstance(name, dict) else str(name or "")
    return str(text).lower()
