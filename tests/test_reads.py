"""PostgreSQL: plain reads run outside a transaction, everything else inside one
(`linkmsg/reads.py`).

A page that only reads sends no BEGIN and no ROLLBACK, so its statements stay prepared
on the connection (psycopg forgets them at every rollback); a write, a row lock or a
savepoint still begins a transaction that the statements after it share, and a rollback
still undoes all of it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from linkmsg.extensions import db
from linkmsg.models import Member, ProfileView, utcnow
from linkmsg.reads import plain_read
from linkmsg.services import messaging

from .factories import Browser, connect, make_member

IDLE, INTRANS = psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INTRANS


@pytest.fixture
def database_url(postgres_database):
    """PostgreSQL only: SQLite begins its own transactions (`extensions._sqlite_begin`)."""
    return postgres_database


@pytest.fixture
def pg_app(app_factory):
    # One connection, so that every request and the checks below use the same one.
    return app_factory(DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0)


def _raw():
    """The psycopg connection under the app context's session."""
    return db.session.connection().connection.dbapi_connection


def _pg(statement) -> str:
    return str(statement.compile(dialect=postgresql.psycopg.dialect()))


def test_only_plain_reads_go_without_a_transaction():
    member = sa.table("member", sa.column("id"), sa.column("name"))
    reads = [
        _pg(sa.select(member).where(member.c.id == 1)),
        _pg(sa.select(member.c.id).where(member.c.name.ilike("%update%"))),
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "  select last_update, deleted_at from member",
    ]
    others = [
        _pg(sa.select(member).with_for_update()),
        _pg(sa.select(member).with_for_update(key_share=True)),
        _pg(sa.select(member).with_for_update(read=True)),
        _pg(sa.select(member).with_for_update(skip_locked=True)),
        _pg(sa.update(member).values(name="x")),
        _pg(sa.insert(member).values(name="x")),
        _pg(sa.delete(member)),
        "WITH moved AS (UPDATE member SET name = 'x' RETURNING id) SELECT * FROM moved",
        "WITH gone AS (DELETE FROM member RETURNING id) SELECT count(*) FROM gone",
        _pg(sa.select(member).with_for_update(read=True, key_share=True)),
        "SELECT id FROM member FOR KEY SHARE OF member NOWAIT",
        "SELECT nextval('member_id_seq')",
        "SELECT setval('member_id_seq', 1)",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_try_advisory_lock(1)",
        "SELECT pg_notify('channel', 'x')",
        "SELECT txid_current()",
        "SELECT pg_current_xact_id()",
        "SELECT lo_creat(-1)",
        "SELECT dblink_exec('x', 'y')",
        "SELECT set_config('search_path', 'x', true)",
        "WITH m AS (MERGE INTO member USING x ON true WHEN MATCHED THEN DELETE) SELECT 1",
        "SELECT 1 FROM member, LOCK",
        "SELECT * INTO copy FROM member",
        "SAVEPOINT sa_savepoint_1",
        "LOCK TABLE member",
        "SET jit = off",
        "CREATE INDEX ix ON member (name)",
    ]
    assert [plain_read(s) for s in reads] == [True] * len(reads)
    assert [s for s in others if plain_read(s)] == []


