"""Scale-out: two gunicorn instances (gunicorn.conf.py as checked in) on one PostgreSQL
database and one Redis. A message sent through instance A's compose form reaches the
recipient's event stream held open by instance B, and B's pages show it: one site.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup

from linkmsg.extensions import db

from .conftest import build_app, require_redis, throwaway_postgres
from .factories import connect, make_member
from .live import EventStream

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py` on a free port, with the given environment."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env={**os.environ, **env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.output()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn on {self.url} not ready in {timeout} s:\n{self.output()}")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def shared_database(tmp_path_factory):
    """A throwaway PostgreSQL database, built by the project's migrations."""
    with throwaway_postgres("linkmsg_scale", tmp_path_factory.mktemp("scale-migrate")) as url:
        yield url


@pytest.fixture
def shared_redis():
    return require_redis()


@pytest.fixture
def two_instances(shared_database, shared_redis, tmp_path):
    site = uuid.uuid4().hex[:8]
    env = {
        "DATABASE_URL": shared_database,
        "REDIS_URL": shared_redis,
        "SECRET_KEY": f"scale-out-{site}",  # the same on every instance: one login for all
        "EVENT_CHANNEL_PREFIX": f"linkmsg-scale-{site}:",
        "RATELIMIT_KEY_PREFIX": f"linkmsg-scale-{site}",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "WEB_CONCURRENCY": "1",
        "SSE_KEEPALIVE_SECONDS": "1",
    }
    instances = [Gunicorn(env, tmp_path / f"gunicorn-{name}.log") for name in "ab"]
    try:
        for instance in instances:
            instance.wait_ready()
        yield instances
    finally:
        for instance in instances:
            instance.terminate()  # both shut down at once
        for instance in instances:
            instance.stop()


def log_in(base_url: str, email: str, password: str) -> httpx.Client:
    """A member's browser on one instance, logged in through the form."""
    client = httpx.Client(base_url=base_url, timeout=10)
    page = BeautifulSoup(client.get("/login").text, "lxml")
    token = page.find("meta", attrs={"name": "csrf-token"})["content"]
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text[:500]
    return client


def test_a_message_sent_through_one_instance_reaches_a_stream_on_another(
    shared_database, two_instances, tmp_path
):
    instance_a, instance_b = two_instances
    app = build_app(shared_database, tmp_path)
    with app.app_context():
        alice, bob = make_member("Alice Moreau"), make_member("Bob Stone")
        connect(alice, bob)
    with app.app_context():  # once the first context has given its connection back
        db.engine.dispose()

    bob_browser = log_in(instance_b.url, bob.email, bob.password)
    alice_browser = log_in(instance_a.url, alice.email, alice.password)
    stream = EventStream(instance_b.port, cookie=bob_browser.cookies["session"])
    try:
        assert stream.status == 200
        first = stream.next(timeout=5, skip_comments=False)
        assert first is not None and "open" in first.comments

        compose = BeautifulSoup(alice_browser.get(f"/messaging/new/{bob.handle}").text, "lxml")
        form = compose.select_one('[data-testid="compose-form"]')
        fields = {
            field["name"]: field.get("value", "")
            for field in form.select("input[name]")
            if field.get("type") != "file"
        }
        sent = alice_browser.post(
            f"/messaging/new/{bob.handle}", data={**fields, "body": "Hello from instance A"}
        )
        assert sent.status_code == 303, sent.text[:500]

        event = stream.next(timeout=10)
        assert event is not None, "no event reached Bob's stream on instance B"
        assert event.event == "update"
        assert "Hello from instance A" in event.data
    finally:
        stream.close()

    # Instance B's pages show what went through instance A: one site.
    thread_path = sent.headers["Location"].split("#", 1)[0]
    inbox = BeautifulSoup(bob_browser.get("/messaging").text, "lxml")
    previews = [
        el.get_text(" ", strip=True) for el in inbox.select('[data-testid="thread-preview"]')
    ]
    assert any("Hello from instance A" in preview for preview in previews), previews
    thread = BeautifulSoup(bob_browser.get(thread_path).text, "lxml")
    bodies = [el.get_text(" ", strip=True) for el in thread.select('[data-testid="message-body"]')]
    assert bodies == ["Hello from instance A"]
    alice_browser.close()
    bob_browser.close()
