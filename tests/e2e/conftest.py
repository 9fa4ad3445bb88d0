"""Browser tests: the app served on a real port, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from linkmsg.extensions import db

from ..conftest import build_app, service_unavailable
from ..live import whole_bodies

CHROMIUM = os.environ.get("LINKMSG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        service_unavailable(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class LiveServer:
    url: str
    app: object


@pytest.fixture
def live_server(sqlite_template, tmp_path):
    """The app on SQLite, served by a threaded WSGI server on a free loopback port."""
    path = tmp_path / "live.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = build_app(f"sqlite:///{path}", tmp_path)
    server = make_server("127.0.0.1", 0, whole_bodies(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(params=[True, False], ids=["js-on", "js-off"])
def page(request, chromium):
    context = chromium.new_context(java_script_enabled=request.param)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.js_enabled = request.param
    yield page
    context.close()


# Chromium reports a Content-Security-Policy violation to the page as an event, not always
# as a console message Playwright sees: the page reports each one on the console itself.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " +
    (event.blockedURI || "inline code") + " at " + event.sourceFile + ":" + event.lineNumber +
    (event.sample ? " (" + event.sample + ")" : ""));
});
"""


class BrowserErrors:
    """Console errors, uncaught exceptions and CSP violations of every page of the contexts
    it watches (pages opened later included)."""

    def __init__(self):
        self.seen: list[str] = []

    def watch(self, context):
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.seen.append(f"uncaught: {error.error}"))
        return context

    def _console(self, message):
        if message.type == "error":
            where = message.location.get("url", "")
            self.seen.append(f"{message.text} [{message.page.url if message.page else where}]")


@pytest.fixture
def browser_errors():
    """Watch contexts with `browser_errors.watch(context)`: the test fails if any of their
    pages logged an error or broke the Content-Security-Policy."""
    errors = BrowserErrors()
    yield errors
    assert not errors.seen, "The browser reported:\n" + "\n".join(errors.seen)


E2E_PASSWORD = "a long enough secret"


def make_members(app, *names: str, connected: bool = True) -> list[int]:
    """Members with full profiles (email: <handle>@example.com), connected in a chain."""
    from linkmsg.services import accounts, network

    with app.app_context():
        ids = []
        for name in names:
            member = accounts.register(f"{accounts.slugify(name)}@example.com", E2E_PASSWORD, name)
            accounts.update_profile(
                member.id, accounts.ProfileInput(name, "Engineer", "Lisbon", "")
            )
            ids.append(member.id)
        if connected:
            for a, b in zip(ids, ids[1:], strict=False):
                network.accept(b, network.invite(a, b).invitation.id)
        return ids


def log_in(page, base_url: str, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome,", exact=False)).to_be_visible()
