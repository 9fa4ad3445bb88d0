"""Reporting a member or one of their messages, and the moderators' queue."""

from __future__ import annotations

from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import REPORT_REASONS, Member, Message, Report, utcnow
from ..text import normalise_newlines
from . import blocking, sessions, threads
from .errors import NotFound, ValidationFailed

DETAILS_MAX = 1000


def message_to_report(reporter_id: int, message_id: int) -> tuple[Message, Member]:
    """A message the reporter may report, and who wrote it: one another member sent in a
    thread the reporter can see (in a group, within what they may read). Raises NotFound
    otherwise, as for a message that does not exist."""
    message = db.session.get(Message, message_id)
    if message is None:
        raise NotFound("This message does not exist.")
    view = threads.get_thread_for(reporter_id, message.thread_id)
    if view.is_group:
        # Another member's message, within what the reporter may read.
        if (
            message.is_system
            or message.sender_id == reporter_id
            or not threads.may_read(reporter_id, message)
        ):
            raise NotFound("This message does not exist.")
        return message, db.session.get(Member, message.sender_id)
    if message.sender_id != view.other.id:
        raise NotFound("This message does not exist.")
    return message, view.other


def report(
    reporter_id: int,
    member_id: int,
    reason: str,
    details: str = "",
    *,
    message_id: int | None = None,
    also_block: bool = False,
) -> Report:
    """Report a member (or one of their messages), optionally blocking them: one step,
    one transaction.

    Raises ValidationFailed for an unknown reason, long details or reporting oneself,
    NotFound for a message the reporter cannot see.
    """
    if reporter_id == member_id:
        raise ValidationFailed("You can't report yourself.")
    if reason not in REPORT_REASONS:
        raise ValidationFailed("Choose what is wrong.", field="reason")
    details = normalise_newlines(details).strip()
    if len(details) > DETAILS_MAX:
        raise ValidationFailed(
            f"Details can be at most {DETAILS_MAX:,} characters.", field="details"
        )
    if message_id is not None:
        _, sender = message_to_report(reporter_id, message_id)
        if sender.id != member_id:
            raise NotFound("This message does not exist.")
    item = Report(
        reporter_id=reporter_id,
        member_id=member_id,
        message_id=message_id,
        reason=reason,
        details=details,
    )
    db.session.add(item)
    if also_block:
        blocking.add_block(reporter_id, member_id)
    db.session.commit()
    return item


def require_moderator(member: Member) -> None:
    """Raises NotFound for anyone but a moderator: the queue's existence is nobody
    else's business."""
    if member is None or not member.is_admin:
        raise NotFound("This page does not exist.")


def open_reports(limit: int = 50):
    """The moderation queue, oldest first, with the people involved and the message."""
    reporter, reported = aliased(Member), aliased(Member)
    return db.session.execute(
        db.select(Report, reporter, reported, Message)
        .join(reporter, reporter.id == Report.reporter_id)
        .join(reported, reported.id == Report.member_id)
        .outerjoin(Message, Message.id == Report.message_id)
        .where(Report.status == "open")
        .order_by(Report.id)
        .limit(limit)
    ).all()


def context_of(message: Message, around: int = 2) -> list[Message]:
    """The messages around a reported one, for the moderator to read it in context."""
    before = list(
        db.session.scalars(
            db.select(Message)
            .where(Message.thread_id == message.thread_id, Message.id < message.id)
            .order_by(Message.id.desc())
            .limit(around)
        )
    )
    after = list(
        db.session.scalars(
            db.select(Message)
            .where(Message.thread_id == message.thread_id, Message.id > message.id)
            .order_by(Message.id)
            .limit(around)
        )
    )
    return list(reversed(before)) + [message] + after


def resolve(admin_id: int, report_id: int, action: str) -> Report:
    """Dismiss a report, or suspend the reported member (ending their sessions).

    Raises NotFound for a report that is not open, and for a member who is not a
    moderator (as the queue's page does).
    """
    require_moderator(db.session.get(Member, admin_id))
    item = db.session.get(Report, report_id)
    if item is None or item.status != "open":
        raise NotFound("This report is no longer open.")
    now = utcnow()
    item.resolved_at, item.resolved_by_id = now, admin_id
    if action == "suspend":
        member = db.session.get(Member, item.member_id)
        member.suspended_at = now
        sessions.end_all(member.id)  # every open session ends now, streams included
        item.status = "actioned"
        # Every open report about them is settled by the suspension.
        db.session.execute(
            db.update(Report)
            .where(Report.member_id == item.member_id, Report.status == "open")
            .values(status="actioned", resolved_at=now, resolved_by_id=admin_id)
        )
    else:
        item.status = "dismissed"
    db.session.commit()
    return item
