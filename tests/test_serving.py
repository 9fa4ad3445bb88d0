"""gunicorn as checked in (gunicorn.conf.py), from the socket up.

In a reconnect storm the kernel drops a client's final handshake packet together with
its request while the listen queue is full; the connection is completed later and the
request follows seconds after, on the client's retransmission timer. gunicorn's gevent
worker gives every request of a connection, the first included, `keepalive` seconds: at
2 s such clients were closed without an answer (bench/streams.py). A new connection now
has `first_request_wait` for its request; an idle one between requests still `keepalive`,
so that a proxy's idle connections do not hold a stopping worker.
"""

from __future__ import annotations

import runpy
import socket
import time
from types import SimpleNamespace

import pytest

from .test_restart import site  # noqa: F401 - the fixture: gunicorn, one gevent worker
from .test_scale_out import ROOT

LATE = 3.0  # seconds: past `keepalive` (2 s), well within `first_request_wait` (30 s)
SETTINGS = ("GUNICORN_KEEPALIVE", "GUNICORN_FIRST_REQUEST_WAIT", "GUNICORN_MAX_ACCEPT")
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(autouse=True)
def checked_in_settings(monkeypatch):
    """The file's own defaults, whatever this shell's environment says."""
    for name in (*SETTINGS, "GUNICORN_WORKER_CLASS"):
        monkeypatch.delenv(name, raising=False)


def answer(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def one_response(sock: socket.socket) -> bytes:
    """One whole response on a connection that stays open: its head, then the body of its
    Content-Length (the two can come in separate packets)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    assert len(body) == length, "more than one response"
    return head + b"\r\n\r\n" + body


def test_a_request_that_comes_seconds_after_its_connection_is_answered(site):  # noqa: F811
    server, _ = site
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        time.sleep(LATE)
        sock.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]


def test_an_idle_connection_is_closed_after_keepalive(site):  # noqa: F811
    """A proxy's idle connection does not wait the first request's 30 s (a stopping
    worker waits for it)."""
    server, _ = site
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(REQUEST)
        first = one_response(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first[:200]
        time.sleep(LATE)
        sock.settimeout(0.5)  # closed by the server while idle: nothing left to wait for
        assert sock.recv(65536) == b""


def test_the_gevent_worker_waits_for_a_first_request_and_accepts_in_batches(monkeypatch):
    """The hook as gunicorn runs it in a gevent worker: a connection's first read gets
    `first_request_wait`, the next ones `keepalive`; and with several workers gunicorn sets
    its server's `max_accept` to 1 (a worker busy with a storm then accepted one
    connection per turn of its loop, and the listen queue overflowed), which the server
    class the hook installs keeps at the batch."""
    import gevent
    from gevent import socket as gsocket
    from gunicorn.workers import ggevent

    # The worker's run() finds the server class by its module name when it starts.
    assert "StreamServer" in ggevent.GeventWorker.run.__code__.co_names
    monkeypatch.setattr(ggevent, "StreamServer", ggevent.StreamServer)  # restored after
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    worker = object.__new__(ggevent.GeventWorker)
    worker.cfg = SimpleNamespace(keepalive=settings["keepalive"])
    worker.handle_exit = lambda *a: None
    with monkeypatch.context() as patched:  # the hook's process-wide settings stay out
        patched.setattr("signal.signal", lambda *a: None)
        patched.setattr("signal.siginterrupt", lambda *a: None)
        patched.setattr("gc.freeze", lambda: None)
        settings["post_worker_init"](worker)

    def reads():
        return [worker.timeout_ctx().seconds for _ in range(3)]

    one, other = gevent.spawn(reads), gevent.spawn(reads)
    gevent.joinall([one, other])
    first, keepalive = settings["first_request_wait"], settings["keepalive"]
    assert first >= 10 * keepalive
    assert one.value == other.value == [first, keepalive, keepalive]

    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = ggevent.StreamServer(listener, handle=lambda *a: None)
    try:
        server.max_accept = 1  # what gunicorn's worker does when workers > 1
        assert server.max_accept == settings["max_accept"] > 1
    finally:
        server.close()
