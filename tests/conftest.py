"""Fixtures: an app per test on SQLite and on PostgreSQL, a browser-like client, members.

Each database is built by the real migrations (`flask db upgrade`) once per run; each
test then gets a fresh copy (SQLite: a copied file; PostgreSQL: its own database,
emptied after the test). A service a test needs but cannot reach skips the test with
its reason, or fails it when LINKMSG_REQUIRE_SERVICES=1 (as CI sets).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

import jinja2
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from linkmsg import create_app
from linkmsg.config import TestConfig
from linkmsg.extensions import db, limiter

from .factories import Browser, make_member

REQUIRE_SERVICES = os.environ.get("LINKMSG_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "LINKMSG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("LINKMSG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_unavailable(reason: str):
    """Skip the test with its reason, or fail it when services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require_redis() -> str:
    """The tests' Redis URL, once Redis answers; else skip (or fail in CI)."""
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
            client.ping()
    except redis.RedisError as error:
        service_unavailable(f"Redis not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Templates compiled once per test run, not once per test's app."""

    def __init__(self):
        self.store = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_CACHE = _MemoryBytecodeCache()


def _forget_dead_limit_store() -> None:
    """The limiter is one object for all the apps of a test run, and Flask-Limiter keeps
    across init_app that an earlier app's store was found dead (it then counts in memory
    and re-checks the store on a timer). Each app starts as a fresh process would."""
    limiter._storage_dead = False
    limiter._Limiter__check_backend_count = 0
    limiter._Limiter__last_check_backend = 0.0
    # ... and an app that switches the limits off inherits no store, nor passes its
    # switch on to the next app (init_app keeps `enabled` unless a config sets it).
    limiter._limiter = None
    limiter.enabled = True


def build_app(database_url: str, tmp_path, **overrides):
    _forget_dead_limit_store()
    config = {key: getattr(TestConfig, key) for key in dir(TestConfig) if key.isupper()}
    config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        UPLOAD_FOLDER=str(tmp_path / "uploads"),
        # Each app counts its own rate limits, even in a shared Redis.
        RATELIMIT_KEY_PREFIX=f"linkmsg-test-{uuid.uuid4().hex[:8]}",
        EVENT_CHANNEL_PREFIX=f"linkmsg-test-{uuid.uuid4().hex[:8]}:",
        **overrides,
    )
    app = create_app(config)
    app.jinja_env.bytecode_cache = _TEMPLATE_CACHE
    return app


def _migrate(url: str, tmp_path, revision: str = "head") -> None:
    app = build_app(url, tmp_path)
    with app.app_context():
        upgrade(revision=revision)
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite3"
    _migrate(f"sqlite:///{path}", folder)
    return path


@contextlib.contextmanager
def throwaway_postgres(prefix: str, tmp_dir, revision: str = "head"):
    """A new PostgreSQL database built by the migrations (up to `revision`), dropped
    afterwards (its URL)."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as error:
        admin.dispose()
        service_unavailable(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(error).__name__}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # A throwaway database: no need to wait for the disk on every commit.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url, tmp_dir, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def copy_of_postgres(template_url: str, prefix: str):
    """A new PostgreSQL database copied from the database at `template_url` (which nobody
    may be connected to), dropped afterwards (its URL). Copying a small database is far
    cheaper than building its rows again through the services."""
    template = sa.engine.make_url(template_url).database
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        yield (
            sa.engine.make_url(template_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory):
    with throwaway_postgres("linkmsg_test", tmp_path_factory.mktemp("pg-migrate")) as url:
        yield url


def _empty_postgres(app) -> None:
    with app.app_context():
        # DELETE beats TRUNCATE on tables this small (TRUNCATE swaps files on disk).
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A migrated, empty database for this test, on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "linkmsg.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def app_factory(database_url, tmp_path):
    """Build apps on this test's database; their connections are closed after the test."""
    built = []

    def factory(**overrides):
        built.append(build_app(database_url, tmp_path, **overrides))
        return built[-1]

    yield factory
    for index, app in enumerate(built):
        if index == 0 and database_url.startswith("postgresql"):
            _empty_postgres(app)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory, request):
    """The test's app, with the settings of its `app_config` marker, if any."""
    marker = request.node.get_closest_marker("app_config")
    return app_factory(**(marker.kwargs if marker else {}))


@pytest.fixture
def ctx(app):
    """An application context for tests that call services directly."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def member_factory(app):
    def factory(**kwargs):
        with app.app_context():
            return make_member(**kwargs)

    return factory


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def live_overrides():
    """Settings a module's live apps need beyond the fast keep-alive (override per module)."""
    return {}


@pytest.fixture(params=["memory", "redis"])
def live_app(request, app_factory, live_overrides):
    """An app served on a real port, on each event transport in turn: (app, server)."""
    from .live import LiveServer

    overrides = {"SSE_KEEPALIVE_SECONDS": 1, **live_overrides}
    if request.param == "redis":
        overrides["REDIS_URL"] = require_redis()
    app = app_factory(**overrides)
    with LiveServer(app) as server:
        yield app, server
