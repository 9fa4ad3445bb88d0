"""A message to a group is written by the same statements whatever the group's size: the
live events and the owed emails of 50 members go in bulk, not one INSERT per member
(issue 18, Performance). Counted on the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

from sqlalchemy import event

from linkmsg.extensions import db
from linkmsg.models import Event, Member, Outbox
from linkmsg.services import messaging

from .factories import connect, make_member

INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+\"?(\w+)\"?", re.IGNORECASE)


@contextmanager
def statements():
    """The statements the engine sends meanwhile, as (table an INSERT goes to or None,
    SQL); an executemany is one statement, as it is one round trip for the driver."""
    seen: list[tuple[str | None, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        found = INSERT_INTO.match(statement)
        seen.append((found.group(1).lower() if found else None, statement))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def group_of(creator, size: int, name: str) -> int:
    """A group of `size` members started by `creator` with their connections."""
    others = [make_member(f"{name} {i}") for i in range(size - 1)]
    for other in others:
        connect(creator, other)
    creator_row = db.session.get(Member, creator.id)
    return messaging.start_group(creator_row, [o.id for o in others], name, "Welcome").thread_id


def reply_counted(sender_id: int, thread_id: int, body: str):
    db.session.expire_all()
    sender = db.session.get(Member, sender_id)
    with statements() as seen:
        messaging.reply(sender, thread_id, body)
    return seen


def test_a_message_to_fifty_members_takes_the_statements_of_one_to_three(ctx, app):
    app.config["NEW_THREAD_RATE_LIMIT"] = "1000 per day"
    ava = make_member("Ava")
    small = group_of(ava, 3, "Small")
    large = group_of(ava, 50, "Large")
    for thread_id in (small, large):  # the first reply of a session warms its caches
        reply_counted(ava.id, thread_id, "Warm up")

    events_before = db.session.scalar(db.select(db.func.count(Event.id)))
    outbox_before = db.session.scalar(db.select(db.func.count(Outbox.id)))
    in_small = reply_counted(ava.id, small, "To the three of us")
    in_large = reply_counted(ava.id, large, "To all fifty")

    # Every member heard of it and is owed an email: the rows are all there ...
    events_after = db.session.scalar(db.select(db.func.count(Event.id)))
    outbox_after = db.session.scalar(db.select(db.func.count(Outbox.id)))
    assert events_after - events_before == 3 + 50
    assert outbox_after - outbox_before == 2 + 49
    # ... written by one INSERT into each table, for 3 members as for 50.
    for seen in (in_small, in_large):
        inserts = Counter(table for table, _ in seen if table)
        assert inserts["event"] == 1, inserts
        assert inserts["outbox"] == 1, inserts
    # No statement at all is repeated per member: the whole send is the same statements.
    assert len(in_large) == len(in_small), _difference(in_small, in_large)


def _difference(small, large) -> str:
    a, b = Counter(sql for _, sql in small), Counter(sql for _, sql in large)
    return f"only with 50 members: {list((b - a).elements())[:5]}"
