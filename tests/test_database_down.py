"""The database goes away: every page answers 503 with Retry-After and an honest page that
asks the database nothing, /healthz says so, and the site comes back by itself.

The test starts its own PostgreSQL cluster (initdb, pg_ctl) so that it can stop it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade

from linkmsg.extensions import db

from .conftest import build_app, service_unavailable
from .factories import Browser, by_testid, make_member, soup
from .test_scale_out import free_port


class PrivateCluster:
    """A PostgreSQL cluster of our own in a temporary folder, on a free loopback port.

    initdb refuses to run as root, so under root the cluster belongs to `postgres`.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_user: list[str] = []
        self.base = Path(tempfile.mkdtemp(prefix="linkmsg-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.base)
                service_unavailable("running as root and there is no postgres user for initdb")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.base / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off"
        )
        log = str(self.base / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """As if the server died: no shutdown checkpoint, connections cut at once."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _postgres_bin_dir() -> Path | None:
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(initdb).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture
def cluster():
    bin_dir = _postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        service_unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster = PrivateCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def site(cluster, tmp_path):
    """The app on the private cluster, with pool_pre_ping as in production."""
    app = build_app(cluster.url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True})
    with app.app_context():
        upgrade()
        ann = make_member("Ann Lee")
    yield app, ann
    with app.app_context():
        db.engine.dispose()


def assert_unavailable_page(response, *, htmx: bool = False):
    assert response.status_code == 503, response.get_data(as_text=True)[:800]
    # 30 s (the rate limiter rewrites it on its routes, rounding down a second).
    assert int(response.headers["Retry-After"]) in (29, 30)
    error = by_testid(response, "error")
    assert len(error) == 1 and error[0]["data-status"] == "503"
    assert "can't reach its database right now" in error[0].get_text(" ", strip=True)
    page = soup(response)
    if htmx:
        assert page.find("header") is None  # the fragment alone
    else:
        assert page.select_one("h1").get_text(strip=True) == "Temporarily unavailable"
        assert page.select_one(".brand") is not None  # the site's own look, not a bare 500
        # Nothing that needed the database: no member menu, no counts, no event stream.
        assert by_testid(response, "logout") == []
        assert page.select_one("#live") is None


def test_database_down_answers_503_with_retry_after_and_the_site_recovers(cluster, site):
    app, ann = site
    member = Browser(app)
    member.login(ann)
    assert member.get("/messaging").status_code == 200
    token = member.token()
    visitor = Browser(app)
    visitor_token = visitor.token()

    cluster.stop()

    # The member's pages: the session's member cannot even be loaded.
    assert_unavailable_page(member.get("/messaging"))
    assert_unavailable_page(member.get("/login"))
    assert_unavailable_page(member.get("/messaging", htmx=True), htmx=True)
    labels = member.client.post(
        "/messaging/labels", data={"csrf_token": token, "name": "Recruiters"}
    )
    assert_unavailable_page(labels)
    # A visitor logging in: the form's own query fails.
    login = visitor.client.post(
        "/login", data={"csrf_token": visitor_token, "email": ann.email, "password": ann.password}
    )
    assert_unavailable_page(login)

    health = member.client.get("/healthz")
    assert health.status_code == 503
    assert health.headers["Retry-After"] == "30"
    assert health.json["checks"]["database"].startswith("error: OperationalError")

    cluster.start()

    # The same app, not restarted: the pool finds its dead connections and reconnects.
    inbox = member.get("/messaging")
    assert inbox.status_code == 200
    assert len(by_testid(inbox, "logout")) == 1
    assert member.client.get("/healthz").status_code == 200
    saved = member.post("/messaging/labels", {"name": "Recruiters"})
    assert saved.status_code == 303
    assert "Recruiters" in member.get("/messaging/labels").get_data(as_text=True)


def test_a_pool_with_every_connection_busy_answers_503_not_500(app_factory, database_url):
    # In a reconnect storm every connection of a process's pool can be busy for longer
    # than DB_POOL_TIMEOUT. That is the site being overloaded, not a bug of the request:
    # an honest 503 that asks the database nothing, then the next request is served.
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool's size and timeout are set for PostgreSQL")
    app = app_factory(DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=0.2)
    with app.app_context():
        member = make_member("Ann Lee")
    page = Browser(app)
    page.login(member)
    with app.app_context():
        held = db.engine.connect()  # the pool's only connection, busy elsewhere
        try:
            busy = page.get("/messaging")
        finally:
            held.close()
    assert busy.status_code == 503, busy.get_data(as_text=True)[:800]
    assert int(busy.headers["Retry-After"]) > 0
    error = by_testid(busy, "error")
    assert len(error) == 1 and "very busy right now" in error[0].get_text(" ", strip=True)
    assert by_testid(busy, "logout") == []  # the page asked the database nothing
    assert page.get("/messaging").status_code == 200