def test_a_page_that_only_reads_keeps_its_statements_prepared(pg_app):
    with pg_app.app_context():
        ava, ben = make_member("Ava Reads"), make_member("Ben Reads")
        connect(ava, ben)
        thread = messaging.start(
            db.session.get(Member, ava.id), db.session.get(Member, ben.id), "Hello Ben"
        ).thread_id
    browser = Browser(pg_app)
    browser.login(ava)
    url = f"/messaging/t/{thread}"
    browser.get(url)  # the first view marks the thread read: a write
    during = []

    def status(conn, cursor, statement, parameters, context, executemany):
        during.append((cursor.connection.pgconn.transaction_status, statement[:60]))

    with pg_app.app_context():
        engine = db.engine
    sa.event.listen(engine, "after_cursor_execute", status)
    try:
        for _ in range(8):  # psycopg prepares a statement on its sixth run on a connection
            assert browser.get(url).status_code == 200
    finally:
        sa.event.remove(engine, "after_cursor_execute", status)
    # No statement of the page ran inside a transaction: no BEGIN was sent.
    assert during and [s for s in during if s[0] != IDLE] == []
    with pg_app.app_context():
        prepared = db.session.execute(
            sa.text("SELECT statement FROM pg_prepared_statements")
        ).scalars()
        prepared = [" ".join(s.split()) for s in prepared]
    # The page's own statements: the session loader's and the thread's.
    assert any(s.startswith("SELECT member_session.id") for s in prepared), prepared
    assert any(s.startswith("SELECT thread_member.thread_id") for s in prepared), prepared


def test_a_write_begins_a_transaction_that_the_reads_after_it_share(pg_app):
    with pg_app.app_context():
        ava = make_member("Ava Before")
        read = sa.select(Member.name).where(Member.id == ava.id)
        assert db.session.scalar(read) == "Ava Before"
        raw = _raw()
        assert raw.pgconn.transaction_status == IDLE, "a plain read opens no transaction"
        db.session.execute(sa.update(Member).where(Member.id == ava.id).values(name="Ava After"))
        assert raw.pgconn.transaction_status == INTRANS
        assert db.session.scalar(read) == "Ava After"  # its own write, in its transaction
        assert raw.pgconn.transaction_status == INTRANS
        now = utcnow()
        db.session.add(
            ProfileView(viewer_id=ava.id, viewed_id=ava.id, day=now.date(), viewed_at=now)
        )
        db.session.flush()
        db.session.rollback()
        # The rollback undid both writes: they were one transaction.
        assert db.session.scalar(read) == "Ava Before"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProfileView)) == 0
        assert raw.pgconn.transaction_status == IDLE


def test_a_row_lock_is_held_until_the_commit(pg_app, database_url):
    with pg_app.app_context():
        ava = make_member("Ava Locked")
        db.session.execute(sa.select(Member.id).where(Member.id == ava.id).with_for_update())
        other = psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True)
        try:
            try_lock = "SELECT id FROM member WHERE id = %s FOR UPDATE NOWAIT"
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(try_lock, (ava.id,))
            db.session.commit()
            assert other.execute(try_lock, (ava.id,)).fetchone() == (ava.id,)
        finally:
            other.close()


def test_a_savepoint_is_inside_a_transaction(pg_app):
    with pg_app.app_context():
        ava = make_member("Ava Outer")
        with db.session.begin_nested():
            db.session.execute(
                sa.update(Member).where(Member.id == ava.id).values(name="Ava Inner")
            )
        assert _raw().pgconn.transaction_status == INTRANS
        db.session.rollback()
        assert db.session.scalar(sa.select(Member.name).where(Member.id == ava.id)) == "Ava Outer"


def test_a_kept_description_is_the_one_psycopg_builds(pg_app, database_url):
    """`cursor.description` is kept per statement text and column types: the same as
    psycopg's own, before and after psycopg prepares the statement. When a migration
    changes a column's type under a prepared statement, its connection is dropped once
    (PostgreSQL refuses the old plan) and the next one reads the new type."""
    with pg_app.app_context():
        db.session.execute(sa.text("CREATE TABLE kept_shape (n integer, word text)"))
        db.session.execute(sa.text("INSERT INTO kept_shape VALUES (1, 'one')"))
        db.session.commit()
        statement = sa.text("SELECT n, word AS label FROM kept_shape WHERE n = :n")

        def both():
            result = db.session.execute(statement, {"n": 1})
            cursor = result.cursor
            kept = [(c.name, c.type_code) for c in cursor.description]
            built = [(c.name, c.type_code) for c in psycopg.Cursor.description.fget(cursor)]
            assert result.all() == [(1, "one")]
            return kept, built

        for _ in range(8):  # psycopg prepares it from the sixth run on
            kept, built = both()
            assert kept == built == [("n", 23), ("label", 25)]
        migration = psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True)
        try:
            migration.execute("ALTER TABLE kept_shape ALTER COLUMN n TYPE bigint")
        finally:
            migration.close()
        with pytest.raises(sa.exc.DBAPIError, match="cached plan") as failed:
            both()
        assert failed.value.connection_invalidated
        db.session.rollback()
        kept, built = both()
        assert kept == built == [("n", 20), ("label", 25)]
        db.session.execute(sa.text("DROP TABLE kept_shape"))
        db.session.commit()


