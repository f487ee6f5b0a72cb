"""Structured logs: the `extra` fields handlers log with (event id, run id, model version...) stay visible.

Locally this formatter appends them as key=value pairs, with the ids of the span the record was written in
(`shared.telemetry`); in Azure the Azure Monitor OpenTelemetry distribution sends the same as custom dimensions.
"""

from __future__ import annotations

import logging
from pathlib import Path

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
QUIET_LIBRARIES = ("azure", "urllib3", "alembic", "mlflow", "httpx", "litestar")


class StructuredFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return text


def configure(console_level: int = logging.INFO, file: Path | None = None) -> None:
    """Console at `console_level`; everything from INFO also to `file` when given."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler()
    console.setLevel(console_level)
    console.setFormatter(StructuredFormatter())
    root.addHandler(console)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(file)
        to_file.setFormatter(StructuredFormatter())
        root.addHandler(to_file)
    from shared import telemetry

    telemetry.log_ids(root)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
