"""Browser fixtures for the map page: the app on a real loopback port, and Debian's headless Chromium driven by
Playwright (never `playwright install`). Every request the browser makes is recorded, so that tests can check
that all of them go to the service's own origin."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from mapservice import create_app

from .conftest import serving

# Assertions wait as long as actions do: a loaded 2-core machine can take more than Playwright's 5 s default.
expect.set_options(timeout=15000)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# The national help line of the tests (the real one is set in the deployment's environment).
PAGE_SETTINGS = {"help_line_phone": "0 800 00 00 00", "help_line_hours": "Du lundi au vendredi, de 9 h à 18 h",
                 "help_chat_url": "https://chat.example.invalid/"}


@pytest.fixture(scope="session")
def live_server(database_url):
    """The app served on 127.0.0.1 on a free port, in a thread, for the whole session."""
    app = create_app({"database": {"url": database_url}, "page": PAGE_SETTINGS})
    with serving(app) as url:
        yield url
    app.extensions["mapservice.databases"].dispose()


# Chromium, launched from the session's one Playwright driver (conftest.playwright_driver): Playwright's sync
# API runs one driver per thread.
@pytest.fixture(scope="session")
def browser(playwright_driver):
    # launch() gives the browser a fresh temporary profile (user-data-dir) and removes it afterwards.
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class Visit:
    """A page in its own browser context, with what it requested and what went wrong in it."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # console errors (a refused request shows there too)
    exceptions: list[str] = field(default_factory=list)  # uncaught JavaScript errors

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests
                if not (url.startswith(self.origin + "/") or url.startswith(("data:", "blob:")))]


@contextlib.contextmanager
def browsing(browser: Browser, origin: str, default_path: str | None = "/"):
    """Yields open_page(path, **context options) -> Visit, each in a fresh context (its own cookies). When the
    block ends, the contexts are closed and checked: the browser asked nothing of any other host, hit no
    Content-Security-Policy violation and no script error."""
    opened: list[Visit] = []

    def open_page(path: str | None = default_path, viewport=DESKTOP, **options) -> Visit:
        context = browser.new_context(viewport=viewport, locale="fr-FR", **options)
        page = context.new_page()
        page.set_default_timeout(15000)
        found = Visit(page=page, origin=origin)
        context.on("request", lambda request: found.requests.append(request.url))
        page.on("console", lambda msg: found.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: found.exceptions.append(str(exc)))
        opened.append(found)
        if path is not None:
            page.goto(origin + path)
        return found

    yield open_page
    for found in opened:
        found.page.context.close()
    for found in opened:
        assert found.foreign_requests() == [], "the page asked another host"
        assert not [e for e in found.errors if "Content Security Policy" in e], found.errors
        assert found.exceptions == [], found.exceptions


@pytest.fixture
def visit(browser: Browser, live_server):
    """visit(path, **context options) -> Visit on the public pages (see browsing)."""
    with browsing(browser, live_server) as open_page:
        yield open_page


def serious_accessibility_violations(page: Page) -> list[dict]:
    """axe-core (vendored for the tests, never served) run in the page: serious and critical violations."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;window.axe = axe;")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
