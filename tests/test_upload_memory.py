"""A 100 MB upload streams to disk, and a pixel bomb is refused from its header: the
server's peak memory and CPU time barely move.

The app runs in its own process (`flask run`) so that its peak resident set size
(VmHWM) can be read from /proc before and after the upload.
"""

import contextlib
import http.client
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zipfile

import pytest
from PIL import Image

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
        self.port, self.cookies = port, {}

    @property
    def cookie(self) -> str:
        """The Cookie header: every cookie the server has set so far."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = self.cookie
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        # Every cookie set (a login sets the session and the known-device cookie).
        for cookie in response.headers.get_all("Set-Cookie") or ():
            name, value = cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
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

    def upload(self, path, uploads, *, field="files", fields=(("body", "big file"),)):
        """POST a form with files [(path on disk, name)], streaming each from disk."""
        token, page = self.token(path)
        key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', page)
        values = [("csrf_token", token), *fields]
        if key:
            values.append(("idempotency_key", key.group(1)))
        boundary = uuid.uuid4().hex
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in values
        ).encode()
        parts = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            for _, name in uploads
        ]
        tail = f"--{boundary}--\r\n".encode()
        length = len(head) + len(tail)
        length += sum(
            len(part) + os.path.getsize(file) + 2
            for part, (file, _) in zip(parts, uploads, strict=True)
        )
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(length))
        conn.putheader("Cookie", self.cookie)
        conn.endheaders()
        conn.send(head)
        for part, (file, _) in zip(parts, uploads, strict=True):
            conn.send(part)
            with open(file, "rb") as handle:
                while chunk := handle.read(MB):
                    conn.send(chunk)
            conn.send(b"\r\n")
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def flask_server(sqlite_template, tmp_path, **settings):
    """The app under `flask run` in its own process, with Ann and Bob connected; yields
    (process, a client logged in as Ann, Bob)."""
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
        **{name: str(value) for name, value in settings.items()},
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
        yield server, client, bob
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stderr.close()


def test_a_100_mb_upload_streams_to_disk_and_one_byte_more_is_refused(sqlite_template, tmp_path):
    with flask_server(sqlite_template, tmp_path, MAX_ATTACHMENT_BYTES=LIMIT) as (
        server,
        client,
        bob,
    ):
        compose = f"/messaging/new/{bob.handle}"

        # Warm up every code path with a small upload, then take the baseline.
        small = tmp_path / "small.txt"
        make_file(small, 2 * MB)
        status, location, _ = client.upload(compose, [(small, "small.txt")])
        assert status == 303
        thread = location.split("#")[0]
        before = peak_rss_kb(server.pid)

        big = tmp_path / "big.txt"
        make_file(big, LIMIT)
        status, _, _ = client.upload(thread, [(big, "big.txt")])
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
        status, _, page = client.upload(thread, [(big, "big-plus-one.txt")])
        assert status == 422
        assert "“big-plus-one.txt” is larger than 100 MB, the most an attachment can be." in page
        assert 'data-testid="form-error"' in page
        big.unlink()


def save_png(path, side: int) -> None:
    """A flat-colour PNG: a few hundred KB on the wire, `side`² pixels to decode."""
    Image.new("RGB", (side, side), (10, 102, 194)).save(path, "PNG")


# What one upload may cost the server at most: CPU seconds, and growth of its peak memory.
CPU_BUDGET, MEMORY_BUDGET_MB = 0.5, 100


def test_pixel_bombs_cost_the_server_almost_nothing(sqlite_template, tmp_path):
    """Ten 9400×9400 PNGs in one message (and one as a profile picture) are refused from
    their headers; the largest image allowed is decoded within the budget of one upload."""
    bomb = tmp_path / "bomb.png"
    save_png(bomb, 9400)
    largest = tmp_path / "largest.png"
    save_png(largest, 4000)  # 16 megapixels, the default MAX_IMAGE_PIXELS
    with flask_server(sqlite_template, tmp_path) as (server, client, bob):
        compose = f"/messaging/new/{bob.handle}"
        small = tmp_path / "small.png"
        save_png(small, 200)
        status, location, _ = client.upload(compose, [(small, "warm-up.png")])
        assert status == 303
        thread = location.split("#")[0]

        def cost(send):
            rss, cpu = peak_rss_kb(server.pid), cpu_seconds(server.pid)
            result = send()
            used_cpu = cpu_seconds(server.pid) - cpu
            grown_mb = (peak_rss_kb(server.pid) - rss) / 1024
            print(f"{used_cpu:.2f} s of CPU, peak RSS +{grown_mb:.1f} MB")
            return result, used_cpu, grown_mb

        (status, _, page), used_cpu, grown_mb = cost(
            lambda: client.upload(thread, [(bomb, f"bomb-{n}.png") for n in range(10)])
        )
        assert status == 422
        assert (
            "“bomb-0.png” is too large an image to process (9,400 × 9,400 pixels): "
            "the most is 16 megapixels, or 64 for a JPEG."
        ) in page
        assert used_cpu < CPU_BUDGET and grown_mb < MEMORY_BUDGET_MB

        (status, _, page), used_cpu, grown_mb = cost(
            lambda: client.upload(
                "/profile/edit",
                [(bomb, "me.png")],
                field="avatar",
                fields=(("name", "Ann Lee"), ("headline", "Engineer"), ("location", "Lisbon")),
            )
        )
        assert status == 422 and "“me.png” is too large an image to process" in page
        assert used_cpu < CPU_BUDGET and grown_mb < MEMORY_BUDGET_MB

        (status, _, _), used_cpu, grown_mb = cost(
            lambda: client.upload(thread, [(largest, "largest.png")])
        )
        assert status == 303
        assert used_cpu < CPU_BUDGET and grown_mb < MEMORY_BUDGET_MB


def make_text_file(path, size: int) -> None:
    """Text that does not compress away (hex of random bytes), `size` bytes of it."""
    with open(path, "w") as handle:
        while size > 0:
            line = os.urandom(min(size, 65536) // 2).hex()[: size - 1] + "\n"
            handle.write(line)
            size -= len(line)


def test_an_export_streams_without_a_temporary_file(sqlite_template, tmp_path):
    """Three 20 MB files exported: the ZIP starts at once, no temporary file holds it and
    the server's memory barely moves; every file comes back byte for byte."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with flask_server(sqlite_template, tmp_path, TMPDIR=temp) as (server, client, bob):
        sent = []
        for n in range(3):
            sent.append(tmp_path / f"part-{n}.txt")
            make_text_file(sent[-1], 20 * MB)
        status, location, _ = client.upload(
            f"/messaging/new/{bob.handle}", [(path, path.name) for path in sent]
        )
        assert status == 303
        export = location.split("#")[0] + "/export"
        client.request("GET", export)  # warm up every code path
        before = peak_rss_kb(server.pid)

        conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=60)
        conn.request("GET", export, headers={"Cookie": client.cookie})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/zip"
        first = response.read(MB)
        open_files = []
        for fd in os.listdir(f"/proc/{server.pid}/fd"):
            with contextlib.suppress(OSError):
                open_files.append(os.readlink(f"/proc/{server.pid}/fd/{fd}"))
        assert not [name for name in open_files if name.startswith(str(temp))], open_files
        data = first + response.read()
        conn.close()

        grown_mb = (peak_rss_kb(server.pid) - before) / 1024
        print(f"peak RSS grew by {grown_mb:.1f} MB for a {len(data) / MB:.0f} MB export")
        assert grown_mb < 30
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [name for name in archive.namelist() if name.startswith("attachments/")]
        assert len(names) == 3
        for name, path in zip(names, sent, strict=True):
            assert archive.read(name) == path.read_bytes()
        assert "conversation.json" in archive.namelist()
