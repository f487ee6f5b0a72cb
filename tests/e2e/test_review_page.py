"""The review page in a real headless Chromium, against the real local host: a landed file is trained,
registered, deployed and smoke-tested until its release awaits approval; an approver opens the page, reads it,
is refused without an identity, then approves with a comment, and the release moves on.

The browser is Debian's `chromium` and `chromedriver` (`make browser` installs them); both paths are given to
Selenium, so its manager never downloads anything. Without them the test skips, saying why, unless
MLOPS_REQUIRE_BROWSER=true (CI sets it), where a skip would hide a page nobody checked: then it fails.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.host.azurite import free_port
from shared.host.services import LocalServices
from shared.state import keys

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHROMIUM = os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MLOPS_CHROMEDRIVER", "/usr/bin/chromedriver")
MODEL = "review-model"


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and shutil.which(path) is None:
            return f"{path} is missing: install {package} (`make browser` does, with apt-get, as root)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER", "").lower() == "true":
            pytest.fail(f"the browser test must run here (MLOPS_REQUIRE_BROWSER=true): {missing}")
        pytest.skip(f"no headless browser: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    env = {
        "MLOPS_HOME": str(tmp_path_factory.mktemp("review")),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_REQUIRE_APPROVAL": "true",
        "MLOPS_LOCAL_APPROVER": "",  # nobody by default: an approval must name its approver
        "MLOPS_QUIET_PERIOD_SECONDS": "1",
        "MLOPS_RECONCILE_SCHEDULE": "*/1 * * * * *",
        "MLOPS_LOCAL_RETRY_SECONDS": "1,2,5",
    }
    with LocalServices(env, in_memory_storage=True, watch_interval=0.2) as running:
        yield running


def _wait(condition, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


def _status(services: LocalServices, release: str) -> str | None:
    stored = services.deps.state.get(keys.release(release))
    return str(stored.record.status) if stored else None


def _awaiting_release(services: LocalServices) -> str:
    rows = "".join(f"{i},{(i * 7) % 5},{2.0 * i + 3.0 * ((i * 7) % 5) + (i % 3) * 0.1}\n" for i in range(200))
    services.deps.blobs.write(
        services.settings.containers.landing, "clinic/batch-1.csv", f"x1,x2,target\n{rows}".encode()
    )
    release = f"{MODEL}-v1"
    _wait(lambda: _status(services, release) == "awaiting_approval", "the release to await approval", 300)
    return release


def _answer(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    def said() -> str:
        text = browser.find_element(By.ID, "answer").text
        return text if text and text != "sending..." else ""

    return _wait(said, "the API's answer on the page", 30)


def test_an_approver_reviews_is_refused_without_identity_then_approves(
    services: LocalServices, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    release = _awaiting_release(services)
    url = f"{services.server.url}/api/releases/{release}?code={services.settings.local.function_key}"

    served = requests.get(url, headers={"Accept": "text/html"}, timeout=30)
    assert served.headers["Content-Type"] == "text/html; charset=utf-8"
    assert served.headers["Content-Security-Policy"].startswith("default-src 'none'")

    browser.get(url)  # the buttons below work only if the policy admits the page's own script

    assert browser.find_element(By.ID, "status").text == "awaiting_approval"
    gates = browser.find_element(By.ID, "gates").text
    assert "r2>=" in gates and "passed" in gates  # the floor, with the challenger's value and the threshold
    smoke = browser.find_element(By.ID, "smoke").text
    assert "requests" in smoke and "p95_ms" in smoke and "not recorded" not in smoke
    assert "clinic/batch-1.csv" in browser.find_element(By.ID, "files").text
    assert "not evaluated" in browser.find_element(By.ID, "slices").text

    browser.find_element(By.ID, "comment").send_keys("who is this?")
    browser.find_element(By.ID, "approve").click()
    refused = _answer(browser)
    assert refused.startswith("refused (401)") and "no identity" in refused
    assert _status(services, release) == "awaiting_approval"
    assert browser.find_element(By.ID, "approve").is_enabled()  # a refusal leaves the decision open

    browser.find_element(By.ID, "approver").send_keys("alice")
    browser.find_element(By.ID, "comment").clear()
    browser.find_element(By.ID, "comment").send_keys("holdout and smoke test look right <b>ok</b>")
    browser.find_element(By.ID, "approve").click()
    approved = _answer(browser)
    assert approved == f"release {release} approved by alice"
    assert not browser.find_element(By.ID, "approve").is_enabled()

    key = {"x-functions-key": services.settings.local.function_key, "Accept": "application/json"}
    answer = requests.get(f"{services.server.url}/api/releases/{release}", headers=key, timeout=30).json()
    assert answer["release"]["status"] != "awaiting_approval"
    [decided] = [s for s in answer["release"]["history"] if s["status"] == "approved"]
    assert decided["detail"] == {
        "approver": "alice",
        "comment": "holdout and smoke test look right <b>ok</b>",
    }
    refusals = [e for e in services.deps.audit.entries() if e.action == "approval.refused"]
    assert [e.detail["reason"] for e in refusals] == [refused.split(": ", 1)[1]]
    _wait(lambda: _status(services, release) == "production", "the approved release to reach production", 120)

    browser.get(url)  # decided: the page shows what happened and offers no buttons
    assert browser.find_element(By.ID, "status").text == "production"
    assert not browser.find_elements(By.ID, "approve")
    assert "<b>ok</b>" in browser.find_element(By.ID, "history").text  # shown as text, not markup
