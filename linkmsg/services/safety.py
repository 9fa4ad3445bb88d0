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
from . import notifications
from .errors import ValidationFailed


def blocked_either_way(a_id: int, b_id: int) -> bool:
    """True when either member has blocked the other."""
    return (
        db.session.scalar(
            db.select(Block.blocker_id)
            .where(
                or_(
                    and_(Block.blocker_id == a_id, Block.blocked_id == b_id),
                    and_(Block.blocker_id == b_id, Block.blocked_id == a_id),
                )
            )
            .limit(1)
        )
        is not None
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
