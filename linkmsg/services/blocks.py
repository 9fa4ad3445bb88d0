"""Who has blocked whom: the queries every other service asks before it shows or allows
anything between two members. Depends on the models alone, so that any service may ask;
blocking and unblocking are in `blocking`.
"""

from __future__ import annotations

from sqlalchemy import and_, or_

from ..extensions import db
from ..models import Block


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


def blocked_by(blocker_id: int, member_ids) -> set[int]:
    """Which of these members `blocker_id` has blocked, in one query."""
    ids = list(member_ids)
    if not ids:
        return set()
    return set(
        db.session.scalars(
            db.select(Block.blocked_id).where(
                Block.blocker_id == blocker_id, Block.blocked_id.in_(ids)
            )
        )
    )


def blocked_pairs(blocker_ids, member_ids) -> set[tuple[int, int]]:
    """(blocker, blocked) for each of these blockers who blocked one of these members."""
    blockers, members = list(blocker_ids), list(member_ids)
    if not blockers or not members:
        return set()
    return set(
        db.session.execute(
            db.select(Block.blocker_id, Block.blocked_id).where(
                Block.blocker_id.in_(blockers), Block.blocked_id.in_(members)
            )
        ).all()
    )


def has_blocked_sql(blocker_id, blocked_id):
    """SQL: `blocker_id` has blocked `blocked_id` (columns or values), for a query that
    decides it for each of its rows."""
    return (
        db.select(Block.blocker_id)
        .where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
        .exists()
    )


def hidden_member_ids_query(member_id: int):
    """A subquery of the members hidden from `member_id` by a block, either way.

    `member_id` may be a column of an enclosing statement (the badges of many members):
    a SELECT inside a UNION is not correlated on its own, and would take that column's
    table as a FROM of its own — every block between anyone then hid the thread."""
    return (
        db.select(Block.blocked_id)
        .where(Block.blocker_id == member_id)
        .correlate_except(Block)
        .union(
            db.select(Block.blocker_id).where(Block.blocked_id == member_id).correlate_except(Block)
        )
    )


def blocked_ids_query(blocker_id: int):
    """A subquery of the members `blocker_id` blocked (one way)."""
    return db.select(Block.blocked_id).where(Block.blocker_id == blocker_id)
