"""`approval-bot sandbox` in a real headless Chromium: a pipeline, a denied self-approval,
two approvals that play the gate, the sign-off in the ledger, and a rejection with a reason.

Debian's chromium and chromium-driver are used (.ci/run installs them); Selenium is given
both paths, so its own driver download (Selenium Manager) never runs.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.conftest import redis_db_url
from tests.integration.harness import executable

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING_BROWSER = (
    "Chromium is not installed: `apt-get install -y chromium chromium-driver` "
    "(needs /usr/bin/chromium and /usr/bin/chromedriver)"
)
REDIS_URL = redis_db_url(7)  # DBs 8-14 belong to the other integration tests
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEPLOYS, DATA = "#ch-C0SBDEPLOY", "#ch-C0SBDATA"
WAIT_S = 20


def _forward(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox as a user starts it; SIGTERM at the end must stop it cleanly (exit 0)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    workdir = tmp_path_factory.mktemp("sandbox")
    log = (workdir / "sandbox.err").open("w")
    process = subprocess.Popen(
        [executable(), "sandbox", "--port", "0", "--redis-url", REDIS_URL, "--workdir", workdir],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_forward, args=(process.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=60)
        urls = re.findall(r"http://\S+", first)
        assert len(urls) == 1, f"expected one URL, got {first!r}"
        yield urls[0]
    except queue.Empty:
        pytest.fail(f"the sandbox printed no URL:\n{(workdir / 'sandbox.err').read_text()}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
        log.close()
    assert code == 0, (workdir / "sandbox.err").read_text()
    assert not (workdir / "sandbox.err").read_text().count("Traceback")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING_BROWSER)
        pytest.skip(MISSING_BROWSER)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (StaleElementReferenceException, WebDriverException):
            found = None  # the page swapped that fragment while we looked: look again
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def text_of(browser: WebDriver, css: str) -> str:
    return "\n".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, css))


def start_pipeline(
    browser: WebDriver, project: str, triggered_by: str, author: str, migration: bool = False
) -> None:
    Select(browser.find_element(By.ID, "project")).select_by_value(project)
    Select(browser.find_element(By.ID, "triggered-by")).select_by_value(triggered_by)
    Select(browser.find_element(By.ID, "author")).select_by_value(author)
    checkbox = browser.find_element(By.ID, "migration")
    if checkbox.is_selected() != migration:
        checkbox.click()
    browser.find_element(By.ID, "start-pipeline").click()
    wait_for(
        "the webhook's answer",
        lambda: "answered 202" in browser.find_element(By.ID, "pipeline-answer").text,
    )


def button(browser: WebDriver, channel: str, action: str) -> WebElement:
    css = f'{channel} .msg .bk-button[data-action-id="{action}"]'
    return wait_for(f"{action} in {channel}", lambda: browser.find_element(By.CSS_SELECTOR, css))


def click_as(browser: WebDriver, person: str, channel: str, action: str) -> None:
    browser.find_element(By.ID, f"as-{person}").click()
    wait_for(f"a click on {action}", lambda: button(browser, channel, action).click() or True)


def approve_as(browser: WebDriver, person: str, channel: str) -> None:
    """Approve goes through Slack's confirm dialog first, as in the Slack client."""
    click_as(browser, person, channel, "approve")
    dialog = browser.find_element(By.ID, "confirm-dialog")
    wait_for("the confirm dialog", dialog.is_displayed)
    assert "Approve this deployment?" in dialog.text
    dialog.find_element(By.CSS_SELECTOR, '[data-confirm="yes"]').click()


def rollback_as(browser: WebDriver, person: str) -> None:
    click_as(browser, person, DEPLOYS, "rollback")
    dialog = browser.find_element(By.ID, "confirm-dialog")
    wait_for("the confirm dialog", dialog.is_displayed)
    assert "Roll back this deployment?" in dialog.text
    dialog.find_element(By.CSS_SELECTOR, '[data-confirm="yes"]').click()