def test_a_chosen_isolation_level_is_left_as_chosen(pg_app):
    """A caller that sets SQLAlchemy's isolation level (AUTOCOMMIT for VACUUM) keeps it:
    VACUUM refuses to run inside a transaction."""
    with pg_app.app_context():
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text("VACUUM member"))


def test_the_apps_connections_read_committed_whatever_the_databases_default(
    app_factory, database_url
):
    admin = psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True)
    name = admin.info.dbname
    try:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation = serializable')
        app = app_factory()
        with app.app_context():
            db.engine.dispose()  # connections opened from here on
            db.session.execute(sa.update(Member).where(Member.id == -1).values(name="x"))
            level = db.session.scalar(sa.text("SHOW transaction_isolation"))
            db.session.rollback()
        assert level == "read committed"
    finally:
        admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_isolation')
        admin.close()


def test_statements_are_not_prepared_when_the_setting_says_so(app_factory):
    app = app_factory(DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_PREPARED_STATEMENTS=False)
    with app.app_context():
        ava = make_member("Ava Unprepared")
    browser = Browser(app)
    browser.login(ava)
    for _ in range(8):
        assert browser.get("/messaging").status_code == 200
    with app.app_context():
        count = sa.select(sa.func.count()).select_from(sa.text("pg_prepared_statements"))
        assert db.session.scalar(count) == 0


@pytest.fixture
def pinged_app(app_factory):
    """One pooled connection, checked at every checkout as in production."""
    return app_factory(
        DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True}
    )


def _backend_pid() -> int:
    pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    db.session.remove()  # the connection goes back to the pool
    return pid


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(pinged_app, database_url):
    with pinged_app.app_context():
        ended = _backend_pid()
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [ended]).fetchone()[0]
            # Wait until the backend is gone: its socket has the server's last word.
            for _ in range(100):
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [ended]
                ).fetchone()
                if row[0] == 0:
                    break
        replaced = _backend_pid()  # no error: the pool connected anew
    assert replaced != ended


def test_a_live_pooled_connection_is_taken_without_a_round_trip(pinged_app):
    with pinged_app.app_context():
        dialect = db.engine.dialect
        pings = []
        own = dialect.do_ping
        dialect.do_ping = lambda connection: pings.append(1) or own(connection)
        try:
            pids = {_backend_pid() for _ in range(5)}
        finally:
            dialect.do_ping = own
    assert len(pids) == 1 and pings == []  # one connection, five checkouts, no SELECT 1


GEVENT_WORKER = """
from gevent import monkey; monkey.patch_all()
import sys, time, psycopg, sqlalchemy as sa
from linkmsg import create_app
from linkmsg.extensions import db
url = sys.argv[1]
app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0,
                  "MAIL_WORKER_THREAD": False, "TESTING": True})
with app.app_context():
    ask = lambda: db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    ended = ask()
    db.session.remove()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [ended])
    time.sleep(0.3)
    print(ended, ask())
"""


def test_in_a_gevent_worker_an_ended_connection_is_replaced_too(database_url, tmp_path):
    """As gunicorn's gevent workers run it (select and socket patched), with the
    production default of pool_pre_ping."""
    from .test_scale_out import ROOT

    done = subprocess.run(
        [sys.executable, "-c", GEVENT_WORKER, database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SECRET_KEY": "test"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ended, replaced = map(int, done.stdout.split())
    assert replaced != ended
