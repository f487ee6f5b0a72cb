"""`mlops`: run the system locally and talk to it."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from shared.config import Settings
from shared.domain.moments import BadMoment, parse_moment
from shared.host import logs
from shared.tools import views
from shared.tools.progress import waiting


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start Azurite, the function host, Event Grid, timers and the endpoint")
    commands.add_parser("demo", help="run the whole loop on the diabetes data and print what happened")
    send = commands.add_parser("send-event", help="post an Event Grid JSON file to the local host")
    send.add_argument("file", type=Path)
    send.add_argument("--function", help="deliver to this function's webhook (default: by the routing table)")
    status = commands.add_parser("status", help="what is in production, in flight and decided lately")
    lineage = commands.add_parser("lineage", help="why a model version is where it is")
    lineage.add_argument("model", metavar="NAME:VERSION")
    history = commands.add_parser("history", help="what served production when (from the audit log)")
    history.add_argument(
        "--at",
        metavar="TIME",
        help="what served then: 2026-11-24, 2026-11-24T15:00 (local time unless Z or +01:00), now, yesterday, -2d",
    )
    history.add_argument("--model", help="another model's history (default: MLOPS_MODEL_NAME)")
    fire = commands.add_parser("fire", help="run a timer function now")
    fire.add_argument("timer", choices=["reconcile", "scheduled_retrain", "drift_check", "quality_check"])
    retrain = commands.add_parser("retrain", help="ask for a training run now (POST /api/retrain)")
    retrain.add_argument("--reason", help="why: recorded with the request")
    retrain.add_argument(
        "--code-version", help="the training code's version (a commit): the cause becomes code"
    )
    retrain.add_argument(
        "--as",
        dest="identity",
        help="who is asking (default: MLOPS_LOCAL_APPROVER, else your login name)",
    )
    unstick = commands.add_parser(
        "retry-stuck", help="hand a record `mlops status` lists as stuck back to the handlers"
    )
    unstick.add_argument("key", help="the record's key, e.g. releases/mlops-model-v3")
    unstick.add_argument("--as", dest="identity", help="who decides (default: as for retrain)")
    letters = commands.add_parser("dead-letters", help="events that exhausted their delivery attempts")
    for readable in (status, lineage, history, letters):
        readable.add_argument("--json", action="store_true", help="the API's JSON as it is, for scripts")
    replay = commands.add_parser("replay", help="deliver a dead-lettered event again")
    replay.add_argument("id", help="the id `mlops dead-letters` shows (subscription/event id)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "demo":  # the story on the console, the host's log in a file
        logs.configure(logging.WARNING, Path(settings.home) / "demo.log")
    else:
        logs.configure(logging.INFO if args.command == "up" else logging.WARNING)
    if args.command == "up":
        return _up()
    if args.command == "demo":
        from shared.tools.demo import run_demo

        return run_demo()
    if args.command == "send-event":
        return _send_event(settings, args.file, args.function)
    if args.command == "status":
        response = requests.get(f"{settings.local.host_url}/api/status", headers=_key(settings), timeout=30)
        return _render(response, views.status, args.json)
    if args.command == "lineage":
        name, _, version = args.model.rpartition(":")
        if not name or not version:
            parser.error("lineage takes NAME:VERSION, e.g. mlops-model:1")
        response = requests.get(
            f"{settings.local.host_url}/api/models/{name}/{version}/lineage",
            headers=_key(settings),
            timeout=30,
        )
        return _render(response, views.lineage, args.json)
    if args.command == "history":
        params = {"model": args.model} if args.model else {}
        if args.at is not None:
            try:  # resolved here: a time without an offset is this machine's local time, not the app's
                params["at"] = parse_moment(args.at, datetime.now(UTC)).isoformat()
            except BadMoment as error:
                parser.error(f"--at: {error}")
        response = requests.get(
            f"{settings.local.host_url}/api/history", params=params, headers=_key(settings), timeout=60
        )
        return _render(response, views.history, args.json)
    if args.command == "retrain":
        return _retrain(settings, args.reason, args.code_version, args.identity)
    if args.command == "retry-stuck":
        who = args.identity or settings.local.approver or _login_name()
        return _show(
            requests.post(
                f"{settings.local.host_url}/api/stuck/retry",
                headers={**_key(settings), **({"x-mlops-approver": who} if who else {})},
                json={"key": args.key},
                timeout=30,
            )
        )
    if args.command == "dead-letters":
        response = requests.get(f"{settings.local.host_url}/admin/deadletters", timeout=30)
        return _render(response, views.dead_letters, args.json)
    if args.command == "replay":
        return _show(
            requests.post(f"{settings.local.host_url}/admin/deadletters/{args.id}/replay", timeout=30)
        )
    if args.command == "fire":
        with waiting(f"{args.timer} to finish"):
            response = requests.post(
                f"{settings.local.host_url}/admin/functions/{args.timer}?wait=true",
                json={"input": ""},
                timeout=600,
            )
        return _show(response)
    return 2


def _up() -> int:
    from shared.host.services import LocalServices

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    services = LocalServices()
    with waiting("Azurite, the function host and the endpoint to start"):
        services.start()
    try:
        print(f"function host  {services.server.url}  ({len(services.host.functions)} functions)")
        print(f"scoring        {services.router.url}/score")
        print(f"storage        {services.settings.storage.connection_string.split('BlobEndpoint=')[-1]}")
        print("Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how users stop it
            stop.wait()
    finally:
        services.stop()
    return 0


def _send_event(settings: Settings, file: Path, function: str | None) -> int:
    from shared.config import experiment_name
    from shared.host import routing

    events: Any = json.loads(file.read_text())
    events = events if isinstance(events, list) else [events]
    table = routing.load(settings.containers, experiment=experiment_name(settings.raw))
    # routed as Event Grid would (event types, subject and advanced filters), whatever topic the file names
    targets = (
        [function]
        if function
        else sorted(
            {
                s.function
                for event in events
                for s in table
                if isinstance(event, dict) and s.matches(s.topic, event)
            }
        )
    )
    if not targets:
        print("no route's filters let these events through; name a function with --function", file=sys.stderr)
        return 2
    worst = 0
    for target in targets:
        response = requests.post(
            f"{settings.local.host_url}/runtime/webhooks/eventgrid",
            params={"functionName": target},
            headers={"aeg-event-type": "Notification"},
            json=events,
            timeout=60,
        )
        print(f"{target}: {response.status_code} {response.text}")
        worst = max(worst, 0 if response.ok else 1)
    return worst


def _retrain(settings: Settings, reason: str | None, code_version: str | None, identity: str | None) -> int:
    body = {"reason": reason, "code_version": code_version}
    who = identity or settings.local.approver or _login_name()
    response = requests.post(
        f"{settings.local.host_url}/api/retrain",
        headers={**_key(settings), **({"x-mlops-approver": who} if who else {})},
        json={k: v for k, v in body.items() if v is not None},
        timeout=30,
    )
    if response.status_code != 202:
        return _show(response)
    answer = response.json()
    print(answer["id"])
    where = f"run {answer['run']}" if answer.get("run") else f"training request {answer.get('request')}"
    print(f"cause {answer['cause']}, asked by {who}; {where}", file=sys.stderr)
    return 0


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no password entry (some containers)
        return None


def _key(settings: Settings) -> dict[str, str]:
    return {"x-functions-key": settings.local.function_key}


def _render(response: requests.Response, view: Any, as_json: bool) -> int:
    """The answer for a person (`view`), or with `--json`, and for any error or non-JSON answer, as it came."""
    if as_json or not response.ok:
        return _show(response)
    try:
        answer = response.json()
    except ValueError:  # not JSON (a proxy's page, a truncated answer): shown as text
        return _show(response)
    print(view(answer))
    return 0


def _show(response: requests.Response) -> int:
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
