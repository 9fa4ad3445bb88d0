"""Migration 0012 (group conversations) on a database filled at 0011, on SQLite and
PostgreSQL: every thread, message, read state, label, attachment and event survives the
upgrade unchanged (old messages become 'text', every side stays active, one-to-one
threads keep their pair), the app reads them as before, and the downgrade gives back
exactly what was there — a group made since goes, with everything that hangs on it.

The rows are written with plain Core inserts into the tables as they are at 0011
(reflected from the database), not through today's models, which already have 0012's
columns.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from linkmsg.extensions import db
from linkmsg.services import messaging

from .conftest import _migrate, build_app, throwaway_postgres

BEFORE = "0011"
AFTER = "0012"
KEPT = (
    "member",
    "connection",
    "thread",
    "thread_member",
    "message",
    "inmail",
    "label",
    "thread_label",
    "attachment",
    "event",
    "event_sequence",
    "outbox",
)
T0 = datetime(2026, 11, 1, 9, 0, 0)
AVA, BEN, CY, DEE = 1, 2, 3, 4


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request, tmp_path):
    """A database migrated up to 0011 (and no further): its URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        _migrate(url, tmp_path, BEFORE)
        yield url
    else:
        with throwaway_postgres("linkmsg_migrations", tmp_path, BEFORE) as url:
            yield url


