"""The demo: the whole loop, on scikit-learn's bundled diabetes data, through the real function app.

Low-BMI patients' labelled rows land -> version 1 trains, registers, deploys, serves. Clients then send
high-BMI patients to the endpoint -> it captures what it served -> the drift check finds the shift in that
traffic -> retraining is requested. Late labels for the served rows arrive -> the quality check joins them to
the predictions and compares the live metric with the offline one. New labelled high-BMI rows land -> a
challenger trains on all data, is evaluated against the champion on the same holdout, and is promoted or
rejected with its reasons.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from shared.domain import capture
from shared.host.services import LocalServices
from shared.state import keys, releases
from shared.state.records import RunStatus
from shared.tools.inbox import Inbox

DEMO_ENV = {
    "MLOPS_HOME": ".mlops/demo",
    # Long enough for the story's causes to meet in one request however busy the machine: drift, the quality
    # check's verdict and chapter 5's files are trained on together, not as three runs.
    "MLOPS_QUIET_PERIOD_SECONDS": "10",
    "MLOPS_RECONCILE_SCHEDULE": "*/2 * * * * *",
    "MLOPS_DRIFT_SCHEDULE": "0 0 2 * * *",
    "MLOPS_LOCAL_RETRY_SECONDS": "1,2,5",
    "MLOPS_MODEL_NAME": "diabetes-progression",
    "MLOPS_CANARY_PERCENT": "20",
    "MLOPS_CANARY_SECONDS": "4",
    "MLOPS_CANARY_MIN_REQUESTS": "5",  # a canary is promoted on live requests: the story's client sends them
    # 442 rows in all, so the holdout is small: the story judges significance at 90 % rather than 95 %.
    "MLOPS_CONFIDENCE_LEVEL": "0.9",
    "MLOPS_SHADOW_SECONDS": "4",  # before the canary, mirrored copies of the same client's requests
    "MLOPS_SHADOW_PERCENT": "50",
    "MLOPS_SHADOW_MIN_REQUESTS": "5",
    "MLOPS_QUALITY_MIN_ROWS": "50",
    "MLOPS_NOTIFY_QUARANTINE_QUIET_SECONDS": "2",  # the broken file's summary goes out within the story
}
DEMO_ROWS_PER_REQUEST = 10


def run_demo(env: dict[str, str] | None = None, out: Callable[[str], None] = print) -> int:
    started = time.perf_counter()
    env = {**DEMO_ENV, **(env or {})}
    home = Path(env["MLOPS_HOME"])
    shutil.rmtree(home, ignore_errors=True)  # every demo tells the story from the beginning
    # The team's webhook: a receiver on loopback that checks each notification's signature.
    with Inbox(env.get("MLOPS_NOTIFY_SECRET") or secrets.token_hex(16)) as inbox:
        urls = ",".join(filter(None, (env.get("MLOPS_NOTIFY_URLS", ""), inbox.url)))
        env = {**env, "MLOPS_NOTIFY_URLS": urls, "MLOPS_NOTIFY_SECRET": inbox.secret}
        with LocalServices(env, in_memory_storage=True) as services:
            out(
                f"local services up in {time.perf_counter() - started:.1f} s: host {services.server.url}, "
                f"endpoint {services.router.url}"
            )
            story = Story(services, out)
            story.run()
            out(story.report(started))
            out(_notifications(story, inbox))
            ok = story.ok
    out(f"demo finished in {time.perf_counter() - started:.1f} s; every process it started is stopped")
    return 0 if ok else 1


def _number(value: Any, percent: bool = False) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.1%}" if percent else f"{value:.2f}"


def _notifications(story: Story, inbox: Inbox) -> str:
    """What the team's webhook received, by kind, once the last ones are delivered."""
    story.fire("reconcile")  # a quarantine summary goes out on a tick once its burst is quiet
    story.services.wait_idle()
    kinds = inbox.kinds()
    lines = ["", f"Notifications (signed JSON webhooks to {inbox.url})", "-" * 100]
    lines += [f"  {kind:<22} {count}" for kind, count in sorted(kinds.items())]
    if not kinds:
        lines.append("  none received")
    if inbox.refused:
        lines.append(f"  {inbox.refused} refused: bad signature")
    return "\n".join(lines)


