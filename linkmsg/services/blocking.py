"""Blocking and unblocking a member, and the list of members one has blocked."""

from __future__ import annotations

from sqlalchemy import and_, or_

from ..extensions import db
from ..models import (
    INVITATION_OPEN,
    INVITATION_WITHDRAWN,
    Block,
    Connection,
    Invitation,
    Member,
    utcnow,
)
from . import atomic, notifications
from .blocks import has_blocked
from .errors import NotFound, ValidationFailed


def block(blocker_id: int, blocked_id: int) -> None:
    """Block a member: the connection between them ends and open invitations are withdrawn.

    Raises ValidationFailed when blocking oneself. Blocking twice is harmless.
    """
    add_block(blocker_id, blocked_id)
    db.session.commit()


def add_block(blocker_id: int, blocked_id: int) -> None:
    """`block` in the caller's transaction (the caller commits), for a member action that
    blocks as one of its steps (a report with "also block")."""
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


def unblock(blocker_id: int, blocked_id: int) -> None:
    """Lift a block. The connection it ended does not come back."""
    db.session.execute(
        db.delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    db.session.commit()


def blocked_members(member_id: int) -> list[Member]:
    """The members `member_id` has blocked, most recent first."""
    return list(
        db.session.scalars(
            db.select(Member)
            .join(Block, Block.blocked_id == Member.id)
            .where(Block.blocker_id == member_id)
            .order_by(Block.created_at.desc())
        )
    )


def blocked_member(blocker_id: int, handle: str) -> Member:
    """A member this member has blocked, by handle. Raises NotFound otherwise."""
    member = db.session.scalar(
        db.select(Member)
        .join(Block, Block.blocked_id == Member.id)
        .where(Block.blocker_id == blocker_id, Member.handle == handle)
    )
    if member is None:
        raise NotFound("You have not blocked this member.")
    return member
