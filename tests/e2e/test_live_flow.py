"""Live delivery in Chromium: a message appears without reload, badges update on other
pages, and after the server goes away and comes back the stream resumes by itself."""

import shutil
import socket
import threading
import time

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import messaging

from ..conftest import build_app
from ..live import whole_bodies
from .conftest import log_in, make_members


class RestartableServer:
    """A threaded WSGI server that can be stopped — cutting every open event stream — and
    started again on the same port, as a deploy or a crash would."""

    def __init__(self, app):
        self.app = app
        self.sockets: set[socket.socket] = set()
        self.port = None
        self._start()

    def _wsgi(self, environ, start_response):
        sock = environ.get("werkzeug.socket")
        if sock is not None and environ.get("PATH_INFO") == "/stream":
            self.sockets.add(sock)
        return self.app(environ, start_response)

    def _start(self):
        self.server = make_server(
            "127.0.0.1", self.port or 0, whole_bodies(self._wsgi), threaded=True
        )
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restart(self, down_for: float = 1.0):
        self.stop()
        time.sleep(down_for)
        self._start()


@pytest.fixture
def server(sqlite_template, tmp_path):
    path = tmp_path / "live.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = build_app(f"sqlite:///{path}", tmp_path, SSE_KEEPALIVE_SECONDS=2)
    running = RestartableServer(app)
    yield running
    running.stop()
    with app.app_context():
        db.engine.dispose()


def sign_in(chromium, server, email):
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, server.url, email)
    return context, page


def test_live_message_badge_and_resume_after_restart(server, chromium):
    app = server.app
    ids = make_members(app, "Alice Moreau", "Bob Stone")
    with app.app_context():
        thread_id = messaging.start(
            db.session.get(Member, ids[0]), db.session.get(Member, ids[1]), "Hi Bob"
        ).thread_id

    alice_ctx, alice = sign_in(chromium, server, "alice-moreau@example.com")
    bob_ctx, bob = sign_in(chromium, server, "bob-stone@example.com")
    try:
        bob.goto(f"{server.url}/messaging/t/{thread_id}")
        expect(bob.get_by_test_id("message")).to_have_count(1)
        bob.evaluate("window.__samePage = true")
        # Bob's second tab is on another page.
        other_tab = bob_ctx.new_page()
        other_tab.goto(server.url + "/network")
        expect(other_tab.get_by_test_id("unread-badge")).to_have_count(0)

        alice.goto(f"{server.url}/messaging/t/{thread_id}")
        alice.get_by_label("Write a message").fill("Are you free on Thursday?")
        alice.get_by_role("button", name="Send").click()

        expect(bob.get_by_test_id("message")).to_have_count(2)
        expect(bob.get_by_test_id("message-body").last).to_have_text("Are you free on Thursday?")
        expect(bob.locator("#live-announcer")).to_contain_text("New message from Alice Moreau")
        assert bob.evaluate("window.__samePage === true")  # no reload
        # Bob has the thread open, so it is read at once: no tab counts it as unread.
        expect(other_tab.get_by_test_id("unread-badge")).to_have_count(0)
        other_tab.close()

        # With the thread closed and only the inbox open, the badge and row update live.
        inbox_tab = bob_ctx.new_page()
        inbox_tab.goto(server.url + "/messaging")
        expect(inbox_tab.get_by_test_id("thread-row")).to_have_attribute("data-unread", "0")
        bob.close()  # only the inbox is open now
        alice.get_by_label("Write a message").fill("Or Friday?")
        alice.get_by_role("button", name="Send").click()
        expect(inbox_tab.get_by_test_id("unread-badge")).to_have_text("1")
        expect(inbox_tab.get_by_test_id("thread-row")).to_have_attribute("data-unread", "1")
        expect(inbox_tab.get_by_test_id("thread-preview")).to_have_text("Or Friday?")

        # Bob opens the thread again; then the server goes away and comes back.
        bob = bob_ctx.new_page()
        bob.goto(f"{server.url}/messaging/t/{thread_id}")
        expect(bob.get_by_test_id("message")).to_have_count(3)
        bob.evaluate("window.__samePage = true")
        server.restart()
        with app.app_context():
            messaging.reply(
                db.session.get(Member, ids[0]), thread_id, "Sent while you were reconnecting"
            )
        expect(bob.get_by_test_id("message-body").last).to_have_text(
            "Sent while you were reconnecting", timeout=20_000
        )
        expect(bob.get_by_test_id("message")).to_have_count(4)
        assert bob.evaluate("window.__samePage === true")
    finally:
        alice_ctx.close()
        bob_ctx.close()
