"""`mlops status`, `lineage`, `history` and `dead-letters` against a small HTTP server on loopback that answers
as the local host does: readable by default, the JSON as it came with `--json`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from shared.tools import cli
from tests.unit.tools.test_views import HISTORY, LETTERS, LINEAGE, STATUS


class FakeHost:
    """Answers GETs from `routes` (path -> (status, body)); remembers what was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.asked: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                host.asked.append((url.path, parse_qs(url.query), dict(self.headers)))
                status, body = host.routes.get(url.path, (404, {"error": "no route"}))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture()
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    fake = FakeHost()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("MLOPS_HOST_URL", fake.url)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr(cli.logs, "configure", lambda *args, **kwargs: None)  # keep pytest's log capture
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_prints_sections_and_tables(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.routes["/api/status"] = (200, STATUS)

    code, out, _ = run(capsys, "status")

    assert code == 0
    assert out.startswith("production        m:2\n")
    assert "Recent decisions (1)\nTIME                 ACTOR      ACTION" in out
    assert host.asked[0][2]["x-functions-key"]  # the function key goes along


@pytest.mark.parametrize(
    ("argv", "path", "body"),
    [
        (["status"], "/api/status", STATUS),
        (["lineage", "m:2"], "/api/models/m/2/lineage", LINEAGE),
        (["history"], "/api/history", HISTORY),
        (["dead-letters"], "/admin/deadletters", LETTERS),
    ],
)
def test_json_prints_the_answer_as_it_came(
    host: FakeHost, capsys: pytest.CaptureFixture[str], argv: list[str], path: str, body: Any
) -> None:
    host.routes[path] = (200, body)

    code, out, err = run(capsys, *argv, "--json")

    assert code == 0 and err == ""
    assert out == json.dumps(body, indent=2) + "\n"


def test_lineage_names_the_model_and_its_gates(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.routes["/api/models/m/2/lineage"] = (200, LINEAGE)

    code, out, _ = run(capsys, "lineage", "m:2")

    assert code == 0 and "Gates (2)" in out and "FAIL" in out and "Metrics (2)" in out


def test_an_unknown_model_version_is_the_apis_answer_and_exit_1(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host.routes["/api/models/m/9/lineage"] = (404, {"error": "no such model version"})

    code, out, _ = run(capsys, "lineage", "m:9")

    assert code == 1 and json.loads(out) == {"error": "no such model version"}


def test_history_prints_the_timeline(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.routes["/api/history"] = (200, HISTORY)

    code, out, _ = run(capsys, "history", "--model", "m")

    assert code == 0 and "Production history of m" in out and "restored by a rollback, by alice" in out
    assert host.asked[0][1] == {"model": ["m"]}


def test_history_at_sends_the_time_with_its_offset(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host.routes["/api/history"] = (200, {"model": "m", "at": "2026-11-24T15:00:00+00:00", "serving": None})

    code, out, _ = run(capsys, "history", "--at", "2026-11-24T16:00+01:00")

    assert code == 0 and out.startswith("nothing was in production for m at 2026-11-24")
    assert host.asked[0][1] == {"at": ["2026-11-24T15:00:00+00:00"]}


def test_history_at_no_time_is_refused_before_asking(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["history", "--at", "next tuesday"])

    assert exited.value.code == 2
    assert "--at: 'next tuesday' is not a time" in capsys.readouterr().err
    assert host.asked == []


def test_an_apps_refusal_is_shown_with_exit_1(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.routes["/api/history"] = (400, {"error": "'x' is not a time"})

    code, out, _ = run(capsys, "history")

    assert code == 1 and json.loads(out) == {"error": "'x' is not a time"}


def test_dead_letters_are_a_table(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    host.routes["/admin/deadletters"] = (200, LETTERS)

    code, out, _ = run(capsys, "dead-letters")

    assert code == 0 and out.splitlines()[0].startswith("ID ") and out.endswith("2 dead-lettered event(s)\n")


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b"null", b"[1, 2]", b'"text"', b"{}"])
@pytest.mark.parametrize("argv", [["status"], ["lineage", "m:1"], ["history"], ["dead-letters"]])
def test_an_answer_of_any_shape_prints_without_a_crash(
    host: FakeHost, capsys: pytest.CaptureFixture[str], argv: list[str], body: bytes
) -> None:
    for path in ("/api/status", "/api/models/m/1/lineage", "/api/history", "/admin/deadletters"):
        host.routes[path] = (200, body)

    code, out, _ = run(capsys, *argv)

    assert code == 0 and out.strip()
