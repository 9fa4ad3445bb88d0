"""gunicorn as checked in (gunicorn.conf.py), from the socket up.

In a reconnect storm the kernel drops a client's final handshake packet together with
its request while the listen queue is full; the connection is completed later and the
request follows seconds after, on the client's retransmission timer. gunicorn's gevent
worker gives every request of a connection, the first included, `keepalive` seconds: at
its default 2 s, such clients were closed without an answer (bench/streams.py).
"""

from __future__ import annotations

import socket
import time

from .test_restart import site  # noqa: F401 - the fixture: gunicorn, one gevent worker
from .test_scale_out import ROOT

LATE = 3.0  # seconds: past gunicorn's default of 2 s


def answer(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_request_that_comes_seconds_after_its_connection_is_answered(site):  # noqa: F811
    server, _ = site
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        time.sleep(LATE)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]


def test_a_gevent_worker_accepts_many_connections_at_each_wake_up(monkeypatch):
    """With several workers gunicorn sets its gevent server's `max_accept` to 1: a worker
    busy with a storm then accepted one connection per turn of its loop, the listen queue
    overflowed, and reconnects were reset (bench/README.md). The checked-in settings keep
    gevent's batch."""
    import runpy

    from gevent import socket as gsocket
    from gunicorn.workers import ggevent

    monkeypatch.setattr(ggevent, "StreamServer", ggevent.StreamServer)  # restored after
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "gevent" and settings["max_accept"] > 1
    stub = type("Worker", (), {"handle_exit": staticmethod(lambda *a: None)})()
    with monkeypatch.context() as patched:  # the hook's other settings stay out of pytest
        patched.setattr("signal.signal", lambda *a: None)
        patched.setattr("signal.siginterrupt", lambda *a: None)
        patched.setattr("gc.freeze", lambda: None)
        settings["post_worker_init"](stub)
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = ggevent.StreamServer(listener, handle=lambda *a: None)
    try:
        server.max_accept = 1  # what gunicorn's worker does when workers > 1
        assert server.max_accept == settings["max_accept"]
    finally:
        server.close()
