"""The mail outbox: emails owed to members, written with what caused them.

`linkmsg.mail` is the worker that sends them; the rules of when an email is worth
sending (away, opted in, not already told about this thread lately) live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import JSON, literal
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    MESSAGE_TEXT,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_SKIPPED,
    Block,
    Member,
    Message,
    Outbox,
    ThreadMember,
    utcnow,
)
from .blocks import blocked_either_way, has_blocked
from .spans import visible_to

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


def queue_group_message_email(thread_id: int, sender_id: int, message_id: int) -> None:
    """Owe an email about a new group message to each current member who wants email,
    but the sender and whoever blocked them: one INSERT ... SELECT whatever the group's
    size. The worker decides each as it does for one-to-one threads (away, quiet period
    per member and thread, mute, read)."""
    now = utcnow()
    chosen = (
        db.select(
            ThreadMember.member_id,
            literal(thread_id),
            literal(NEW_MESSAGE),
            literal({"message_id": message_id}, JSON),
            literal(OUTBOX_PENDING),
            literal(0),
            literal(now),
            literal(now),
        )
        .join(Member, Member.id == ThreadMember.member_id)
        .where(
            ThreadMember.thread_id == thread_id,
            ThreadMember.active.is_(True),
            ThreadMember.member_id != sender_id,
            Member.email_notifications.is_(True),
            ThreadMember.member_id.not_in(
                db.select(Block.blocker_id).where(Block.blocked_id == sender_id)
            ),
        )
    )
    db.session.execute(
        db.insert(Outbox).from_select(
            [
                "member_id",
                "thread_id",
                "kind",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            chosen,
        )
    )


def queue_password_reset(member_id: int, reset_id: int) -> Outbox:
    """Owe the member a password reset link. The token is not stored: the worker derives
    it from the reset row when it builds the email."""
    row = Outbox(member_id=member_id, kind=PASSWORD_RESET, payload={"reset_id": reset_id})
    db.session.add(row)
    return row


def claim_next(now: datetime | None = None) -> Outbox | None:
    """Claim the next email that is due, for this worker alone, and commit the claim.

    Two rules keep two workers from ever sending one email, or two emails about one
    thread: a row is claimed by a conditional UPDATE of the one row a `FOR UPDATE SKIP
    LOCKED` picks (committed before anything is sent, so no other worker can take it
    until the claim runs out after MAIL_CLAIM_SECONDS, when its worker must have died);
    and only the oldest open row of a (member, thread) is ever a candidate, so the rows
    of one thread are decided one after the other, whatever the number of workers.
    """
    now = now or utcnow()
    candidate, older = aliased(Outbox, name="candidate"), aliased(Outbox, name="older")
    open_statuses = (OUTBOX_PENDING, OUTBOX_SENDING)
    blocked_by_older = (
        db.select(older.id)
        .where(
            older.member_id == candidate.member_id,
            older.thread_id == candidate.thread_id,
            older.id < candidate.id,
            older.status.in_(open_statuses),
        )
        .exists()
    )
    next_id = (
        db.select(candidate.id)
        .where(
            candidate.status.in_(open_statuses),
            candidate.next_attempt_at <= now,
            ~blocked_by_older,
        )
        .order_by(candidate.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=candidate)
        .scalar_subquery()
    )
    claimed_until = now + timedelta(seconds=current_app.config["MAIL_CLAIM_SECONDS"])
    row_id = db.session.execute(
        db.update(Outbox)
        .where(Outbox.id == next_id)
        .values(status=OUTBOX_SENDING, next_attempt_at=claimed_until)
        .returning(Outbox.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    db.session.commit()
    return db.session.get(Outbox, row_id) if row_id is not None else None


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str = ""
    # When the answer may change (the member is active, the thread was emailed lately):
    # decide again then, rather than never.
    retry_at: datetime | None = None


def decide(row: Outbox, now: datetime | None = None) -> Decision:
    """Whether a claimed email is worth sending now, from the state of things now: the
    member, the sender, blocks, the thread's read and mute state, recent emails."""
    now = now or utcnow()
    member = db.session.get(Member, row.member_id)
    config = current_app.config
    if member is None or member.suspended_at is not None:
        return Decision(False, "no such member")
    if row.kind == PASSWORD_RESET:
        return Decision(True)  # the member is waiting for it right now
    if not member.email_notifications:
        return Decision(False, "email turned off")
    message = db.session.get(Message, row.payload.get("message_id", 0))
    if message is None:
        return Decision(False, "no such message")
    sender = db.session.get(Member, message.sender_id)
    if sender is None or sender.suspended_at is not None:
        return Decision(False, "sender suspended")
    membership = db.session.get(ThreadMember, (row.thread_id, row.member_id))
    if membership is None or membership.last_message_id < message.id:
        return Decision(False, "not in the conversation")
    in_group = membership.other_id is None
    # In a group a block removes nobody: only the member who blocked the sender is not
    # told (the member they blocked still reads the group, and is told as they are live).
    if has_blocked(member.id, sender.id) if in_group else blocked_either_way(member.id, sender.id):
        return Decision(False, "blocked")
    if in_group and not membership.active:
        return Decision(False, "left the conversation")
    if membership.last_read_message_id >= message.id:
        return Decision(False, "already read")
    if membership.muted:
        return Decision(False, "muted")
    away = timedelta(seconds=config["EMAIL_WHEN_AWAY_SECONDS"])
    if member.last_active_at is not None and now - member.last_active_at < away:
        return Decision(False, "active", retry_at=member.last_active_at + away)
    quiet = timedelta(seconds=config["EMAIL_QUIET_PERIOD_SECONDS"])
    last_sent = db.session.scalar(
        db.select(db.func.max(Outbox.sent_at)).where(
            Outbox.member_id == row.member_id,
            Outbox.thread_id == row.thread_id,
            Outbox.status == OUTBOX_SENT,
            Outbox.sent_at > now - quiet,
        )
    )
    if last_sent is not None:
        return Decision(False, "emailed about this thread lately", retry_at=last_sent + quiet)
    return Decision(True)


