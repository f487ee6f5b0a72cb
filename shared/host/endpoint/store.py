"""The router's state file, `<home>/endpoints/<name>.json`: deployments, traffic and mirror setting.

Only the router writes it, and only to start again where it left off; nobody else reads it. Each write
replaces the file whole (temporary file, fsync, rename), so a crash leaves the old state or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """`{"deployments": {name: {"model", "model_dir", "port", "pid"?, "create_time"?}}, "traffic": {...},
        "mirror": {...}}`; empty when there is no file yet."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        except json.JSONDecodeError as exc:
            # Written by atomic replace only: a broken file is not ours to guess at.
            raise RuntimeError(f"the endpoint state file {self.path} is not valid JSON: {exc}") from exc
        return {
            "deployments": data.get("deployments", {}),
            "traffic": data.get("traffic", {}),
            "mirror": data.get("mirror", {}),
        }

    def save(
        self, deployments: dict[str, dict[str, Any]], traffic: dict[str, int], mirror: dict[str, int]
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"deployments": deployments, "traffic": traffic, "mirror": mirror}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
