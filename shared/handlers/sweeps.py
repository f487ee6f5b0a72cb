"""A tick's pass over a container, one page per tick, so that a tick's cost does not grow with the history.

A pass lists the container a page at a time, continuing where the last tick stopped, and hands on only the blobs
changed since the pass before it began: those older were seen by an earlier pass (as a record, or handled then).
A blob whose event was lost is therefore handled within two passes of landing, however large the container is.
The cursor moves on only when the page was handled without failure: a page that failed is listed again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from shared.deps import Deps
from shared.ports import BlobInfo
from shared.state import keys
from shared.state.records import SweepCursor

# Last-Modified is the storage service's clock, `since` the worker's: a blob this close to the edge is looked at.
CLOCK_SKEW = timedelta(minutes=5)


def sweep_changed(deps: Deps, name: str, container: str, handle: Callable[[list[BlobInfo]], int]) -> int:
    """List the next page of `container` for the pass `name` and `handle` the blobs changed since the pass
    before began; the cursor moves on once `handle` returned (if it raises, the page comes again)."""
    key = keys.sweep(name)
    stored = deps.state.get(key)
    cursor = stored.record if stored is not None else SweepCursor()
    started = cursor.started if cursor.marker else deps.clock().isoformat()
    page, following = deps.blobs.list_page(
        container, marker=cursor.marker, limit=deps.settings.ticks.sweep_page
    )
    since = datetime.fromisoformat(cursor.since) - CLOCK_SKEW if cursor.since else None
    handled = handle([info for info in page if since is None or info.last_modified >= since])
    if following:
        deps.state.put(key, SweepCursor(following, started, cursor.since))
    else:  # the pass is done: the next one looks at what changed since this one began
        deps.state.put(key, SweepCursor(None, None, started))
    return handled
