"""A 100 MB upload streams to disk: the server's peak memory barely moves.

The app runs in its own process (`flask run`) so that its peak resident set size
(VmHWM) can be read from /proc before and after the upload.
"""

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from linkmsg.extensions import db

from .conftest import build_app
from .factories import PASSWORD, connect, make_member

MB = 1024 * 1024
LIMIT = 100 * MB

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1))


class Client:
    """Just enough of a browser over http.client: cookies, CSRF tokens, streamed bodies."""

    def __init__(self, port):
        self.port, self.cookie = port, None

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return response.status, response.getheader("Location"), data.decode("utf-8", "replace")

    def token(self, path="/"):
        _, _, page = self.request("GET", path)
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1), page

    def login(self, email):
        token, _ = self.token("/login")
        body = f"email={email}&password={PASSWORD.replace(' ', '+')}&csrf_token={token}"
        status, _, _ = self.request(
            "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert status == 303

    def upload(self, path, file_path, name):
        """POST the compose form with one file, streaming the file from disk."""
        token, page = self.token(path)
        key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', page).group(1)
        boundary = uuid.uuid4().hex
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
            for field, value in (
                ("csrf_token", token),
                ("idempotency_key", key),
                ("body", "big file"),
            )
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        )
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = os.path.getsize(file_path)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head.encode()) + size + len(tail)))
        conn.putheader("Cookie", self.cookie)
        conn.endheaders()
        conn.send(head.encode())
        with open(file_path, "rb") as handle:
            while chunk := handle.read(MB):
                conn.send(chunk)
        conn.send(tail)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        conn.close()
        return response.status, response.getheader("Location"), data


def make_file(path, size):
    line = b"LinkMsg streams uploads to disk; this line repeats to fill the file.\n"
    with open(path, "wb") as handle:
        full, rest = divmod(size, len(line))
        block = line * 16384
        written = 0
        while written + len(block) <= full * len(line):
            handle.write(block)
            written += len(block)
        handle.write(line * ((full * len(line) - written) // len(line)))
        handle.write(line[:rest])
    assert os.path.getsize(path) == size


def test_a_100_mb_upload_streams_to_disk_and_one_byte_more_is_refused(sqlite_template, tmp_path):
    db_path = tmp_path / "server.sqlite3"
    shutil.copyfile(sqlite_template, db_path)
    url = f"sqlite:///{db_path}"
    setup = build_app(url, tmp_path)
    with setup.app_context():
        ann, bob = make_member("Ann Lee"), make_member("Bob Stone")
        connect(ann, bob)
        db.engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "upload-test",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "MAX_ATTACHMENT_BYTES": str(LIMIT),
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port), "--no-reload"],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = Client(port)
        for _ in range(100):
            try:
                client.request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        client.login(ann.email)
        compose = f"/messaging/new/{bob.handle}"

        # Warm up every code path with a small upload, then take the baseline.
        small = tmp_path / "small.txt"
        make_file(small, 2 * MB)
        status, location, _ = client.upload(compose, small, "small.txt")
        assert status == 303
        thread = location.split("#")[0]
        before = peak_rss_kb(server.pid)

        big = tmp_path / "big.txt"
        make_file(big, LIMIT)
        status, _, _ = client.upload(thread, big, "big.txt")
        assert status == 303
        grown_mb = (peak_rss_kb(server.pid) - before) / 1024
        print(f"peak RSS grew by {grown_mb:.1f} MB for a 100 MB upload")
        assert grown_mb < 30, f"peak RSS grew by {grown_mb:.1f} MB for a 100 MB upload"
        stored = [
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(tmp_path / "uploads")
            for name in names
        ]
        assert LIMIT in stored

        with open(big, "ab") as handle:
            handle.write(b"!")
        status, _, page = client.upload(thread, big, "big-plus-one.txt")
        assert status == 422
        assert "“big-plus-one.txt” is larger than 100 MB, the most an attachment can be." in page
        assert 'data-testid="form-error"' in page
        big.unlink()
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stderr.close()
