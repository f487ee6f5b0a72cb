"""What the drift check compares: the champion's training data against what production served.

The current data is the traffic the production deployment answered, as captured in the data collector's layout
(inputs joined to outputs, so the real predictions are checked too), together with any CSV or Parquet files a
user drops into the inference container (for teams that log elsewhere). The window is the parts of the last T
hours (hour folders, files by time written) or the newest N rows across them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.domain import capture, drift
from shared.ports import BlobStore, DriftJob
from shared.state import traffic

if TYPE_CHECKING:
    import pandas as pd

TABLES = (".csv", ".parquet")
REFERENCE_PREDICTIONS = "drift/reference-predictions"
SCORING_BATCH_ROWS = 1000


@dataclass(frozen=True)
class Context:
    """What the check reads with: the blob store, the app's settings, the time it runs at, and the champion's
    own predictions for a frame of inputs (None when the job was given no model to load)."""

    blobs: BlobStore
    settings: Settings
    now: datetime
    score: Callable[[pd.DataFrame], list[Any]] | None = None


@dataclass(frozen=True)
class Part:
    """A piece of the current data: one hour of captured traffic or one dropped file."""

    name: str
    time: datetime  # the hour folder's start, or when the file was written
    count: Callable[[], int]
    source: Callable[[int], drift.ChunkSource]  # leading rows to leave out -> the rows


def table(context: Context, container: str, name: str, skip_rows: int = 0) -> drift.TablePart:
    """A table read from blob storage when a pass reaches it (one blob in memory at a time)."""

    def load() -> bytes | None:
        blob = context.blobs.read(container, name)
        return None if blob is None else blob.data

    return drift.TablePart(name, load, skip_rows)


def current_window(context: Context, job: DriftJob) -> tuple[dict[str, Any], drift.ChunkSource | None]:
    """The current data of the window, oldest first, and what the window holds; None when it holds nothing."""
    settings = context.settings
    parts = sorted(_captured(context, job) + _dropped(context), key=lambda part: (part.time, part.name))
    if settings.drift.window_hours > 0:
        since = context.now - timedelta(hours=settings.drift.window_hours)
        chosen = [(part, 0) for part in parts if part.time + _span(part) > since]
        window: dict[str, Any] = {"hours": settings.drift.window_hours, "since": since.isoformat()}
    else:
        chosen, remaining = [], settings.drift.window_rows
        for part in reversed(parts):
            if remaining <= 0:
                break
            rows = part.count()
            skip = max(0, rows - remaining)
            chosen.append((part, skip))
            remaining -= rows - skip
        chosen.reverse()
        window = {"rows": settings.drift.window_rows}
    captured = sum(1 for part, _ in chosen if part.name.startswith(capture.ROOT))
    window |= {
        "deployment": job.deployment,
        "captured_hours": captured,
        "files": len(chosen) - captured,
    }
    if not chosen:
        return window, None
    return window, drift.ChainSource(tuple(part.source(skip) for part, skip in chosen))


def _span(part: Part) -> timedelta:
    return timedelta(hours=1) if part.name.startswith(capture.ROOT) else timedelta(0)


def _captured(context: Context, job: DriftJob) -> list[Part]:
    """One part per hour folder of what the production deployment answered (never mirrored copies)."""
    settings, blobs = context.settings, context.blobs
    container, endpoint = settings.containers.inference, settings.endpoint_name
    column = settings.drift.prediction_column or capture.PREDICTION
    counts = traffic.hour_rows(blobs, container, endpoint, job.deployment)

    def part(hour: datetime) -> Part:
        def rows() -> Iterator[dict[str, Any]]:
            served = traffic.served_rows(
                blobs, container, endpoint, [job.deployment], hour, hour + timedelta(hours=1)
            )
            for row in served:
                answer = row.outputs.get(capture.PREDICTION) if len(row.outputs) == 1 else None
                yield {**row.inputs, column: answer} if answer is not None else dict(row.inputs)

        def source(skip: int) -> drift.ChunkSource:
            return drift.RecordSource(rows, settings.drift.chunk_rows, skip)

        return Part(
            f"{capture.folder(endpoint, job.deployment, capture.INPUTS)}{hour:%Y/%m/%d/%H}",
            hour,
            lambda: counts[hour],
            source,
        )

    return [part(hour) for hour in sorted(counts)]


def _dropped(context: Context) -> list[Part]:
    """CSV and Parquet files a user put into the inference container, outside the collector's folders."""
    container = context.settings.containers.inference
    chunk_rows = context.settings.drift.chunk_rows
    found = [
        info
        for info in context.blobs.list(container)
        if info.name.endswith(TABLES) and not info.name.startswith(f"{capture.ROOT}/")
    ]

    def part(name: str, written: datetime) -> Part:
        def count() -> int:
            blob = context.blobs.read(container, name)
            return 0 if blob is None else drift.count_rows(name, blob.data)

        def source(skip: int) -> drift.ChunkSource:
            return drift.TableSource((table(context, container, name, skip),), chunk_rows)

        return Part(name, written.astimezone(UTC), count, source)

    return [part(info.name, info.last_modified) for info in found]


