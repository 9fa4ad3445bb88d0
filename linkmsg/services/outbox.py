"""The mail outbox: emails owed to members, written with what caused them.

`linkmsg.mail` is the worker that sends them; the rules of when an email is worth
sending (away, opted in, not already told about this thread lately) live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from ..extensions import db
from ..models import (
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENT,
    OUTBOX_SKIPPED,
    Member,
    Message,
    Outbox,
    ThreadMember,
    utcnow,
)

NEW_MESSAGE = "new_message"
PASSWORD_RESET = "password_reset"  # payload: reset_id; sent at once, no away or quiet rule
MAX_ATTEMPTS = 8


def queue_message_email(member_id: int, thread_id: int, message_id: int) -> Outbox | None:
    """Owe the member an email about a new message, if they want email at all.

    Whether it is still worth sending is decided when the worker gets to it.
    """
    member = db.session.get(Member, member_id)
    if member is None or not member.email_notifications:
        return None
    row = Outbox(
        member_id=member_id,
        thread_id=thread_id,
        kind=NEW_MESSAGE,
        payload={"message_id": message_id},
    )
    db.session.add(row)
    return row


def queue_password_reset(member_id: int, reset_id: int) -> Outbox:
    """Owe the member a password reset link. The token is not stored: the worker derives
    it from the reset row when it builds the email."""
    row = Outbox(member_id=member_id, kind=PASSWORD_RESET, payload={"reset_id": reset_id})
    db.session.add(row)
    return row


def due(now: datetime | None = None, limit: int = 50) -> list[Outbox]:
    """Pending rows whose time has come, oldest first, locked for this worker on PostgreSQL."""
    query = (
        db.select(Outbox)
        .where(Outbox.status == OUTBOX_PENDING, Outbox.next_attempt_at <= (now or utcnow()))
        .order_by(Outbox.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str = ""


def decide(row: Outbox, now: datetime | None = None) -> Decision:
    """Whether a pending email is still worth sending, and why not."""
    now = now or utcnow()
    member = db.session.get(Member, row.member_id)
    config = current_app.config
    if member is None or member.suspended_at is not None:
        return Decision(False, "no such member")
    if row.kind == PASSWORD_RESET:
        return Decision(True)  # the member is waiting for it right now
    if not member.email_notifications:
        return Decision(False, "email turned off")
    away = timedelta(seconds=config["EMAIL_WHEN_AWAY_SECONDS"])
    if member.last_active_at is not None and now - member.last_active_at < away:
        return Decision(False, "active")
    membership = db.session.get(ThreadMember, (row.thread_id, row.member_id))
    if membership is None or membership.last_read_message_id >= row.payload.get("message_id", 0):
        return Decision(False, "already read")
    if membership.muted:
        return Decision(False, "muted")
    quiet = timedelta(seconds=config["EMAIL_QUIET_PERIOD_SECONDS"])
    recent = db.session.scalar(
        db.select(Outbox.id).where(
            Outbox.member_id == row.member_id,
            Outbox.thread_id == row.thread_id,
            Outbox.status == OUTBOX_SENT,
            Outbox.sent_at > now - quiet,
        )
    )
    if recent is not None:
        return Decision(False, "emailed about this thread lately")
    return Decision(True)


def unread_messages(row: Outbox, limit: int = 5) -> list[Message]:
    """The newest unread messages of the thread, for the email body (oldest first)."""
    membership = db.session.get(ThreadMember, (row.thread_id, row.member_id))
    after = membership.last_read_message_id if membership else 0
    messages = list(
        db.session.scalars(
            db.select(Message)
            .where(
                Message.thread_id == row.thread_id,
                Message.id > after,
                Message.sender_id != row.member_id,
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
    messages.reverse()
    return messages


def mark_sent(row: Outbox, now: datetime | None = None) -> None:
    """Sent: this row and every other pending row of the same thread are covered by it."""
    now = now or utcnow()
    row.status, row.sent_at, row.attempts = OUTBOX_SENT, now, row.attempts + 1
    if row.thread_id is None:  # not about a thread: it covers nothing else
        db.session.commit()
        return
    db.session.execute(
        db.update(Outbox)
        .where(
            Outbox.member_id == row.member_id,
            Outbox.thread_id == row.thread_id,
            Outbox.status == OUTBOX_PENDING,
            Outbox.id != row.id,
        )
        .values(status=OUTBOX_SKIPPED, last_error="covered by an email already sent")
    )
    db.session.commit()


def mark_skipped(row: Outbox, reason: str) -> None:
    row.status, row.last_error = OUTBOX_SKIPPED, reason[:500]
    db.session.commit()


def mark_failed_attempt(row: Outbox, error: str, now: datetime | None = None) -> None:
    """A try that failed: back off and try again, up to MAX_ATTEMPTS."""
    now = now or utcnow()
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = OUTBOX_FAILED
    else:
        row.next_attempt_at = now + timedelta(seconds=min(3600, 15 * 2 ** (row.attempts - 1)))
    db.session.commit()
