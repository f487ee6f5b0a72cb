"""Where the local backend keeps its files, all under MLOPS_HOME."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def mlflow_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


def artifact_root(home: Path) -> Path:
    return home / "mlartifacts"


def run_dir(home: Path, run_id: str) -> Path:
    return home / "runs" / run_id


def topic_endpoint(host_url: str, topic: str) -> str:
    """The local host's ingress for a topic: `storage`, `workspace` (what Azure services publish) or `mlops`."""
    return f"{host_url}/runtime/topics/{topic}/api/events"


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))
