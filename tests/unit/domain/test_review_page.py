"""The review page's HTML from plain records: what an approver reads, and nothing recorded runs as markup."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.review_assets import CONTENT_SECURITY_POLICY, SCRIPT, STYLE
from shared.domain.review_page import prefers_html, render

RELEASE = {
    "id": "m-v2",
    "model": "m",
    "version": "2",
    "deployment": "model-v2",
    "status": "production",
    "history": [
        {
            "status": "awaiting_approval",
            "at": "t1",
            "detail": {"smoke_test": {"requests": 5, "p95_ms": 12.5}},
        },
        {"status": "approved", "at": "t2", "detail": {"approver": "alice", "comment": "fine"}},
        {"status": "shadow", "at": "t3", "detail": {"percent": 100, "bake_seconds": 60}},
        {
            "status": "canary",
            "at": "t4",
            "detail": {"shadow": {"pairs": 40, "agreement": 0.975, "errors": 0}},
        },
        {"status": "promoting", "at": "t5", "detail": {"canary": {"requests": 31, "error_rate": 0.0}}},
    ],
}
LINEAGE = {
    "primary_metric": "rmse",
    "metrics": {"rmse": 2.5, "r2": 0.91},
    "champion": "m:1",
    "champion_metrics": {"rmse": 3.0, "r2": 0.88},
    "comparison": {"metric": "rmse", "difference": -0.5, "ci_low": -0.8, "ci_high": -0.2, "level": 0.95,
                   "p_value": 0.002, "valid_resamples": 1000},
    "gates": [{"gate": "significance", "passed": True, "value": -0.2, "threshold": 0.0, "reason": "ok"}],
    "causes": ["drift"],
    "steps": [
        {"action": "training.requested", "subject": "evt-d", "detail": {"cause": "drift",
         "report": "http://127.0.0.1:10000/devstoreaccount1/reports/drift/m-v1-1.json"}},
        {"action": "training.requested", "subject": "evt-e", "detail": {"cause": "drift",
         "report": "javascript:alert(1)"}},
    ],
}  # fmt: skip


def section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    end = html.find("<h2>", start)
    return html[start : end if end > 0 else len(html)]


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chrome, Firefox
        ("text/html", True),
        ("application/xhtml+xml", True),
        ("text/*;q=0.9, application/json;q=0.5", True),
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html", False),  # a tie answers the API's own type
        ("text/html;q=0.1, application/json;q=0.2", False),
        ("text/html;q=nope", False),
        ("text/html;q=NaN", False),
        (";;,,;q=", False),
    ],
)
def test_html_only_when_the_accept_header_ranks_it_first(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


def test_the_numbers_an_approver_decides_on() -> None:
    html = render(RELEASE, LINEAGE, local=False)

    metrics = section(html, "metrics")
    assert "rmse (primary)" in metrics and ">2.5<" in metrics and ">3<" in metrics and ">-0.5<" in metrics
    assert "95% [-0.8, -0.2], p = 0.002, 1000 resamples" in metrics
    assert "significance" in section(html, "gates") and ">-0.2<" in section(html, "gates")
    assert ">12.5<" in section(html, "smoke")
    shadow = section(html, "shadow")
    assert ">100<" in shadow and ">60<" in shadow and "agreement" in shadow and ">0.975<" in shadow
    canary = section(html, "canary")
    assert "requests" in canary and ">31<" in canary
    assert "alice" in section(html, "history") and "fine" in section(html, "history")


def test_slices_and_fairness_say_not_evaluated_until_recorded() -> None:
    assert "not evaluated" in section(render(RELEASE, LINEAGE, local=False), "slices")
    assert "not evaluated" in section(render(RELEASE, LINEAGE, local=False), "fairness")

    recorded = {
        **LINEAGE,
        "slices": [
            {"column": "sex", "value": "f", "rows": 40, "champion": 3.1, "challenger": 3.6, "difference": 0.5,
             "low": 0.1, "high": 0.9, "verdict": "worse"},
            {"column": "sex", "value": "m", "rows": 8, "champion": None, "challenger": None,
             "difference": None, "low": None, "high": None, "verdict": "too small"},
        ],
        # as shared.training.slices.fairness writes it, and the fairness gate's verdicts
        "fairness": {"column": "sex", "positive": 1, "min_rows": 30, "groups": {"f": 40, "m": 8},
                     "too_small": ["m"],
                     "challenger": {"rates": {"f": {"selection_rate": 0.4}}, "demographic_parity_difference": 0.07,
                                    "equalized_odds_difference": 0.12},
                     "champion": {"rates": {}, "demographic_parity_difference": 0.05,
                                  "equalized_odds_difference": 0.04}},
        "gates": [
            *LINEAGE["gates"],
            {"gate": "demographic_parity_difference across sex <= 0.1", "passed": True, "value": 0.07,
             "threshold": 0.1, "reason": "within"},
            {"gate": "equalized_odds_difference across sex <= 0.1", "passed": False, "value": 0.12,
             "threshold": 0.1, "reason": "exceeds"},
        ],
    }  # fmt: skip
    html = render(RELEASE, recorded, local=False)

    slices = section(html, "slices")
    assert '<td class="fail">worse</td>' in slices and '<td class="none">too small</td>' in slices
    assert ">40<" in slices and ">0.9<" in slices
    fairness = section(html, "fairness")
    assert "equalized_odds_difference" in fairness and ">0.12<" in fairness and "limit 0.1;" in fairness
    assert ">0.04<" in fairness  # the champion's, beside it
    assert ">failed<" in fairness and "selection_rate" in fairness


def test_a_drift_report_is_linked_only_by_http() -> None:
    reports = section(render(RELEASE, LINEAGE, local=False), "drift-reports")

    assert '<a href="http://127.0.0.1:10000/devstoreaccount1/reports/drift/m-v1-1.json"' in reports
    assert 'href="javascript' not in reports and "<code>javascript:alert(1)</code>" in reports


def test_buttons_only_while_awaiting_approval_and_the_name_asked_only_locally() -> None:
    awaiting = {**RELEASE, "status": "awaiting_approval"}

    assert 'id="approve"' in render(awaiting, LINEAGE, local=False)
    assert 'id="approver"' not in render(awaiting, LINEAGE, local=False)
    assert 'id="approver"' in render(awaiting, LINEAGE, local=True)
    for status in ("production", "approved", "rejected", "canary", "expired"):
        assert 'id="decision"' not in render({**RELEASE, "status": status}, LINEAGE, local=True)


def test_the_policy_admits_exactly_the_inline_script_and_style() -> None:
    html = render({**RELEASE, "status": "awaiting_approval"}, LINEAGE, local=True)

    assert re.findall(r"<script>(.*?)</script>", html, re.S) == [SCRIPT]
    assert re.findall(r"<style>(.*?)</style>", html, re.S) == [STYLE]
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "style=" not in markup and not re.search(r"\son[a-z]+=", markup)  # no inline handlers
    assert "script-src 'sha256-" in CONTENT_SECURITY_POLICY


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(alphabet="<>&\"'x/ =:"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("<>&\"'k"), inner, max_size=3),
    max_leaves=12,
)


@given(release=st.dictionaries(st.sampled_from(list(RELEASE)), JSON), lineage=JSON)
def test_any_recorded_value_renders_as_text(release: dict, lineage: object) -> None:
    html = render(release, lineage if isinstance(lineage, dict) else {"gates": lineage, "slices": lineage},
                  local=True)  # fmt: skip

    body = html.split("<body>", 1)[1].rsplit("<script>", 1)[0]
    tags = set(re.findall(r"<([a-z0-9]+)", body))
    assert tags <= {"h1", "h2", "h3", "p", "code", "span", "table", "tr", "th", "td", "div", "ul", "li", "a",
                    "section", "label", "input", "textarea", "button"}  # fmt: skip
    assert "<script" not in body and "<x" not in body
