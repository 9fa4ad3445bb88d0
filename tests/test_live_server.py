"""The test suite's own server (tests/live.py) closes what a dropped browser left behind.

Werkzeug's development server skips a response's `close()` when the client resets the
connection while the server drains its request body; the file of a static response then
stayed open until the garbage collector found it during another test, which failed that
test (CI, a favicon Chromium dropped).
"""

import gc
import shutil
import socket
import struct
import time
import warnings

from linkmsg.extensions import db

from .conftest import build_app
from .live import LiveServer


def reset_mid_body(port: int, path: str) -> None:
    """Ask for `path` with a body still arriving, then reset the connection."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".encode())
    until = time.monotonic() + 0.2
    while time.monotonic() < until:
        sock.sendall(b"x" * 65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_static_file_whose_browser_went_away_is_closed(sqlite_template, tmp_path):
    path = tmp_path / "live.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = build_app(f"sqlite:///{path}", tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        with LiveServer(app) as server:
            for _ in range(5):
                reset_mid_body(server.port, "/static/favicon.svg")
            time.sleep(0.3)
        gc.collect()
    with app.app_context():
        db.engine.dispose()
    unclosed = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
