"""The feedback page in a real browser: headless Chromium (Debian's ``chromium`` package) driven by Playwright opens
the page through the URL with its token, picks a preference, rates a completion and skips one; the log then holds
exactly those answers, and the page's Content-Security-Policy (inline script allowed by its hash only) let it run.
Opened without the token, the page shows the server's error text.

Skipped, with the reason, where Playwright or the system's Chromium is missing (``.ci/run`` installs both).
Playwright never downloads a browser here: it is pointed at the system's binary (``CHROMIUM`` overrides the path).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser(board):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e .[feedback]"
    )
    if CHROMIUM is None:
        pytest.skip("no system Chromium (chromium not on PATH): apt-get install -y chromium, or set CHROMIUM=/path")
    from textgen_env.feedback import FeedbackServer

    with FeedbackServer(board) as server, sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            browser_page = chromium.new_page(viewport={"width": 1000, "height": 640})
            browser_page.set_default_timeout(15_000)
            yield browser_page, server
        finally:
            chromium.close()


@pytest.mark.timeout(120)
def test_a_person_answers_in_the_browser(browser, board):
    from playwright.sync_api import expect

    page, server = browser
    blocked: list[str] = []  # what the Content-Security-Policy refused, as Chromium reports it
    page.on("console", lambda message: "Content Security Policy" in message.text and blocked.append(message.text))
    response = page.goto(server.url)  # http://127.0.0.1:PORT/?token=...
    assert "script-src 'sha256-" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    page.wait_for_selector("#choose-a", state="visible")
    first = board.next_question()
    assert page.inner_text("#completion-a") == first.completions[0]
    page.click("#choose-b")  # B is better

    page.wait_for_selector("#rate-4", state="visible")  # the next question asks for a rating
    second = board.next_question()
    assert page.inner_text("#completion") == second.completions[0]
    page.click("#rate-4")

    page.wait_for_selector("#choose-a", state="visible")
    page.click("#skip")
    # a locator check, not wait_for_function: the page's CSP forbids the eval that a JavaScript string needs
    expect(page.locator("#stats")).to_contain_text("2 answered, 1 skipped")

    records = [json.loads(line) for line in board.log_path.read_text().splitlines()]
    assert [r.get("preference", r.get("rating")) for r in records] == ["b", 4.0]
    assert records[0]["completion_b"] == first.completions[1] and records[1]["completion"] == second.completions[0]
    assert page.inner_text("#message") == ""  # no error was shown
    assert blocked == []


@pytest.mark.timeout(120)
def test_the_page_without_its_token_shows_the_servers_error(browser, board):
    from playwright.sync_api import expect

    page, server = browser
    page.goto(server.base_url)  # no ?token=
    expect(page.locator("#message")).to_contain_text("401: Expected the server's token in the X-Feedback-Token")
    assert board.stats()["answered"] == 0 and page.is_hidden("#choose-a")
