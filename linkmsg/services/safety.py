"""Blocks. (Reports and moderation build on this module.)"""

from __future__ import annotations

from sqlalchemy import and_, or_

from ..extensions import db
from ..models import (
    INVITATION_OPEN,
    INVITATION_WITHDRAWN,
    Block,
    Connection,
    Invitation,
    utcnow,
)
from . import atomic, notifications, sessions
from .errors import ValidationFailed


def blocked_either_way(a_id: int, b_id: int) -> bool:
    """True when either member has blocked the other."""
    return bool(blockers_between(a_id, b_id))


def blockers_between(a_id: int, b_id: int) -> set[int]:
    """Which of the two members has blocked the other (none, one or both), in one query."""
    return set(
        db.session.scalars(
            db.select(Block.blocker_id).where(
                or_(
                    and_(Block.blocker_id == a_id, Block.blocked_id == b_id),
                    and_(Block.blocker_id == b_id, Block.blocked_id == a_id),
                )
            )
        )
    )


def has_blocked(blocker_id: int, blocked_id: int) -> bool:
    return db.session.get(Block, (blocker_id, blocked_id)) is not None


def hidden_member_ids_query(member_id: int):
    """A subquery of the members hidden from `member_id` by a block, either way."""
    return (
        db.select(Block.blocked_id)
        .where(Block.blocker_id == member_id)
        .union(db.select(Block.blocker_id).where(Block.blocked_id == member_id))
    )


def block(blocker_id: int, blocked_id: int) -> None:
    """Block a member: the connection between them ends and open invitations are withdrawn.

    Raises ValidationFailed when blocking oneself. Blocking twice is harmless.
    """
    if blocker_id == blocked_id:
        raise ValidationFailed("You can't block yourself.")
    # Both members' locks, as an invitation takes them: a block clicked twice adds one
    # row, and an invitation overlapping the block either comes first (and is withdrawn
    # here) or sees the block.
    atomic.lock_members(blocker_id, blocked_id)
    if not has_blocked(blocker_id, blocked_id):
        db.session.add(Block(blocker_id=blocker_id, blocked_id=blocked_id))
    db.session.execute(
        db.delete(Connection).where(
            or_(
                and_(Connection.member_id == blocker_id, Connection.other_id == blocked_id),
                and_(Connection.member_id == blocked_id, Connection.other_id == blocker_id),
            )
        )
    )
    low, high = sorted((blocker_id, blocked_id))
    withdrawn = db.session.execute(
        db.select(Invitation.id, Invitation.recipient_id).where(
            Invitation.pair_low == low,
            Invitation.pair_high == high,
            Invitation.status.in_(INVITATION_OPEN),
        )
    ).all()
    for invitation_id, recipient_id in withdrawn:
        notifications.retract(recipient_id, notifications.INVITATION_RECEIVED, invitation_id)
    db.session.execute(
        db.update(Invitation)
        .where(
            Invitation.pair_low == low,
            Invitation.pair_high == high,
            Invitation.status.in_(INVITATION_OPEN),
        )
        .values(status=INVITATION_WITHDRAWN, responded_at=utcnow())
    )
    db.session.commit()


def unblock(blocker_id: int, blocked_id: int) -> None:
    """Lift a block. The connection it ended does not come back."""
    db.session.execute(
        db.delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    db.session.commit()


def blocked_members(member_id: int) -> list:
    """The members `member_id` has blocked, most recent first."""
    from ..models import Member

    return list(
        db.session.scalars(
            db.select(Member)
            .join(Block, Block.blocked_id == Member.id)
            .where(Block.blocker_id == member_id)
            .order_by(Block.created_at.desc())
        )
    )


def blocked_member(blocker_id: int, handle: str):
    """A member this member has blocked, by handle. Raises NotFound otherwise."""
    from ..models import Member
    from .errors import NotFound

    member = db.session.scalar(
        db.select(Member)
        .join(Block, Block.blocked_id == Member.id)
        .where(Block.blocker_id == blocker_id, Member.handle == handle)
    )
    if member is None:
        raise NotFound("You have not blocked this member.")
    return member


# ---------------------------------------------------------------- reports and moderation

DETAILS_MAX = 1000


def report(
    reporter_id: int,
    member_id: int,
    reason: str,
    details: str = "",
    *,
    message_id: int | None = None,
    also_block: bool = False,
):
    """Report a member (or one of their messages), optionally blocking them in the same step.

    Raises ValidationFailed for an unknown reason, long details or reporting oneself,
    NotFound for a message the reporter cannot see.
    """
    from ..models import REPORT_REASONS, Message, Report
    from .errors import NotFound

    if reporter_id == member_id:
        raise ValidationFailed("You can't report yourself.")
    if reason not in REPORT_REASONS:
        raise ValidationFailed("Choose what is wrong.", field="reason")
    details = (details or "").replace("\r\n", "\n").strip()
    if len(details) > DETAILS_MAX:
        raise ValidationFailed(
            f"Details can be at most {DETAILS_MAX:,} characters.", field="details"
        )
    if message_id is not None:
        from .messaging import get_thread_for

        message = db.session.get(Message, message_id)
        if message is None or message.sender_id != member_id:
            raise NotFound("This message does not exist.")
        get_thread_for(reporter_id, message.thread_id)
    item = Report(
        reporter_id=reporter_id,
        member_id=member_id,
        message_id=message_id,
        reason=reason,
        details=details,
    )
    db.session.add(item)
    db.session.commit()
    if also_block:
        block(reporter_id, member_id)
    return item


def open_reports(limit: int = 50):
    """The moderation queue, oldest first, with the people involved and the message."""
    from sqlalchemy.orm import aliased

    from ..models import Member, Message, Report

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


def context_of(message, around: int = 2):
    """The messages around a reported one, for the moderator to read it in context."""
    from ..models import Message

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


def resolve(admin_id: int, report_id: int, action: str):
    """Dismiss a report, or suspend the reported member (ending their sessions).

    Raises NotFound for a report that is not open, Forbidden for a non-admin.
    """
    from ..models import Member, Report, utcnow
    from .errors import Forbidden, NotFound

    admin = db.session.get(Member, admin_id)
    if admin is None or not admin.is_admin:
        raise Forbidden("Only moderators can do this.")
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