class Story:
    def __init__(self, services: LocalServices, out: Callable[[str], None]) -> None:
        self.services = services
        self.deps = services.deps
        self.out = out
        self.ok = True
        self.low, self.high = _diabetes_halves()

    def run(self) -> None:
        settings = self.deps.settings
        landing = settings.containers.landing
        self.chapter("1. Labelled low-BMI rows land as three files (and one broken file)")
        for index, part in enumerate(_split(self.low, 3), start=1):
            self.upload(landing, f"clinic-a/batch-{index}.csv", part)
        self.deps.blobs.write(
            landing, "clinic-a/export-broken.csv", b"patient;notes\n1;\xff\xfe unreadable\n"
        )
        self.out("   uploaded landing/clinic-a/export-broken.csv (not UTF-8, no target column)")
        first = self.wait_for(lambda: self._production_version(), "version 1 in production", 120)
        for entry in self._entries("file.quarantined"):
            self.out(f"   quarantined {entry.subject}: {'; '.join(entry.detail['reasons'])}")
        self.out(f"   in production: {settings.model_name}:{first}")

        self.chapter("2. Production traffic from high-BMI patients reaches the endpoint")
        served = self.serve(self.high, rows_per_request=DEMO_ROWS_PER_REQUEST)
        self.out(
            f"   POST {self.services.router.url}/score: {len(served)} rows in "
            f"{-(-len(served) // DEMO_ROWS_PER_REQUEST)} requests, each answered with an x-request-id"
        )
        captured = self._captured_blobs()
        self.out(
            f"   the endpoint captured them: {captured} blobs under "
            f"{settings.containers.inference}/{capture.ROOT}/ (model_inputs, model_outputs, hourly folders)"
        )

        self.chapter("3. The drift check reads the captured traffic (the drift_check timer, fired now)")
        self.fire("drift_check")
        self.out("   the timer submitted the check as a job in the training environment; waiting for it")
        self.wait_for(lambda: self._entries("drift.checked"), "the drift check's job", 180)
        for entry in self._entries("drift.checked"):
            self.out(
                f"   drift share {entry.detail['drift_share']:.0%} (threshold {settings.drift.share:.0%}), "
                f"drifted: {', '.join(entry.detail['drifted_columns'])}"
            )
        self.wait_for(
            lambda: self._audit_has("training.requested", cause="drift"), "retraining requested", 60
        )
        self.out("   MLOps.DriftDetected published; on_drift_detected asked for retraining (cause: drift)")

        self.chapter("4. Late labels arrive for what was served; the quality check joins them (fired now)")
        labels = "".join(f"{row_id},{truth}\n" for row_id, truth in served.items())
        name = "ground-truth/high-bmi.csv"
        self.deps.blobs.write(
            settings.containers.labels,
            name,
            f"correlation_id,{settings.training.target}\n{labels}".encode(),
            content_type="text/csv",
        )
        self.out(f"   uploaded {settings.containers.labels}/{name} ({len(served)} labels by correlation id)")
        accepted = self.wait_for(lambda: self._entries("labels.accepted"), "the labels to be filed", 60)
        self.out(f"   on_labels_landed matched {accepted[0].detail['matched']} labels to served rows")
        self.fire("quality_check")
        for entry in self._entries("quality.checked"):
            self.out(f"   {entry.subject}: {_quality(entry.detail)}")
        self.fire("reconcile")
        self.services.wait_idle()

        self.chapter("5. New labelled high-BMI rows land; the challenger trains on all data")
        for index, part in enumerate(_split(self.high, 2), start=1):
            self.upload(landing, f"clinic-b/batch-{index}.csv", part)
        self.wait_for(lambda: self._second_run_decided(), "the challenger's verdict", 180)
        self.wait_for(self._settled_while_serving, "the release to settle", 120)
        for entry in self._entries("model.registered", "challenger.rejected")[1:]:
            if entry.action == "model.registered":
                self.out(
                    f"   challenger registered as {entry.subject}, released: {self._stages(entry.subject)}"
                )
            else:
                self.out(f"   challenger rejected: {'; '.join(entry.detail['reasons'])}")
        self.out(f"   in production: {settings.model_name}:{self._production_version()}")

    def report(self, started: float) -> str:
        lines = ["", "Timeline (event -> function -> decision)", "-" * 100]
        lines += self._timeline(started)
        production = releases.production(self.deps.state, self.deps.settings.model_name)
        if production is None:
            self.ok = False
            lines.append("no model reached production")
            return "\n".join(lines)
        name, version = production.model, production.version
        lineage = requests.get(
            f"{self.services.server.url}/api/models/{name}/{version}/lineage",
            headers={"x-functions-key": self.deps.settings.local.function_key},
            timeout=30,
        ).json()
        lines += ["", f"Lineage of the production model {name}:{version}", "-" * 100]
        lines += [
            f"  dataset version  {lineage['dataset_version']} ({len(lineage['files'])} files, "
            f"{sum(f['rows'] for f in lineage['files'])} rows)",
            *[f"    {f['name']:<28} sha256 {f['sha256'][:16]}…  {f['rows']} rows" for f in lineage["files"]],
            f"  run              {lineage['run_id']}",
            f"  causes           {', '.join(lineage['causes'])}  (events: {len(lineage['trigger_events'])})",
            f"  metrics          {_fmt(lineage['metrics'])}",
            f"  champion         {lineage['champion'] or '(none: first model)'} {_fmt(lineage['champion_metrics'])}",
            *[
                f"  gate             {'PASS' if g['passed'] else 'FAIL'}  {g['reason']}"
                for g in lineage["gates"]
            ],
            f"  release          {' -> '.join(h['status'] for h in lineage['release']['history'])}",
        ]
        row = self.high.drop(columns=[self.deps.settings.training.target]).head(1)
        payload = {
            "input_data": {"columns": list(row.columns), "index": [0], "data": row.to_numpy().tolist()}
        }
        response = requests.post(f"{self.services.router.url}/score", json=payload, timeout=30)
        lines += [
            "",
            "One prediction from the local endpoint",
            "-" * 100,
            f"  POST {self.services.router.url}/score  {json.dumps(payload)[:90]}…",
            f"  -> {response.status_code} {response.text.strip()} "
            f"(deployment {response.headers.get('azureml-model-deployment')}, "
            f"actual target {self.high[self.deps.settings.training.target].iloc[0]:.0f})",
        ]
        self.ok = self.ok and response.ok and not self.deps.audit.verify()
        lines.append(
            f"\naudit log: {len(self.deps.audit.entries())} entries, hash chain "
            f"{'verified' if not self.deps.audit.verify() else 'BROKEN'}"
        )
        return "\n".join(lines)

    # --- helpers ------------------------------------------------------------------------------------------

    def chapter(self, title: str) -> None:
        self.out(f"\n{title}")

    def upload(self, container: str, name: str, frame: Any) -> None:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        self.deps.blobs.write(container, name, buffer.getvalue().encode(), content_type="text/csv")
        self.out(f"   uploaded {container}/{name} ({len(frame)} rows)")

    def serve(self, frame: Any, rows_per_request: int) -> dict[str, float]:
        """POST the rows' features to the endpoint as a client would; the true target of each served row, by
        the row id the endpoint answered with (what a labelling process sends back later)."""
        target = self.deps.settings.training.target
        features = frame.drop(columns=[target])
        truths: dict[str, float] = {}
        for start in range(0, len(frame), rows_per_request):
            part = features.iloc[start : start + rows_per_request]
            payload = {
                "input_data": {
                    "columns": list(part.columns),
                    "index": list(range(len(part))),
                    "data": part.to_numpy().tolist(),
                }
            }
            response = requests.post(f"{self.services.router.url}/score", json=payload, timeout=30)
            response.raise_for_status()
            correlation_id = response.headers["x-request-id"]
            for index, truth in enumerate(frame[target].iloc[start : start + rows_per_request]):
                truths[capture.row_id(correlation_id, index, len(part))] = float(truth)
        if not self.services.router.recorder.flush():
            raise RuntimeError("the endpoint's capture did not reach storage")
        return truths

    def fire(self, timer: str) -> None:
        response = requests.post(
            f"{self.services.server.url}/admin/functions/{timer}?wait=true", json={"input": ""}, timeout=300
        )
        response.raise_for_status()

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll until `condition` holds, showing on stderr what the story waits for and for how long."""
        from shared.tools.progress import wait_until

        try:
            return wait_until(condition, what, timeout)
        except TimeoutError:
            self.ok = False
            raise

    def _captured_blobs(self) -> int:
        container = self.deps.settings.containers.inference
        return sum(1 for _ in self.deps.blobs.list(container, prefix=f"{capture.ROOT}/"))

    def _production_version(self) -> str | None:
        production = releases.production(self.deps.state, self.deps.settings.model_name)
        return production.version if production else None

    def _entries(self, *actions: str) -> list[Any]:
        return [e for e in self.deps.audit.entries() if e.action in actions]

    def _audit_has(self, action: str, **detail: Any) -> bool:
        return any(
            e.action == action and all(e.detail.get(k) == v for k, v in detail.items())
            for e in self.deps.audit.entries()
        )

    def _second_run_decided(self) -> bool:
        runs = [stored.record for stored in self.deps.state.list(keys.RUNS)]
        return len(runs) >= 2 and not any(run.status.in_flight for run in runs)

    def _settled_while_serving(self) -> bool:
        """Clients keep scoring while a release is on its way: its canary is promoted on their requests."""
        if not self._release_active() and self._registered_released():
            return True
        self.serve(self.high.head(DEMO_ROWS_PER_REQUEST), rows_per_request=1)
        return False

    def _registered_released(self) -> bool:
        """Every registered version's release has finished (a tick starts the release of a version whose
        ModelRegistered event came before its run named it). Read from the runs, which name the version as
        they are registered: the audit entry is appended a moment later."""
        from shared.handlers.release import release_id

        for stored in self.deps.state.list(keys.RUNS):
            run = stored.record
            if run.status is not RunStatus.REGISTERED or not run.model_version:
                continue
            release = self.deps.state.get(
                keys.release(release_id(self.deps.settings.model_name, run.model_version))
            )
            if release is None or release.record.status.active:
                return False
        return True

    def _stages(self, model_id: str) -> str:
        """The release's way to production, with the shadow's figures."""
        from shared.handlers.release import release_id

        name, _, version = model_id.rpartition(":")
        stored = self.deps.state.get(keys.release(release_id(name, version)))
        if stored is None:
            return "no release"
        steps = [str(step.status) for step in stored.record.history]
        shadow = next((s.detail["shadow"] for s in stored.record.history if "shadow" in s.detail), None)
        text = " -> ".join(steps)
        if isinstance(shadow, dict):
            mirror = shadow.get("mirror") or {}
            text += (
                f"\n   shadow: {mirror.get('requests', 0)} mirrored requests, p95 {mirror.get('p95_ms') or 0:.0f} "
                f"ms, {mirror.get('errors', 0)} errors; {shadow.get('pairs', 0)} rows paired with production's "
                f"answers, mean absolute difference {_number(shadow.get('mean_abs_difference'))} "
                f"({_number(shadow.get('relative_difference'), percent=True)} of production's mean answer)"
            )
        return text

    def _release_active(self) -> bool:
        from shared.handlers.release import active_releases

        return bool(active_releases(self.deps))

    def _timeline(self, started: float) -> list[str]:
        entries = self.deps.audit.entries()
        invocations = [i for i in self.services.host.invocations if i.outcome != "running"]
        zero = min((datetime.fromisoformat(i.started) for i in invocations), default=None)
        lines = []
        for invocation in sorted(invocations, key=lambda i: i.started):
            start = datetime.fromisoformat(invocation.started)
            end = start.timestamp() + invocation.duration_ms / 1000 + 0.05
            if invocation.trigger == "eventGridTrigger":  # decisions name the event that caused them
                decisions = [e for e in entries if e.detail.get("event_id") == invocation.subject]
            else:
                decisions = [
                    e
                    for e in entries
                    if e.actor == invocation.function
                    and start.timestamp() - 0.05 <= datetime.fromisoformat(e.time).timestamp() <= end
                ]
            if not decisions and invocation.outcome == "succeeded":
                continue  # ticks that found nothing to do
            offset = (start - zero).total_seconds() if zero else 0.0
            trigger = (
                invocation.event_type.rsplit(".", 1)[-1] if invocation.event_type else invocation.trigger
            )
            head = f"  +{offset:6.1f}s  {trigger:<18} -> {invocation.function:<20}"
            if invocation.outcome == "failed":
                lines.append(f"{head} FAILED {invocation.error[:60]} ({invocation.duration_ms:.0f} ms)")
            for decision in decisions:
                lines.append(
                    f"{head} {decision.action:<20} {decision.subject[:34]:<34} "
                    f"({invocation.duration_ms:.0f} ms)"
                )
                head = " " * len(head)
        return lines


def _diabetes_halves():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    median = frame["bmi"].median()
    return frame[frame["bmi"] < median].reset_index(drop=True), frame[frame["bmi"] >= median].reset_index(
        drop=True
    )


def _split(frame: Any, parts: int) -> list[Any]:
    size = -(-len(frame) // parts)
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def _quality(detail: dict[str, Any]) -> str:
    """One quality verdict in words: the live metric with its interval against the offline one."""
    live, joined = detail.get("live"), detail["joined"]
    if live:
        interval = "" if live["low"] is None else f" [{live['low']:.1f}, {live['high']:.1f}]"
        measured = f"live {live['metric']} {live['value']:.1f}{interval} on {joined} joined rows"
    else:
        measured = f"{joined} joined rows, not judged"
    offline = f", offline holdout {detail['offline']:.1f}" if detail.get("offline") is not None else ""
    reasons = f" ({'; '.join(detail['reasons'])})" if detail.get("reasons") else ""
    return f"{measured}{offline}: {detail['verdict']}{reasons}"


def _fmt(metrics: dict[str, float] | None) -> str:
    return "" if not metrics else ", ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()))


if __name__ == "__main__":
    sys.exit(run_demo())
