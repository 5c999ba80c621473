"""The playground in headless Debian chromium, driven by Playwright, against the real server on the default model.

Playwright never downloads a browser here (there may be no internet): it drives /usr/bin/chromium, which
`make setup-dev` installs with apt. Without it (a developer machine without apt) test_playground.py skips.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from browser_helpers import API_KEY, CHROMIUM, CHROMIUM_ARGS
from real_server import real_server_fixture

# With an API key, so the tests also cover the key the user types into the page. The thinking minimum is lowered
# so a thinking request stays a few tokens long. Module scope: the server stops when the browser tests end.
server = real_server_fixture("browser-server.log", "--api-key", API_KEY, "--min-thinking-budget", "1",
                             scope="module")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright    # test_playground.py skips first when it is missing

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, server, *, with_key: bool):
    """A fresh browser context (its own localStorage); with_key stores the key the way the page does."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    if with_key:
        context.add_init_script(f"localStorage.setItem('thinkserve.apiKey', {API_KEY!r})")
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.base_url + "/")
    return SimpleNamespace(page=page, context=context, errors=errors)


@pytest.fixture
def fresh(browser, server):
    """The page as a first-time visitor sees it: no key stored."""
    opened = open_page(browser, server, with_key=False)
    yield opened
    opened.context.close()
    assert opened.errors == []


@pytest.fixture
def page(browser, server):
    """The page with the key already entered; JavaScript errors fail the test."""
    opened = open_page(browser, server, with_key=True)
    yield opened.page
    opened.context.close()
    assert opened.errors == []
