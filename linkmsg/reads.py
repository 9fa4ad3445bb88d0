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
"""

import re

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

_IDLE = psycopg.pq.TransactionStatus.IDLE

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


def _decide(_connection, cursor, statement, _parameters, _context, _executemany) -> None:
    raw = cursor.connection
    if raw.pgconn.transaction_status != _IDLE:
        return  # inside a transaction: the statement is part of it
    raw.autocommit = plain_read(statement) and not isinstance(cursor, psycopg.ServerCursor)


def init_engine(engine: Engine) -> None:
    """Install the rule on a PostgreSQL (psycopg 3) engine."""
    event.listen(engine, "connect", _rest_in_autocommit)
    event.listen(engine, "checkin", _rest_in_autocommit)
    event.listen(engine, "before_cursor_execute", _decide)
