"""PostgreSQL: a plain read runs outside a transaction; anything else begins one.

Most requests only read, and at PostgreSQL's default isolation (READ COMMITTED) every
statement takes its own snapshot whether or not a transaction is open: a BEGIN before a
page's reads and the ROLLBACK that ends them change nothing the page sees. They cost two
round trips, and the ROLLBACK costs more: psycopg forgets the connection's prepared
statements on every rollback, so each page had its statements parsed and planned anew.

So a pooled connection rests in autocommit. Before each statement, on a connection with
no transaction open, the statement decides:

- a plain read (`SELECT` or `WITH`, no `INSERT`/`UPDATE`/`DELETE`/`MERGE`, no row lock,
  no function with a side effect) runs as it is, outside a transaction;
- anything else (a write, `SELECT ... FOR UPDATE`, `SAVEPOINT`, DDL, a server-side
  cursor) turns autocommit off first, so psycopg sends BEGIN: that statement and every one
  after it until COMMIT or ROLLBACK are one transaction, exactly as before.

A statement on a connection that is inside a transaction never changes anything, so the
reads of a read-then-write sequence that began with a write or a lock still share its
transaction. SQLite keeps its own rule (`extensions._sqlite_begin`).

A page's statements now stay prepared on its connection; one that a migration has made
stale drops its connection once (`_forget_stale_plans`). Also here: each result's
`cursor.description`, which SQLAlchemy reads for every
statement, is built once per statement text and column types (`KeptDescriptionCursor`).
"""

import re
import select

import psycopg
from gevent.monkey import get_original
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_IDLE = psycopg.pq.TransactionStatus.IDLE
# The operating system's poll even in a gevent worker: a look that never waits needs no
# hub, and gevent's own would switch to it on every request.
_poll = get_original("select", "poll")

_READ_START = re.compile(r"\s*(SELECT|WITH)\b", re.I)
_NOT_A_PLAIN_READ = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|INTO|LOCK"
    r"|nextval|setval|pg_advisory\w*|pg_try_advisory\w*|pg_notify|set_config|txid_current"
    r"|pg_current_xact_id|lo_\w+|dblink\w*)\b"
    r"|\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b",
    re.I,
)
# Statement texts are few (SQLAlchemy caches their compilation); the answer is kept.
_KEPT = 4096
_plain: dict[str, bool] = {}


def plain_read(statement: str) -> bool:
    """Whether `statement` only reads and takes no lock beyond its snapshot."""
    answer = _plain.get(statement)
    if answer is None:
        answer = bool(_READ_START.match(statement)) and not _NOT_A_PLAIN_READ.search(statement)
        if len(_plain) >= _KEPT:
            _plain.clear()
        _plain[statement] = answer
    return answer


def _rest_in_autocommit(dbapi_connection, _record) -> None:
    # None: an invalidated connection checked in (a database that went away).
    if dbapi_connection is not None and dbapi_connection.pgconn.transaction_status == _IDLE:
        dbapi_connection.autocommit = True


def _alive(dbapi_connection, _record, _proxy) -> None:
    """`pool_pre_ping` without its round trip, for a connection taken from the pool.

    A pooled connection rests idle in autocommit, and an idle connection is told nothing
    by a server that is well: the app never LISTENs. A server that ends it (a restart, a
    shutdown, `pg_terminate_backend`) sends its reason and closes the socket, so the
    socket has something to read. Only then is the connection asked `SELECT 1`; if that
    fails the pool drops it and connects anew, as it did after a failed ping. A quiet
    socket costs one `poll` that never waits, instead of a round trip on every request."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise exc.DisconnectionError("the connection is closed")
    try:
        # poll, not select: a worker holding thousands of streams has sockets past 1024.
        poller = _poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        readable = poller.poll(0)
    except (OSError, ValueError) as error:
        raise exc.DisconnectionError(str(error)) from error
    if readable:
        try:
            dbapi_connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise exc.DisconnectionError(str(error)) from error


def _read_committed(dbapi_connection, _record) -> None:
    """The rule holds at READ COMMITTED, where a transaction gives plain reads nothing;
    the services' locks and conditional updates are written for it too. A database or
    role whose default isolation is stricter is overruled for the app's connections."""
    dbapi_connection.execute(
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"
    )


