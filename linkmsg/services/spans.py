"""What a member may read of a group: the stretches of its history (`GroupSpan`) from
the line of their joining to the line of their leaving. Below `threads` and `outbox`,
which both keep to it."""

from __future__ import annotations

from ..extensions import db
from ..models import GroupSpan, Message


def visible_to(member_id: int, message_id=Message.id, thread_id=Message.thread_id):
    """SQL: the message is in a stretch of its group's history the member may read (a
    `GroupSpan`). Only for group threads: one-to-one threads have no spans."""
    return (
        db.select(GroupSpan.id)
        .where(
            GroupSpan.thread_id == thread_id,
            GroupSpan.member_id == member_id,
            GroupSpan.first_message_id <= message_id,
            db.or_(GroupSpan.last_message_id.is_(None), GroupSpan.last_message_id >= message_id),
        )
        .exists()
    )
