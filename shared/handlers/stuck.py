"""Records set aside as stuck (`shared.state.lease`), and handing one back once its cause is fixed."""

from __future__ import annotations

from typing import Any

from shared.deps import Deps
from shared.state import keys
from shared.state.keys import Key, Prefix
from shared.state.lease import release_stuck
from shared.state.records import Release, ReleaseStatus, ReleaseStep
from shared.state.store import to_json

LEASED: tuple[Prefix[Any], ...] = (keys.FILES, keys.LABEL_FILES, keys.RUNS, keys.RELEASES)


def stuck(deps: Deps) -> list[dict[str, Any]]:
    """What is set aside (its key and status, since when, the last error), and releases whose rollback did not
    finish in time (status `stuck`: a person has to look at the endpoint)."""
    found = []
    for prefix in LEASED:
        for stored in deps.state.list(prefix):
            status = str(getattr(stored.record, "status", ""))
            if stored.stuck is not None:
                found.append({"key": stored.key.path, "status": status, **to_json(stored.stuck)})
            elif isinstance(stored.record, Release) and stored.record.status is ReleaseStatus.STUCK:
                step = stored.record.history[-1]
                found.append(
                    {"key": stored.key.path, "status": status, "at": step.at, "reason": _reason(step)}
                )
    return found


def _reason(step: ReleaseStep) -> str:
    return str(step.detail.get("reason", "its rollback did not finish in time"))


def retry(path: Any, requested_by: str, deps: Deps) -> tuple[int, str]:
    """Hand the stuck record at `path` back to the handlers: the next delivery or tick takes it again."""
    key = _key(path)
    if key is None:
        kinds = ", ".join(prefix.path for prefix in LEASED)
        return 400, f"`key` must name a record under {kinds} (as `mlops status` lists it)"
    if not deps.state.exists(key):
        return 404, f"{key.path} does not exist"
    if not release_stuck(deps, key, requested_by):
        return 409, f"{key.path} is not stuck"
    return 200, f"{key.path} handed back to the handlers by {requested_by}"


def _key(path: Any) -> Key[Any] | None:
    if not isinstance(path, str) or len(path) > 512 or ".." in path:
        return None
    for prefix in LEASED:
        name = path.removeprefix(prefix.path)
        if name != path and name and all(c.isalnum() or c in "-_.:" for c in name):
            return prefix.key(name)
    return None