@pytest.fixture
def old_app(old_database, tmp_path):
    app = build_app(old_database, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def tables() -> dict[str, sa.Table]:
    metadata = sa.MetaData()
    metadata.reflect(db.engine)
    return metadata.tables


def at(minutes: int) -> datetime:
    return T0.replace(minute=minutes)


def attachment(number: int, message_id: int, name: str, created: datetime) -> dict:
    return {
        "id": number,
        "message_id": message_id,
        "storage_key": f"key/{number}",
        "name": name,
        "content_type": "application/pdf",
        "size": 1000 + number,
        "sha256": str(number) * 64,
        "created_at": created,
    }


def email_owed(number: int, member_id: int, thread_id: int, message_id: int, created) -> dict:
    return {
        "id": number,
        "member_id": member_id,
        "thread_id": thread_id,
        "kind": "new_message",
        "payload": {"message_id": message_id},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": created,
        "created_at": created,
    }


def fill_at_0011() -> None:
    """Three members' conversations as 0011 stored them: two ordinary threads and an
    InMail, read and unread sides, archived and muted, a label, an attachment, events."""
    t = tables()
    assert "group_span" not in t and "kind" not in t["message"].c  # really 0011
    members = [
        {
            "id": number,
            "email": f"{name.lower()}@example.test",
            "password_hash": "x",
            "handle": name.lower(),
            "name": name,
            "headline": "Engineer at Acme",
            "location": "Lisbon",
            "about": "",
            "plan": "premium" if name == "Dee" else "free",
            "role": "member",
            "show_active": True,
            "accepts_inmail": True,
            "email_notifications": True,
            "created_at": T0,
        }
        for number, name in ((AVA, "Ava"), (BEN, "Ben"), (CY, "Cy"), (DEE, "Dee"))
    ]
    pairs = ((AVA, BEN), (AVA, CY))
    connections = [
        {"member_id": a, "other_id": b, "created_at": T0}
        for x, y in pairs
        for a, b in ((x, y), (y, x))
    ]
    threads = [
        {"id": 10, "a_id": AVA, "b_id": BEN, "kind": "ordinary", "last_message_id": 103,
         "created_at": at(1), "started_by_id": AVA},
        {"id": 11, "a_id": AVA, "b_id": CY, "kind": "ordinary", "last_message_id": 105,
         "created_at": at(2), "started_by_id": CY},
        {"id": 12, "a_id": AVA, "b_id": DEE, "kind": "inmail", "last_message_id": 106,
         "created_at": at(3), "started_by_id": DEE},
    ]  # fmt: skip
    messages = [
        (101, 10, AVA, "Hello Ben", "key-101-ava"),
        (102, 10, BEN, "Hi Ava, here is the deck", None),
        (103, 10, AVA, "Thanks!", None),
        (104, 11, CY, "Coffee next week?", None),
        (105, 11, CY, "Tuesday works", None),
        (106, 12, DEE, "A role you may like", None),
    ]
    sides = [
        # Ava read everything with Ben; Ben has not read her thanks.
        (10, AVA, BEN, 103, 103, False, False),
        (10, BEN, AVA, 103, 102, False, False),
        # Ava has not read Cy's two messages, and muted the thread; Cy archived it.
        (11, AVA, CY, 105, 0, False, True),
        (11, CY, AVA, 105, 105, True, False),
        # The InMail waits for Ava.
        (12, AVA, DEE, 106, 0, False, False),
        (12, DEE, AVA, 106, 106, False, False),
    ]
    with db.engine.begin() as conn:
        conn.execute(t["member"].insert(), members)
        conn.execute(t["connection"].insert(), connections)
        conn.execute(t["thread"].insert(), threads)
        conn.execute(
            t["message"].insert(),
            [
                {"id": i, "thread_id": th, "sender_id": s, "body": b, "idempotency_key": k,
                 "created_at": at(i - 90)}
                for i, th, s, b, k in messages
            ],
        )  # fmt: skip
        conn.execute(
            t["thread_member"].insert(),
            [
                {"thread_id": th, "member_id": me, "other_id": other, "last_message_id": last,
                 "last_read_message_id": read, "archived": archived, "muted": muted}
                for th, me, other, last, read, archived, muted in sides
            ],
        )  # fmt: skip
        conn.execute(
            t["inmail"].insert(),
            {"id": 1, "thread_id": 12, "message_id": 106, "sender_id": DEE, "recipient_id": AVA,
             "subject": "A role", "template": None, "status": "sent", "created_at": at(16)},
        )  # fmt: skip
        conn.execute(
            t["label"].insert(),
            {"id": 1, "member_id": AVA, "name": "Clients", "name_key": "clients", "created_at": T0},
        )
        conn.execute(t["thread_label"].insert(), {"label_id": 1, "thread_id": 10})
        conn.execute(t["attachment"].insert(), attachment(1, 102, "deck.pdf", at(12)))
        conn.execute(
            t["event"].insert(),
            [
                {"id": 1, "member_id": BEN, "seq": 1, "kind": "message",
                 "payload": {"thread_id": 10, "message_id": 103}, "created_at": at(13)},
                {"id": 2, "member_id": AVA, "seq": 1, "kind": "message",
                 "payload": {"thread_id": 11, "message_id": 105}, "created_at": at(15)},
            ],
        )  # fmt: skip
        conn.execute(
            t["event_sequence"].insert(),
            [{"member_id": BEN, "last_seq": 1}, {"member_id": AVA, "last_seq": 1}],
        )
        conn.execute(t["outbox"].insert(), email_owed(1, BEN, 10, 103, at(13)))


def snapshot(columns: dict[str, list[str]] | None = None) -> dict[str, list[dict]]:
    """Every row of the kept tables, in primary-key order, as dicts of the given columns
    (default: all the columns the table has now)."""
    t = tables()
    found = {}
    with db.engine.connect() as conn:
        for name in KEPT:
            table = t[name]
            wanted = columns[name] if columns else [c.name for c in table.c]
            query = sa.select(*(table.c[c] for c in wanted)).order_by(*table.primary_key.columns)
            found[name] = [dict(row._mapping) for row in conn.execute(query)]
    return found


def test_the_group_migration_keeps_every_thread_message_and_read_state(old_app):
    fill_at_0011()
    before = snapshot()
    assert [len(before[n]) for n in ("thread", "message", "thread_member")] == [3, 6, 6]

    upgrade(revision=AFTER)

    t = tables()
    assert "group_span" in t
    # Everything that was there is there, every column as it was.
    assert snapshot({name: list(rows[0]) for name, rows in before.items()}) == before
    with db.engine.connect() as conn:
        assert set(conn.scalars(sa.select(t["message"].c.kind))) == {"text"}
        assert set(conn.scalars(sa.select(t["message"].c.subject_id))) == {None}
        assert set(conn.scalars(sa.select(t["thread_member"].c.active))) == {True}
        assert set(conn.scalars(sa.select(t["thread"].c.name))) == {None}
        assert conn.scalar(sa.select(sa.func.count()).select_from(t["group_span"])) == 0

    # The app (which needs every later migration too) reads them as before: inboxes,
    # unread badges, mute and archive, labels.
    upgrade()
    rows, _ = messaging.inbox(AVA)
    assert [row.membership.thread_id for row in rows] == [12, 11, 10]
    assert [row.other.id for row in rows] == [DEE, CY, BEN]
    assert not any(row.is_group for row in rows)
    assert {row.membership.thread_id: row.unread for row in rows} == {12: 1, 11: 2, 10: 0}
    assert [label.name for label in messaging.labels_for_threads(AVA, [10])[10]] == ["Clients"]
    assert messaging.unread_thread_count(AVA) == 1  # the InMail; Cy's thread is muted
    assert messaging.unread_thread_count(BEN) == 1
    assert messaging.inbox(CY)[0] == [] and len(messaging.inbox(CY, archived=True)[0]) == 1
    page = messaging.messages(10, kind="ordinary")
    assert [m.body for m in page.messages] == [
        "Hello Ben",
        "Hi Ava, here is the deck",
        "Thanks!",
    ]
    assert not any(m.is_system for m in page.messages)
    db.session.remove()


def test_the_group_migration_downgrades_to_what_was_there(old_app):
    fill_at_0011()
    before = snapshot()
    upgrade(revision=AFTER)
    add_a_group_at_0012()

    downgrade(revision=BEFORE)

    t = tables()
    assert "group_span" not in t and "kind" not in t["message"].c
    assert "active" not in t["thread_member"].c and "name" not in t["thread"].c
    assert snapshot() == before  # the group went, with its sides, lines, files and labels
    # ... and the way up is open again.
    upgrade(revision=AFTER)
    assert snapshot({name: list(rows[0]) for name, rows in before.items()}) == before


def add_a_group_at_0012() -> None:
    """A group of Ava, Ben and Cy made after the upgrade, with everything that can hang on
    a group: sides (one left), spans, a system line, a message with a file, a label, an
    email owed."""
    t = tables()
    with db.engine.begin() as conn:
        conn.execute(
            t["thread"].insert(),
            {"id": 20, "a_id": None, "b_id": None, "kind": "group", "name": "Launch",
             "last_message_id": 202, "created_at": at(30), "started_by_id": AVA},
        )  # fmt: skip
        conn.execute(
            t["message"].insert(),
            [
                {"id": 201, "thread_id": 20, "sender_id": AVA, "body": "Launch",
                 "kind": "created", "created_at": at(30)},
                {"id": 202, "thread_id": 20, "sender_id": BEN, "body": "Hello group",
                 "kind": "text", "created_at": at(31)},
                {"id": 203, "thread_id": 20, "sender_id": CY, "body": "", "kind": "left",
                 "subject_id": CY, "created_at": at(32)},
            ],
        )  # fmt: skip
        conn.execute(
            t["thread_member"].insert(),
            [
                {"thread_id": 20, "member_id": me, "other_id": None, "last_message_id": 203,
                 "last_read_message_id": 201, "archived": False, "muted": False,
                 "active": me != CY}
                for me in (AVA, BEN, CY)
            ],
        )  # fmt: skip
        conn.execute(
            t["group_span"].insert(),
            [
                {"thread_id": 20, "member_id": me, "first_message_id": 201,
                 "last_message_id": 203 if me == CY else None}
                for me in (AVA, BEN, CY)
            ],
        )  # fmt: skip
        conn.execute(t["attachment"].insert(), attachment(2, 202, "plan.pdf", at(31)))
        conn.execute(t["thread_label"].insert(), {"label_id": 1, "thread_id": 20})
        conn.execute(t["outbox"].insert(), email_owed(2, AVA, 20, 202, at(31)))


def test_the_face_epoch_counts_face_changes_only_and_downgrades_cleanly(old_app):
    """0013: the trigger on `member` counts a new name, headline, handle or picture, not
    any other write (a login's last activity); the downgrade takes the table and the
    trigger away, and members can still be written."""
    fill_at_0011()
    upgrade()

    def epoch() -> int:
        with db.engine.connect() as conn:
            return conn.scalar(sa.text("SELECT value FROM face_epoch"))

    def write(sql: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(sa.text(sql))

    assert epoch() == 0
    write(f"UPDATE member SET last_active_at = CURRENT_TIMESTAMP, about = 'x' WHERE id = {AVA}")
    write(f"UPDATE member SET name = name WHERE id = {AVA}")  # set, but not changed
    assert epoch() == 0
    write(f"UPDATE member SET name = 'Ava Arden' WHERE id = {AVA}")
    write(f"UPDATE member SET headline = 'Chief of staff' WHERE id = {BEN}")
    write(f"UPDATE member SET avatar_key = 'avatars/cy.png' WHERE id = {CY}")
    write(f"UPDATE member SET handle = 'dee-d' WHERE id = {DEE}")
    assert epoch() == 4
    write("UPDATE member SET headline = 'Everyone'")  # one per member changed
    assert epoch() == 8
    write("DELETE FROM face_epoch")  # (tests empty every table between them)
    write(f"UPDATE member SET name = 'Ava Ames' WHERE id = {AVA}")
    assert epoch() == 1

    downgrade(revision=AFTER)
    assert "face_epoch" not in tables()
    write(f"UPDATE member SET name = 'Ava Arden' WHERE id = {AVA}")
    upgrade()
    assert epoch() == 0
