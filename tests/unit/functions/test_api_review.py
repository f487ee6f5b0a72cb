"""GET /api/releases/{id} as the Functions runtime calls it, on the fakes: the review page for a browser, JSON
for everyone else, 404 for what is no release, every recorded value escaped."""

from __future__ import annotations

import json
import re

import azure.functions as func
import pytest

from functions import api
from shared.handlers.release import advance
from tests.builders import deploy, good_csv, release_status, train
from tests.fakes import FakeDeps, make_deps

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture()
def deps(monkeypatch: pytest.MonkeyPatch) -> FakeDeps:
    made = make_deps(MLOPS_REQUIRE_APPROVAL="true")
    monkeypatch.setattr(api, "deps", lambda: made)
    return made


def awaiting(deps: FakeDeps, name: str = "batch-1.csv") -> str:
    release = deploy(deps, train(deps, good_csv(), name=name))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(release, deps, "reconcile") == "awaiting_approval"
    return release


def get(release: str, accept: str | None = BROWSER) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://127.0.0.1:7071/api/releases/{release}",
        headers={} if accept is None else {"Accept": accept},
        body=b"",
        route_params={"release_id": release},
    )
    return api.release_review.build().get_user_function()(request)


def decide(release: str, decision: str, comment: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method="POST",
        url=f"http://127.0.0.1:7071/api/releases/{release}/{decision}",
        headers={"x-mlops-approver": "alice"},
        body=json.dumps({"comment": comment}).encode(),
        route_params={"release_id": release},
    )
    return api._decide(request, decision)


def page(response: func.HttpResponse) -> str:
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response.get_body().decode()


def test_a_browser_gets_the_page_with_status_gates_and_smoke_evidence(deps: FakeDeps) -> None:
    release = awaiting(deps)

    response = get(release)
    html = page(response)

    assert re.search(r'id="status">awaiting_approval<', html)
    gates = html[html.index('id="gates"') : html.index("<h2>Challenger")]
    assert "r2&gt;=0.1" in gates and ">0.9<" in gates and ">0.1<" in gates  # the floor, value and threshold
    assert ">passed<" in gates
    smoke = html[html.index('id="smoke"') : html.index('id="shadow"')]
    assert "requests" in smoke and "not recorded" not in smoke
    assert 'id="approve"' in html and 'id="reject"' in html and 'id="comment"' in html
    assert 'id="approver"' in html  # local: the page asks for the approver's name
    assert "batch-1.csv" in html[html.index('id="files"') :]
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html  # no CDN


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0.5,application/json"])
def test_anything_but_a_browser_gets_json_with_the_release_and_its_lineage(
    deps: FakeDeps, accept: str | None
) -> None:
    release = awaiting(deps)

    response = get(release, accept)

    assert response.status_code == 200 and response.mimetype == "application/json"
    body = json.loads(response.get_body())
    assert body["release"]["id"] == release and body["release"]["status"] == "awaiting_approval"
    assert body["lineage"]["model"] == "mlops-model:1" and body["lineage"]["primary_metric"] == "rmse"
    assert body["lineage"]["metrics"]["rmse"] == 3.0
    assert response.headers["Vary"] == "Accept"


@pytest.mark.parametrize(
    "release",
    ["mlops-model-v9", "../production/mlops-model", "..", "a/b", "", " ", HOSTILE, "x" * 300, "é\u0000"],
)
@pytest.mark.parametrize("accept", [BROWSER, "application/json"])
def test_what_is_no_release_is_a_404_in_json(deps: FakeDeps, release: str, accept: str) -> None:
    awaiting(deps)

    response = get(release, accept)

    assert response.status_code == 404 and response.mimetype == "application/json"
    assert json.loads(response.get_body()) == {"error": "no such release"}


def test_a_decided_release_shows_no_buttons_and_escapes_the_comment(deps: FakeDeps) -> None:
    release = awaiting(deps)
    assert decide(release, "reject", HOSTILE).status_code == 200
    assert release_status(deps, release) == "rejected"

    html = page(get(release))

    assert 'id="approve"' not in html and 'id="decision"' not in html
    assert "Nothing to decide: this release is rejected." in html
    assert HOSTILE not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own


def test_a_hostile_file_name_is_escaped(deps: FakeDeps) -> None:
    release = awaiting(deps, name='<img src=x onerror="alert(1)">.csv')

    html = page(get(release))

    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.csv" in html