# --- prediction drift ---------------------------------------------------------------------------------------------


def prediction_drift(
    context: Context, job: DriftJob, result: drift.DriftResult, current: drift.ChunkSource
) -> dict[str, Any] | None:
    """Drift of the served predictions, against the champion's own predictions on the reference sample (the
    distribution its predictions had on the data it was trained on). None when no predictions were logged."""
    column = context.settings.drift.prediction_column
    if not column or column not in result.current_columns:
        return None
    reference = _reference_predictions(context, job, result.reference_sample)
    if isinstance(reference, str):
        return {"column": column, "checked": False, "reason": reference}
    outcome = drift.check(
        drift.FrameSource(reference, context.settings.drift.chunk_rows),
        current,
        columns=[column],
        drift_share=context.settings.drift.share,
        sample_rows=0,
    )
    verdict = outcome.columns.get(column)
    if verdict is None:
        reason = outcome.not_checked.get(column) or f"type changed: {outcome.schema.changed.get(column)}"
        return {"column": column, "checked": False, "reason": reason}
    return {
        "column": column,
        "checked": True,
        "reference": f"{job.model.id} on {len(reference)} sampled training rows",
        **verdict.as_dict(),
    }


def _reference_predictions(
    context: Context, job: DriftJob, sample: pd.DataFrame | None
) -> pd.DataFrame | str:
    """The champion's predictions on the reference sample: made once per model version by the model the
    deployment serves (loaded in the job), then kept next to the reports. Returns the reason instead when they
    cannot be had."""
    import pandas as pd

    model, blobs = job.model, context.blobs
    column = context.settings.drift.prediction_column
    container = context.settings.containers.reports
    name = f"{REFERENCE_PREDICTIONS}/{model.name}-v{model.version}.csv"
    cached = blobs.read(container, name)
    if cached is not None:
        return pd.read_csv(io.BytesIO(cached.data))
    if sample is None or sample.empty:
        return "no reference sample to score"
    if context.score is None:
        return "the job was given no champion model to score with"
    predictions: list[Any] = []
    try:
        for start in range(0, len(sample), SCORING_BATCH_ROWS):
            predictions.extend(context.score(sample.iloc[start : start + SCORING_BATCH_ROWS]))
    except Exception as error:  # the team's model: any failure to predict skips this part, recorded
        return f"scoring the reference sample failed: {type(error).__name__}: {error}"
    if len(predictions) != len(sample) or any(isinstance(p, list | dict) for p in predictions):
        return "the deployment's predictions are not one value per row"
    data = pd.DataFrame({column: predictions}).to_csv(index=False).encode()
    blobs.write(container, name, data, content_type="text/csv")
    return pd.read_csv(io.BytesIO(data))  # as a later check will read it back: the same types every time
