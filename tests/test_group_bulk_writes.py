"""A message to a group is written by the same statements whatever the group's size: the
live events and the owed emails of 50 members go in bulk, not one INSERT per member
(issue 18, Performance). Counted on the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from flask import current_app

from linkmsg.extensions import db
from linkmsg.models import Event, Member, Outbox
from linkmsg.services import blocking, events, messaging
from linkmsg.statements import counted

from .factories import connect, make_member

INSERT_INTO = re.compile(r"\bINSERT\s+INTO\s+\"?(\w+)\"?", re.IGNORECASE)


def statements():
    """The statements the engine sends meanwhile, as (tables its INSERTs go to, SQL) (one
    statement may insert into several tables: on PostgreSQL the event numbers and rows go
    together); an executemany is one statement, as it is one round trip for the driver."""
    return counted(
        current_app._get_current_object(),
        lambda sql: (tuple(t.lower() for t in INSERT_INTO.findall(sql)), sql),
    )


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
        inserts = Counter(table for tables, _ in seen for table in tables)
        assert inserts["event"] == 1, inserts
        assert inserts["outbox"] == 1, inserts
    # No statement at all is repeated per member: the whole send is the same statements.
    assert len(in_large) == len(in_small), _difference(in_small, in_large)


def _difference(small, large) -> str:
    a, b = Counter(sql for _, sql in small), Counter(sql for _, sql in large)
    return f"only with 50 members: {list((b - a).elements())[:5]}"


def test_events_of_one_commit_are_numbered_densely_in_the_order_recorded(ctx):
    # A commit may hold several events of one member among others' (they are numbered
    # and written together at commit: on PostgreSQL in one statement).
    ava, bob = make_member("Ava"), make_member("Bob")
    for ordinal in range(2):
        events.record(ava.id, events.NOTIFICATION, notification_id=ordinal)
    events.record(bob.id, events.NOTIFICATION, notification_id=10)
    db.session.commit()
    for member_id, number in ((ava.id, 2), (bob.id, 11), (ava.id, 3), (ava.id, 4)):
        events.record(member_id, events.NOTIFICATION, notification_id=number)
    db.session.commit()

    def numbered(member_id):
        rows = db.session.scalars(
            db.select(Event).where(Event.member_id == member_id).order_by(Event.seq)
        )
        return [(row.seq, row.payload["notification_id"]) for row in rows]

    assert numbered(ava.id) == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert numbered(bob.id) == [(1, 10), (2, 11)]
    assert events.latest_seq(ava.id) == 5 and events.latest_seq(bob.id) == 2
    assert events.sequence_problems() == []


def test_a_group_send_locks_the_group_once_and_each_send_locks_it_again(ctx, app):
    # The group's lock is remembered for the rest of its transaction only: a second
    # send must take it again.
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks (it serialises every writer)")
    ava = make_member("Ava")
    thread_id = group_of(ava, 3, "Small")
    for body in ("One", "Two"):
        seen = reply_counted(ava.id, thread_id, body)
        locks = [sql for _, sql in seen if "FOR NO KEY UPDATE" in sql]
        assert len(locks) == 1, locks


def test_the_badges_of_many_members_are_read_in_one_statement_each_their_own(ctx):
    # A live event to every member of a group carries each member's own badges: read for
    # all of them at once, and each the count that member's page would show.
    from linkmsg.templating import members_with_counts, nav_counts

    ava, ben, cy, dee = (make_member(n) for n in ("Ava", "Ben", "Cy", "Dee"))
    for other in (ben, cy, dee):
        connect(ava, other)
    connect(ben, cy)
    get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
    messaging.start(get(ava), get(ben), "One for Ben")
    messaging.start(get(cy), get(ben), "Another for Ben")
    messaging.start(get(ava), get(cy), "One for Cy")
    # Blocks between others are not the members' own: Eve blocking Ava (and being
    # blocked by Cy) hides nothing from Ben, whose thread with Ava stays counted.
    eve = make_member("Eve")
    blocking.block(eve.id, ava.id)
    blocking.block(cy.id, eve.id)
    members = [get(m) for m in (ava, ben, cy, dee)]
    alone = {m.id: nav_counts(m) for m in members}
    assert [alone[m.id]["unread"] for m in members] == [0, 2, 1, 0]
    with statements() as seen:
        together = {member.id: counts for member, counts in members_with_counts(alone)}
    assert len(seen) == 1
    assert together == alone


def test_the_apps_postgresql_connections_do_not_jit_compile(ctx):
    # The badges of a group's 50 members once cost ~50 ms of JIT compiling for a
    # statement that runs in 2: every connection of the app has JIT off.
    if db.engine.dialect.name != "postgresql":
        pytest.skip("JIT is PostgreSQL's")
    assert db.session.execute(db.text("SHOW jit")).scalar() == "off"
