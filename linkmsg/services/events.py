"""Live events as rows: recorded in the caller's transaction, replayed after a gap.

`linkmsg.realtime` publishes them after commit and streams them; `linkmsg.live` turns
each into the HTML its member's pages swap in.
"""

from __future__ import annotations

from datetime import timedelta

from ..extensions import db
from ..models import Event, EventHorizon, utcnow

MESSAGE = "message"  # payload: thread_id, message_id
NOTIFICATION = "notification"  # payload: notification_id
READ = "read"  # payload: thread_id (another tab read it: counts change)
INMAIL_ANSWERED = "inmail_answered"  # payload: thread_id (the member's InMail was declined)
SESSION_ENDED = "session_ended"  # payload: sessions (ids of the member's sessions just ended)

REPLAY_LIMIT = 500


def record(member_id: int, kind: str, **payload) -> Event:
    """Add an event to the current transaction; it is published once that commits."""
    event = Event(member_id=member_id, kind=kind, payload=payload)
    db.session.add(event)
    return event


def latest_id(member_id: int) -> int:
    """The newest event id of a member: a page rendered now has seen everything up to it."""
    return db.session.scalar(latest_id_query(member_id)) or 0


def latest_id_query(member_id: int):
    return db.select(db.func.max(Event.id)).where(Event.member_id == member_id)


def pruned_through() -> int:
    horizon = db.session.get(EventHorizon, 1)
    return horizon.pruned_through_id if horizon else 0


def since(member_id: int, after_id: int, limit: int = REPLAY_LIMIT) -> list[Event] | None:
    """Events of the member after `after_id`, oldest first; None when they cannot all be
    replayed (pruned, or more than `limit`) and the page should reload instead."""
    if after_id < pruned_through():
        return None
    rows = list(
        db.session.scalars(
            db.select(Event)
            .where(Event.member_id == member_id, Event.id > after_id)
            .order_by(Event.id)
            .limit(limit + 1)
        )
    )
    if len(rows) > limit:
        return None
    return rows


def prune(older_than: timedelta) -> int:
    """Delete events past the retention window and move the horizon. Returns the count."""
    cutoff = utcnow() - older_than
    highest = db.session.scalar(db.select(db.func.max(Event.id)).where(Event.created_at < cutoff))
    if highest is None:
        return 0
    deleted = db.session.execute(db.delete(Event).where(Event.id <= highest)).rowcount
    horizon = db.session.get(EventHorizon, 1)
    if horizon is None:
        db.session.add(EventHorizon(id=1, pruned_through_id=highest))
    else:
        horizon.pruned_through_id = max(horizon.pruned_through_id, highest)
    db.session.commit()
    return deleted
