"""Helpers for tests that need the app on a real port and a real event-stream client."""

from __future__ import annotations

import http.client
import queue
import socket
import threading
import time

from werkzeug.serving import make_server

from bench.sse import SSE, parse_block

__all__ = ["SSE", "EventStream", "LiveServer", "whole_bodies"]


def whole_bodies(app):
    """The app with every response but a live stream read whole and closed before the server
    writes it. Werkzeug's development server does not close a response whose browser went
    away before it was drained (its drain loop raises before `close()`), so a favicon the
    browser dropped left its file open for the garbage collector to find in another test."""

    def serve(environ, start_response):
        streaming = False

        def begin(status, headers, exc_info=None):
            nonlocal streaming
            streaming = any(
                name.lower() == "content-type" and value.startswith("text/event-stream")
                for name, value in headers
            )
            return start_response(status, headers, exc_info)

        body = app(environ, begin)
        if streaming:
            return body
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return serve


class LiveServer:
    """The app served by a threaded WSGI server on a free loopback port."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, whole_bodies(app), threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # Streams still open end first, and are waited for: a stream left running would
        # wake at its next keep-alive and take a connection from the engine the test's
        # teardown has just disposed of, never to be closed.
        from linkmsg.realtime.stream import REGISTRY

        registry = self.app.extensions.get(REGISTRY)
        if registry is not None:
            registry.close_all()
            deadline = time.monotonic() + 5
            while registry.by_member and time.monotonic() < deadline:
                time.sleep(0.02)
            registry.closing = False  # the app may be served again
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


class EventStream:
    """A GET /stream read line by line, as an EventSource would.

    A reader thread does blocking reads into a queue, so that waiting for an event that
    does not come never leaves the socket in a timed-out state.
    """

    def __init__(
        self, port: int, *, cookie: str | None = None, path: str = "/stream", headers=None
    ):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        request_headers = {"Accept": "text/event-stream", **(headers or {})}
        if cookie:
            request_headers["Cookie"] = f"session={cookie}"
        self.conn.request("GET", path, headers=request_headers)
        self.sock = self.conn.sock  # the response takes the socket over once streaming
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while raw := self.response.fp.readline():
                self.lines.put(raw.decode().rstrip("\n").rstrip("\r"))
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def next(self, timeout: float = 5.0, *, skip_comments: bool = True) -> SSE | None:
        """The next event (or comment block), or None when nothing came in time."""
        block: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)  # closed: stays closed
                return None
            if line != "":
                block.append(line)
                continue
            event, block = parse_block(block), []
            if not event.is_comment or (event.comments and not skip_comments):
                return event

    def events(self, count: int, timeout: float = 5.0) -> list[SSE]:
        found = []
        while len(found) < count:
            event = self.next(timeout)
            if event is None:
                break
            found.append(event)
        return found

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.join(timeout=5)
        self.response.close()
        self.sock.close()
        self.conn.close()