def test_approve_deny_and_reject_in_the_browser(sandbox_url: str, browser: WebDriver) -> None:
    started = time.monotonic()
    browser.get(sandbox_url)
    assert "approval-bot sandbox" in browser.title

    # Ravi (a release manager) runs the pipeline, so he may not approve it.
    start_pipeline(browser, "fintech/payments-api", triggered_by="ravi", author="devi")
    message = wait_for("the request", lambda: text_of(browser, f"{DEPLOYS} .msg"))
    assert "Deployment approval needed" in message
    approve_as(browser, "ravi", DEPLOYS)
    wait_for(
        "the self-approval refusal",
        lambda: "because you triggered this pipeline" in text_of(browser, f"{DEPLOYS} .ephemeral"),
    )
    approve_as(browser, "rita", DEPLOYS)
    wait_for(
        "Rita's approval",
        lambda: "Your approval is recorded" in text_of(browser, f"{DEPLOYS} .ephemeral"),
    )
    approve_as(browser, "colette", DEPLOYS)

    wait_for("the played gate", lambda: "played 1 time" in text_of(browser, "#gitlab"))
    assert "compliance-gate: pending" in text_of(browser, "#gitlab")
    wait_for("the final message", lambda: "Approved" in text_of(browser, f"{DEPLOYS} .msg-body"))
    assert not browser.find_elements(By.CSS_SELECTOR, f"{DEPLOYS} .bk-button")
    ledger = wait_for("the sign-off", lambda: text_of(browser, "#ledger .ledger-signoff"))
    assert "Rita Release (release-manager)" in ledger
    assert "Colette Compliance (compliance-officer)" in ledger
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "sandbox-approved.png"
    assert browser.save_screenshot(str(screenshot))
    print(f"screenshot after the approval: {screenshot}")

    # The pipeline deploys and its smoke test fails: the thread offers Roll back. Ravi
    # triggered the pipeline, so he may not roll it back; Rita may, once.
    browser.find_element(By.CSS_SELECTOR, '#gitlab button.deploy[data-smoke="failed"]').click()
    wait_for("the smoke-test alert", lambda: "Smoke test" in text_of(browser, DEPLOYS))
    rollback_as(browser, "ravi")
    wait_for(
        "the rollback refusal",
        lambda: "rollback because you triggered" in text_of(browser, f"{DEPLOYS} .ephemeral"),
    )
    rollback_as(browser, "rita")
    wait_for(
        "the rollback job played",
        lambda: "rollback:production: pending · played 1 time" in text_of(browser, "#gitlab"),
    )
    rolled_back = wait_for(
        "the rollback entry", lambda: text_of(browser, "#ledger .ledger-rollback")
    )
    assert "Rita Release" in rolled_back
    wait_for("the rolled-back reply", lambda: "Rolled back" in text_of(browser, DEPLOYS))
    assert browser.save_screenshot(str(ARTIFACTS / "sandbox-rolled-back.png"))

    # Ada (an admin) rejects the next one, which adds a risky migration, with a reason
    # typed into the bot's modal.
    start_pipeline(browser, "fintech/ledger-db", triggered_by="devi", author="devi", migration=True)
    wait_for("the migration flags", lambda: "Migration risk" in text_of(browser, DATA))
    assert "NOT NULL without a DEFAULT" in text_of(browser, DATA)
    click_as(browser, "ada", DATA, "reject")
    modal = browser.find_element(By.ID, "modal-dialog")
    wait_for("the reject modal", modal.is_displayed)
    assert "Reject deployment" in modal.text
    modal.find_element(By.CSS_SELECTOR, 'textarea[data-block-id="reason"]').send_keys("Freeze")
    modal.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    wait_for("the rejection", lambda: "Rejected by @Ada Admin: Freeze" in text_of(browser, DATA))
    rejection = wait_for("the ledger entry", lambda: text_of(browser, "#ledger .ledger-rejection"))
    assert "rejected by Ada Admin: Freeze" in rejection

    assert not text_of(browser, "#problems")
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    the_page_reads_well_at_900_px(browser)
    print(f"browser flow took {time.monotonic() - started:.1f}s")


# Lines of text in an element: the distinct tops of its text boxes (8 px apart at least).
TEXT_LINES = """
const tops = [];
const walker = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const range = document.createRange();
  range.selectNodeContents(walker.currentNode);
  for (const box of range.getClientRects()) if (box.width > 0) tops.push(box.top);
}
tops.sort((a, b) => a - b);
return tops.filter((top, i) => i === 0 || top - tops[i - 1] > 8).length;
"""
SHORTCODE = re.compile(r":[a-z][a-z0-9_+-]*:")


def the_page_reads_well_at_900_px(browser: WebDriver) -> None:
    """Issue #17: times, emoji, the picker, the ledger and the width, as a person sees them."""
    browser.set_window_size(900, 1000)
    times = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msg-head .ts")]
    assert times, "no message times"
    assert all(re.fullmatch(r"\d{2}:\d{2}:\d{2}", t) for t in times), times
    assert not SHORTCODE.findall(text_of(browser, "#slack")), text_of(browser, "#slack")
    assert "\u21a9" in text_of(browser, DEPLOYS)  # Rolled back's :leftwards_arrow_with_hook:

    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    assert browser.execute_script("return window.scrollY") > 0
    top, bottom, viewport = browser.execute_script(
        "const box = arguments[0].getBoundingClientRect();"
        "return [box.top, box.bottom, window.innerHeight];",
        browser.find_element(By.ID, "people"),
    )
    assert top >= 0, "the people to click as scrolled out of view"
    assert bottom <= viewport, "the people to click as scrolled out of view"

    cells = browser.find_elements(By.CSS_SELECTOR, "#ledger td:not(.who)")
    assert cells
    lines = [browser.execute_script(TEXT_LINES, cell) for cell in cells]
    assert max(lines) <= 2, lines  # number; record, hash and time; project and pipeline
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"horizontal scroll at 900 px: {widths}"
    assert browser.save_screenshot(str(ARTIFACTS / "sandbox-900px.png"))