def unread_messages(row: Outbox, limit: int = 5) -> list[Message]:
    """The newest unread messages of the thread, for the email body (oldest first)."""
    membership = db.session.get(ThreadMember, (row.thread_id, row.member_id))
    if membership is None:
        return []
    messages = list(
        db.session.scalars(
            db.select(Message)
            .where(
                Message.thread_id == row.thread_id,
                Message.id > membership.last_read_message_id,
                # Nothing after they left a group, no system lines, nothing of a member
                # they blocked.
                Message.id <= membership.last_message_id,
                Message.kind == MESSAGE_TEXT,
                Message.sender_id != row.member_id,
                Message.sender_id.not_in(
                    db.select(Block.blocked_id).where(Block.blocker_id == row.member_id)
                ),
                # In a group, only what the member's spans cover: not what was said
                # between a leaving and being added again.
                db.true() if membership.other_id is not None else visible_to(row.member_id),
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
    messages.reverse()
    return messages


def _settle(row: Outbox, **values) -> bool:
    """Record the outcome of a claimed row, if this worker still holds the claim (it may
    have run out and been taken over). Commits; True when recorded."""
    claimed_until = row.next_attempt_at
    settled = db.session.execute(
        db.update(Outbox)
        .where(
            Outbox.id == row.id,
            Outbox.status == OUTBOX_SENDING,
            Outbox.next_attempt_at == claimed_until,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(settled)


def mark_sent(row: Outbox, now: datetime | None = None) -> None:
    """Sent: this row and every other pending row of the same thread are covered by it."""
    now = now or utcnow()
    settled = _settle(row, status=OUTBOX_SENT, sent_at=now, attempts=row.attempts + 1)
    if settled and row.thread_id is not None:  # an email about no thread covers nothing else
        db.session.execute(
            db.update(Outbox)
            .where(
                Outbox.member_id == row.member_id,
                Outbox.thread_id == row.thread_id,
                Outbox.status == OUTBOX_PENDING,
                Outbox.id != row.id,
            )
            .values(status=OUTBOX_SKIPPED, last_error="covered by an email already sent")
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def mark_skipped(row: Outbox, reason: str) -> None:
    _settle(row, status=OUTBOX_SKIPPED, last_error=reason[:500])
    db.session.commit()


def postpone(row: Outbox, until: datetime, reason: str) -> None:
    """Not now: back to pending, to be decided again at `until`."""
    _settle(row, status=OUTBOX_PENDING, next_attempt_at=until, last_error=reason[:500])
    db.session.commit()


def mark_failed_attempt(row: Outbox, error: str, now: datetime | None = None) -> None:
    """A try that failed: back off and try again, up to MAX_ATTEMPTS."""
    now = now or utcnow()
    attempts = row.attempts + 1
    values = {"attempts": attempts, "last_error": error[:500], "status": OUTBOX_PENDING}
    if attempts >= MAX_ATTEMPTS:
        values["status"] = OUTBOX_FAILED
    else:
        values["next_attempt_at"] = now + timedelta(seconds=min(3600, 15 * 2 ** (attempts - 1)))
    _settle(row, **values)
    db.session.commit()
