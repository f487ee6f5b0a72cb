"""Notifications to the people who run the system: webhooks, their signing secret, cooldowns, retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import TEXT, URL, ConfigError, Parser, integer, number, setting

# Release decisions are never held back; the kinds that can repeat while one cause persists wait an hour.
DEFAULT_COOLDOWNS = "drift_detected=3600,run_failed=3600,performance_degraded=3600"


def _urls(name: str, text: str) -> tuple[str, ...]:
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    for url in urls:
        if not url.lower().startswith(("https://", "http://")):
            raise ConfigError(f"{name}: {url.split('?')[0][:80]!r} is not an http(s) URL")
    return urls


def _cooldowns(name: str, text: str) -> dict[str, float]:
    """`kind=seconds,...` over the defaults: a kind named here replaces its default (0 turns it off)."""
    from shared.domain.notifications import Kind

    found: dict[str, float] = {}
    for part in (p.strip() for p in f"{DEFAULT_COOLDOWNS},{text}".split(",")):
        if not part:
            continue
        kind, sep, seconds = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in {k.value for k in Kind}:
            known = ", ".join(k.value for k in Kind)
            raise ConfigError(f"{name}: {part!r} is not kind=seconds with a kind among {known}")
        try:
            value = float(seconds)
        except ValueError:
            raise ConfigError(f"{name}: {seconds.strip()!r} is not a number of seconds") from None
        if not 0 <= value < float("inf"):
            raise ConfigError(f"{name}: {kind} must be 0 or more seconds")
        found[kind] = value
    return found


URLS = Parser("http(s) URLs, comma-separated", _urls)
COOLDOWNS = Parser("`kind=seconds`, comma-separated", _cooldowns)


@dataclass(frozen=True)
class NotifySettings:
    title: ClassVar[str] = "Notifications (webhooks)"

    urls: tuple[str, ...] = setting(
        "MLOPS_NOTIFY_URLS",
        "",
        URLS,
        "Webhooks told of approval requests, promotions, rollbacks, degraded performance, drift, failed runs and "
        "quarantined files. Microsoft Teams (`*.webhook.office.com`, workflow URLs on `*.logic.azure.com` or "
        "`*.powerplatform.com`) and Slack (`hooks.slack.com`) get a readable message; any other URL gets signed "
        "JSON. Empty: no notifications.",
    )
    secret: str = setting(
        "MLOPS_NOTIFY_SECRET",
        "",
        TEXT,
        "Key of the HMAC-SHA256 signature over the body of the signed JSON (header `x-mlops-signature: "
        "sha256=<hex>`). Empty: that JSON is sent unsigned.",
    )
    cooldowns: dict[str, float] = setting(
        "MLOPS_NOTIFY_COOLDOWNS",
        "",
        COOLDOWNS,
        f"Seconds after one notification of a kind during which others of that kind are held back (counted, and "
        f"mentioned in the next one). Over the defaults `{DEFAULT_COOLDOWNS}`; the other kinds have none.",
    )
    public_url: str = setting(
        "MLOPS_PUBLIC_URL",
        "",
        URL,
        "Base URL of the Function App as people reach it (e.g. `https://<app>.azurewebsites.net`): links in "
        "notifications. Empty: the links are paths.",
    )
    timeout_seconds: float = setting(
        "MLOPS_NOTIFY_TIMEOUT_SECONDS", "5", number(0.1, 30), "How long one webhook call may take."
    )
    attempts: int = setting(
        "MLOPS_NOTIFY_ATTEMPTS",
        "3",
        integer(1, 5),
        "Calls of a webhook while the event is handled, before the delivery is left to the `reconcile` tick.",
    )
    pause_seconds: float = setting(
        "MLOPS_NOTIFY_PAUSE_SECONDS",
        "0.5",
        number(0.0, 5.0),
        "Pause before the second of those calls, doubling after each.",
    )
    budget_seconds: float = setting(
        "MLOPS_NOTIFY_BUDGET_SECONDS",
        "20",
        number(1.0, 25.0),
        "Time one event's notifications may take (Event Grid waits 30 s); what is left waits for the tick.",
    )
    retry_seconds: float = setting(
        "MLOPS_NOTIFY_RETRY_SECONDS",
        "60",
        number(1.0),
        "The tick's first wait before calling a failing webhook again, doubling after each failure.",
    )
    max_retries: int = setting(
        "MLOPS_NOTIFY_MAX_RETRIES",
        "8",
        integer(0, 20),
        "The tick's calls of a failing webhook before the delivery is given up (recorded in the audit log).",
    )
    quarantine_quiet_seconds: float = setting(
        "MLOPS_NOTIFY_QUARANTINE_QUIET_SECONDS",
        "60",
        number(0.0),
        "Files quarantined are summarised in one notification once none was quarantined for this long ...",
    )
    quarantine_max_wait_seconds: float = setting(
        "MLOPS_NOTIFY_QUARANTINE_MAX_WAIT_SECONDS",
        "900",
        number(0.0),
        "... or once the oldest not yet summarised waited this long.",
    )
