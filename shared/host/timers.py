"""Timer triggers on their NCRONTAB schedules; one invocation of a timer at a time, as the host's singleton.

Schedules are evaluated in UTC, as Azure Functions evaluates them, unless the app setting `WEBSITE_TIME_ZONE`
names a time zone (an IANA name such as `Europe/Amsterdam`, as on Linux plans): `0 0 2 * * *` is 02:00 UTC on
every machine, not 02:00 wherever the local host happens to run."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.host import ncrontab
from shared.host.functions_host import FunctionHost

log = logging.getLogger(__name__)


class TimerScheduler:
    def __init__(self, host: FunctionHost) -> None:
        self._host = host
        self._schedules = {
            f.name: ncrontab.parse(host.app_setting(str(f.binding["schedule"])))
            for f in host.of_trigger("timerTrigger")
        }
        self._running: dict[str, threading.Lock] = {name: threading.Lock() for name in self._schedules}
        self.zone = time_zone(
            os.environ.get("WEBSITE_TIME_ZONE") or host.settings.get("WEBSITE_TIME_ZONE", "")
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="timers", daemon=True)

    @property
    def schedules(self) -> dict[str, str]:
        return {name: schedule.expression for name, schedule in self._schedules.items()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def fire(self, name: str, wait: bool = True) -> bool:
        """Run a timer now (as `POST /admin/functions/NAME` does); False if it is already running."""
        lock = self._running[name]
        if not lock.acquire(blocking=wait):
            return False
        try:
            self._host.invoke_timer(name)
        except Exception:
            log.warning("timer failed; it runs again at its next occurrence", extra={"function": name})
        finally:
            lock.release()
        return True

    def _loop(self) -> None:
        upcoming = {name: s.next_after(datetime.now(self.zone)) for name, s in self._schedules.items()}
        while not self._stop.is_set():
            now = datetime.now(self.zone)
            for name, due in upcoming.items():
                if due <= now:
                    threading.Thread(
                        target=self.fire, args=(name, False), name=f"timer-{name}", daemon=True
                    ).start()
                    upcoming[name] = self._schedules[name].next_after(now)
            wake = min(upcoming.values())
            self._stop.wait(max(0.05, min(1.0, (wake - datetime.now(self.zone)).total_seconds())))


def time_zone(name: str) -> tzinfo:
    """The zone schedules are evaluated in: UTC, or the zone `WEBSITE_TIME_ZONE` names (an unknown name is
    refused, as a Function app with it would not start its timers)."""
    if not name.strip():
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"WEBSITE_TIME_ZONE {name!r} is not a time zone name (use an IANA name)") from None
