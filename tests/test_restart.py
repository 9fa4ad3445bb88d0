"""Restarts and reloads under gunicorn (gunicorn.conf.py as checked in) take under 2 s,
even with a member's event stream open: the stopping worker ends its streams at once
(`linkmsg.realtime.close_streams`), and the browser reconnects and replays.

Before the streams were closed this way, a stream held a stopping worker for all of
`graceful_timeout` (12.5 s seen).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from flask_migrate import upgrade

from linkmsg.extensions import db

from .conftest import build_app
from .factories import make_member
from .live import EventStream
from .test_scale_out import Gunicorn, log_in

QUICK = 2.0  # seconds a restart or reload may take


def worker_pids(master_pid: int) -> set[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return {int(pid) for pid in children.read_text().split()}


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def seconds_until_gone(pid: int, limit: float = 15.0) -> float:
    started = time.monotonic()
    while running(pid):
        assert time.monotonic() - started < limit, f"process {pid} still running after {limit} s"
        time.sleep(0.02)
    return time.monotonic() - started


def one_worker(server: Gunicorn, limit: float = 15.0) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pids = {pid for pid in worker_pids(server.process.pid) if running(pid)}
        if len(pids) == 1:
            return pids.pop()
        time.sleep(0.05)
    pytest.fail(f"gunicorn did not settle on one worker:\n{server.output()}")


@pytest.fixture
def site(tmp_path):
    """gunicorn, one gevent worker, on a migrated SQLite database with one member."""
    path = tmp_path / "linkmsg.sqlite3"
    url = f"sqlite:///{path}"
    app = build_app(url, tmp_path)
    with app.app_context():
        upgrade()
        ann = make_member("Ann Lee")
        db.engine.dispose()
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": "",  # the in-process transport: one worker holds the stream
        "SECRET_KEY": f"restart-{uuid.uuid4().hex[:8]}",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "WEB_CONCURRENCY": "1",
    }
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        yield server, ann
    finally:
        server.stop()


def open_stream(server: Gunicorn, ann) -> EventStream:
    browser = log_in(server.url, ann.email, ann.password)
    cookie = browser.cookies["session"]
    browser.close()  # no idle keep-alive connection: only the stream stays open
    stream = EventStream(server.port, cookie=cookie)
    assert stream.status == 200
    first = stream.next(timeout=5, skip_comments=False)
    assert first is not None and "open" in first.comments
    return stream


def test_a_reload_then_a_restart_each_take_under_two_seconds_with_a_stream_open(site):
    server, ann = site

    # SIGHUP: new workers start, the old one must go without waiting for the stream.
    old_worker = one_worker(server)
    stream = open_stream(server, ann)
    try:
        os.kill(server.process.pid, signal.SIGHUP)
        took = seconds_until_gone(old_worker)
        assert took < QUICK, f"the old worker took {took:.1f} s to exit:\n{server.output()}"
        assert stream.next(timeout=1) is None and stream.lines.get(timeout=1) is None, (
            "the stream did not end"
        )
    finally:
        stream.close()
    server.wait_ready()
    assert one_worker(server) != old_worker

    # SIGTERM: the worker, then the master, stop.
    worker = one_worker(server)
    stream = open_stream(server, ann)
    try:
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=15)
        took = time.monotonic() - started
        assert took < QUICK, f"gunicorn took {took:.1f} s to stop:\n{server.output()}"
        assert server.process.returncode == 0
        assert not running(worker)
        assert stream.next(timeout=1) is None and stream.lines.get(timeout=1) is None
    finally:
        stream.close()
