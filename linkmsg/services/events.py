"""Live events as rows, numbered per member: recorded in the caller's transaction,
replayed after a gap.

Each member's events carry a dense sequence (1, 2, 3, ...) that is the SSE `id:`. The
numbers are assigned when the transaction commits, under a row lock on the member's
`event_sequence` row, so that for any one member the order of the numbers is the order
in which the transactions commit: whoever holds number n+1 knows that n is committed
(or never existed). A stream can therefore check what it receives — a number it has
already sent is a duplicate, a number past the next one means a gap that is filled from
the database, never skipped. A transaction that writes events for several members locks
their rows in one order (by member id), in one statement, so overlapping sends never
deadlock.

`linkmsg.realtime` publishes the rows after commit and streams them; `linkmsg.live`
turns each into the HTML its member's pages swap in.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Event, EventSequence, utcnow

MESSAGE = "message"  # payload: thread_id, message_id
NOTIFICATION = "notification"  # payload: notification_id
# payload: thread_id. The member's own side of the thread changed (read, marked unread,
# archived, muted, labelled), here or in another tab: its row and the counts catch up.
# Stored as "read", the name it had when reading was the only such change.
THREAD_CHANGED = "read"
INMAIL_ANSWERED = "inmail_answered"  # payload: thread_id (the member's InMail was declined)
SESSION_ENDED = "session_ended"  # payload: sessions (ids of the member's ended sessions)

REPLAY_LIMIT = 500
LATEST_BATCH = 5000  # members per query in `latest_seqs` (SQLite allows 32,766 parameters)

PENDING = "linkmsg_pending_events"  # session.info: events recorded, not yet numbered
COMMITTED = "linkmsg_committed_events"  # session.info: ids of rows written at commit


def record(member_id: int, kind: str, **payload) -> None:
    """Add an event to the current transaction; it is numbered and written when the
    transaction commits, and published once it has."""
    db.session.info.setdefault(PENDING, []).append((member_id, kind, payload))


def latest_seq(member_id: int) -> int:
    """The newest event number of a member: a page rendered now has seen everything up
    to it."""
    return db.session.scalar(latest_seq_query(member_id)) or 0


def latest_seq_query(member_id: int):
    return db.select(EventSequence.last_seq).where(EventSequence.member_id == member_id)


def latest_seqs(member_ids) -> dict[int, int]:
    """The newest event number of each of these members that has any: one query (by
    primary key) for all of a process's open streams at a keep-alive."""
    ids = sorted(set(member_ids))
    found: dict[int, int] = {}
    for start in range(0, len(ids), LATEST_BATCH):
        found.update(
            db.session.execute(
                db.select(EventSequence.member_id, EventSequence.last_seq).where(
                    EventSequence.member_id.in_(ids[start : start + LATEST_BATCH])
                )
            ).all()
        )
    return found


def since(member_id: int, after_seq: int, limit: int = REPLAY_LIMIT) -> list[Event] | None:
    """Events of the member after `after_seq`, in order; None when they cannot all be
    replayed exactly and the page should reload instead: pruned, more than `limit`, or
    a number this member never reached (an id from before a reset of the sequence).

    One indexed query (a reconnecting stream runs it; after an outage every stream does
    at once): the member's sequence row, joined to its events after `after_seq`."""
    found = db.session.execute(
        db.select(EventSequence.last_seq, Event)
        .select_from(EventSequence)
        .outerjoin(Event, (Event.member_id == EventSequence.member_id) & (Event.seq > after_seq))
        .where(EventSequence.member_id == member_id)
        .order_by(Event.seq)
        .limit(limit + 1)
    ).all()
    newest = found[0][0] if found else 0
    rows = [row for _, row in found if row is not None]
    if after_seq > newest or len(rows) > limit or not _dense(rows, after_seq, newest):
        return None
    return rows