def _decide(_connection, cursor, statement, _parameters, context, _executemany) -> None:
    raw = cursor.connection
    if raw.pgconn.transaction_status != _IDLE:
        return  # inside a transaction: the statement is part of it
    if context is not None and "isolation_level" in context.execution_options:
        return  # the caller chose (AUTOCOMMIT for VACUUM, say): SQLAlchemy set it
    raw.autocommit = plain_read(statement) and not isinstance(cursor, psycopg.ServerCursor)


class KeptDescriptionCursor(psycopg.Cursor):
    """psycopg's cursor, its `description` kept per statement text and column types.

    psycopg builds a `Column` for every column of every result when it is asked, reading
    each name and type from the result: about a third of the client's work for a
    thread's statement of 38 columns. A statement's text fixes its columns' names, and
    the types are compared each time, so a kept description is the one psycopg would
    build. (Columns are plain values; nothing keeps the cursor.)"""

    _statement = None  # the text of the last `execute`

    def execute(self, query, params=None, **kwargs):
        self._statement = query if isinstance(query, str | bytes) else None
        return super().execute(query, params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        self._statement = None
        return super().executemany(query, params_seq, **kwargs)

    def nextset(self):
        self._statement = None  # another result of the same text: its own columns
        return super().nextset()

    def stream(self, query, params=None, **kwargs):
        self._statement = None
        return super().stream(query, params, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        self._statement = None
        return super().copy(statement, params, **kwargs)

    @property
    def description(self):
        result, statement = self.pgresult, self._statement
        if result is None or statement is None or not result.nfields:
            return super().description
        fields = range(result.nfields)
        key = (statement, tuple((result.ftype(i), result.fmod(i)) for i in fields))
        kept = _DESCRIPTIONS.get(key)
        if kept is None:
            kept = super().description
            if len(_DESCRIPTIONS) >= _KEPT:
                _DESCRIPTIONS.clear()
            _DESCRIPTIONS[key] = kept
        return list(kept)


_DESCRIPTIONS: dict[tuple, list] = {}


def _kept_descriptions(dbapi_connection, _record) -> None:
    dbapi_connection.cursor_factory = KeptDescriptionCursor


def _forget_stale_plans(context) -> None:
    """A statement psycopg prepared on a connection fails once a migration changes the
    type of a column it returns ("cached plan must not change result type"), and on that
    connection it would fail every time. The connection is dropped instead (that request
    fails as an outage does; the pool opens a new one, and nothing else is dropped)."""
    error = context.original_exception
    if (
        isinstance(error, psycopg.errors.FeatureNotSupported)
        # The server's function that refuses the plan: its message is translated.
        and error.diag.source_function == "RevalidateCachedQuery"
    ):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def _unprepared(dbapi_connection, _record) -> None:
    dbapi_connection.prepare_threshold = None


def init_engine(engine: Engine, *, prepare: bool = True, ping: bool = False) -> None:
    """Install the rule, and the cursor that keeps descriptions, on a PostgreSQL
    (psycopg 3) engine. `prepare=False`: psycopg prepares nothing (behind a pooler that
    moves a session's statements between server connections, such as PgBouncer in
    transaction mode before 1.21). `ping`: a connection taken from the pool is checked
    (`_alive`; the engine's own `pool_pre_ping` left off)."""
    if ping:
        event.listen(engine, "checkout", _alive)
    event.listen(engine, "connect", _kept_descriptions)
    event.listen(engine, "connect", _rest_in_autocommit)
    event.listen(engine, "connect", _read_committed)
    if not prepare:
        event.listen(engine, "connect", _unprepared)
    event.listen(engine, "checkin", _rest_in_autocommit)
    event.listen(engine, "before_cursor_execute", _decide)
    event.listen(engine, "handle_error", _forget_stale_plans)
