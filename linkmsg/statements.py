"""Counting the statements a piece of work asks the database, on the engine.

Shared by tests/test_statement_budget.py (the budget per page) and bench/pages.py (the
statements per request it reports next to the timings), so both count the same way:
every statement that goes through a cursor (SQLAlchemy's `before_cursor_execute`), less
transaction control, which is not a question asked of the data (SQLite's BEGIN IMMEDIATE
goes through a cursor; PostgreSQL's BEGIN does not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event

from .extensions import db

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


@contextmanager
def counted(app: Flask, shape: Callable[[str], object] | None = None) -> Iterator[list]:
    """The statements asked of `app`'s engine inside the block, one line each (or what
    `shape` makes of each line); an executemany is one, as it is one round trip."""
    seen: list = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not TRANSACTION_CONTROL.match(statement):
            line = " ".join(statement.split())
            seen.append(shape(line) if shape else line)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