def between(member_id: int, after_seq: int, through_seq: int, limit: int | None = None):
    """The member's events numbered after `after_seq` up to `through_seq`, in order."""
    query = (
        db.select(Event)
        .where(Event.member_id == member_id, Event.seq > after_seq, Event.seq <= through_seq)
        .order_by(Event.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def _dense(rows: list[Event], after_seq: int, through_seq: int) -> bool:
    expected = range(after_seq + 1, through_seq + 1)
    return len(rows) == len(expected) and all(
        row.seq == seq for row, seq in zip(rows, expected, strict=True)
    )


def prune(older_than: timedelta) -> int:
    """Delete events past the retention window. Returns the count.

    Per member, everything up to the newest expired number goes, so what remains is
    always a dense tail; a stream asking to resume from before it is told to reload."""
    cutoff = utcnow() - older_than
    expired = (
        db.select(Event.member_id, db.func.max(Event.seq).label("through"))
        .where(Event.created_at < cutoff)
        .group_by(Event.member_id)
        .subquery()
    )
    doomed = db.select(Event.id).join(
        expired, (expired.c.member_id == Event.member_id) & (Event.seq <= expired.c.through)
    )
    deleted = db.session.execute(
        db.delete(Event).where(Event.id.in_(doomed)),
        execution_options={"synchronize_session": False},
    ).rowcount
    db.session.commit()
    return deleted


# ---------------------------------------------------------------- numbering at commit


# PostgreSQL: the numbers and the rows in one statement of fixed text, the rows passed as
# three arrays — compiled, converted and prepared once, whatever the number of events (a
# statement of 50 rows x 5 parameters cost more to build and send than to run). The
# sequence rows are upserted in member-id order, so the row locks are taken in that order.
_NUMBER_AND_WRITE_PG = text(
    """
    WITH pending AS (
        SELECT member_id, kind, payload, position
        FROM unnest(CAST(:member_ids AS integer[]), CAST(:kinds AS varchar[]),
                    CAST(:payloads AS text[]))
             WITH ORDINALITY AS p(member_id, kind, payload, position)
    ), counted AS (
        SELECT member_id, count(*) AS new FROM pending GROUP BY member_id
    ), numbered AS (
        INSERT INTO event_sequence (member_id, last_seq)
        SELECT member_id, new FROM counted ORDER BY member_id
        ON CONFLICT (member_id)
        DO UPDATE SET last_seq = event_sequence.last_seq + excluded.last_seq
        RETURNING member_id, last_seq
    )
    INSERT INTO event (member_id, seq, kind, payload, created_at)
    SELECT pending.member_id,
           numbered.last_seq - counted.new
             + row_number() OVER (PARTITION BY pending.member_id ORDER BY pending.position),
           pending.kind, CAST(pending.payload AS json), :created_at
    FROM pending
    JOIN counted ON counted.member_id = pending.member_id
    JOIN numbered ON numbered.member_id = pending.member_id
    ORDER BY pending.position
    RETURNING id
    """
)


@sa_event.listens_for(Session, "before_commit")
def _number_and_write(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(
            _NUMBER_AND_WRITE_PG,
            {
                "member_ids": [member_id for member_id, _, _ in pending],
                "kinds": [kind for _, kind, _ in pending],
                "payloads": [json.dumps(payload) for _, _, payload in pending],
                "created_at": utcnow(),
            },
        )
    else:
        ids = _number_and_write_rows(session, pending)
    session.info.setdefault(COMMITTED, []).extend(ids)


def _number_and_write_rows(session: Session, pending: list) -> list[int]:
    """SQLite: the sequences upserted in one statement, then the rows in another."""
    counts = Counter(member_id for member_id, _, _ in pending)
    members = sorted(counts)
    statement = sqlite_insert(EventSequence).values(
        [{"member_id": member_id, "last_seq": counts[member_id]} for member_id in members]
    )
    # One statement, rows in member-id order: the row locks are taken in that order.
    statement = statement.on_conflict_do_update(
        index_elements=[EventSequence.member_id],
        set_={"last_seq": EventSequence.last_seq + statement.excluded.last_seq},
    ).returning(EventSequence.member_id, EventSequence.last_seq)
    newest = dict(session.execute(statement).all())
    next_seq = {member_id: newest[member_id] - counts[member_id] for member_id in members}
    rows = []
    now = utcnow()
    for member_id, kind, payload in pending:
        next_seq[member_id] += 1
        rows.append(
            {
                "member_id": member_id,
                "seq": next_seq[member_id],
                "kind": kind,
                "payload": payload,
                "created_at": now,
            }
        )
    # One INSERT for all the rows, whatever their number (SQLAlchemy's "insertmanyvalues").
    # The ids come back in no particular order, which is all the publisher needs: it
    # reads the rows again by id. (Asking for them in parameter order made SQLite fall
    # back to one INSERT per row: 50 statements for a message to a group of 50.)
    return list(session.scalars(db.insert(Event).returning(Event.id), rows))


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(COMMITTED, None)


def sequence_problems() -> list[str]:
    """What is wrong with the event numbering, for the integrity check: per member, the
    numbers kept must be a dense run ending at the member's newest number."""
    kept = (
        db.select(
            Event.member_id,
            db.func.count(Event.id).label("count"),
            db.func.min(Event.seq).label("low"),
            db.func.max(Event.seq).label("high"),
        )
        .group_by(Event.member_id)
        .subquery()
    )
    rows = db.session.execute(
        db.select(kept, EventSequence.last_seq).outerjoin(
            EventSequence, EventSequence.member_id == kept.c.member_id
        )
    ).all()
    problems = []
    for member_id, count, low, high, last_seq in rows:
        if last_seq is None or high != last_seq:
            problems.append(
                f"member {member_id}: newest event number {high}, sequence says {last_seq}"
            )
        if count != high - low + 1:
            problems.append(
                f"member {member_id}: events {low}..{high} have gaps ({count} rows kept)"
            )
    return problems
