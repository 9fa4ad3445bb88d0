"""In-app notifications: what happened, to whom, by whom; unread counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Member, Notification, utcnow
from . import events
from .blocks import hidden_member_ids_query

INVITATION_RECEIVED = "invitation_received"
INVITATION_ACCEPTED = "invitation_accepted"
PROFILE_VIEWED = "profile_viewed"


def notify(
    member_id: int, kind: str, *, actor_id: int | None = None, ref_id: int | None = None
) -> Notification:
    """Add a notification to the current transaction (the caller commits)."""
    notification = Notification(member_id=member_id, kind=kind, actor_id=actor_id, ref_id=ref_id)
    db.session.add(notification)
    db.session.flush()
    events.record(member_id, events.NOTIFICATION, notification_id=notification.id)
    return notification


def retract(member_id: int, kind: str, ref_id: int) -> None:
    """Remove a notification about something that no longer stands (a withdrawn invitation)."""
    db.session.execute(
        db.delete(Notification).where(
            Notification.member_id == member_id,
            Notification.kind == kind,
            Notification.ref_id == ref_id,
        )
    )


def _visible(member_id: int):
    """Notifications whose actor is not hidden from the member: not blocked either way,
    not suspended (a suspended member cannot be found, so nothing points to them)."""
    actor = aliased(Member)  # its own name: the page's query joins Member as well
    suspended_actor = (
        db.select(actor.id)
        .where(actor.id == Notification.actor_id, actor.suspended_at.is_not(None))
        .correlate(Notification)
        .exists()
    )
    return db.or_(
        Notification.actor_id.is_(None),
        db.and_(Notification.actor_id.not_in(hidden_member_ids_query(member_id)), ~suspended_actor),
    )


def _who(member_id: int, notification: Notification, actor: Member | None) -> Member | None:
    """The actor as the member may see them: a free member is told that someone viewed
    their profile, not who (Premium shows who; the viewers page shows the last few)."""
    if notification.kind == PROFILE_VIEWED and actor is not None:
        member = db.session.get(Member, member_id)
        if member is None or not member.is_premium:
            return None
    return actor


def shown_to(member_id: int, notification_id: int) -> tuple[Notification, Member | None] | None:
    """A notification of the member's with its actor, by the rule `/notifications`
    shows them by; None when it is gone or its actor is hidden (a block, a suspension)."""
    found = db.session.execute(
        db.select(Notification, Member)
        .outerjoin(Member, Member.id == Notification.actor_id)
        .where(
            Notification.id == notification_id,
            Notification.member_id == member_id,
            _visible(member_id),
        )
    ).first()
    if found is None:
        return None
    notification, actor = found
    return notification, _who(member_id, notification, actor)


def unread_count(member_id: int) -> int:
    return db.session.scalar(unread_count_query(member_id))


def unread_count_query(member_id: int):
    return db.select(db.func.count(Notification.id)).where(
        Notification.member_id == member_id, Notification.read_at.is_(None), _visible(member_id)
    )


def page(member_id: int, *, before_id: int | None = None, limit: int = 30):
    """Newest first, keyset-paged by id; actors loaded with the same query.

    Returns (notifications, next_before_id or None).
    """
    query = (
        db.select(Notification, Member)
        .outerjoin(Member, Member.id == Notification.actor_id)
        .where(Notification.member_id == member_id, _visible(member_id))
        .order_by(Notification.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = db.session.execute(query).all()
    items = [(item, _who(member_id, item, actor)) for item, actor in rows[:limit]]
    next_before = items[-1][0].id if len(rows) > limit else None
    return items, next_before


@dataclass(frozen=True)
class SeenPage:
    items: list[tuple[Notification, Member | None]]
    unread_ids: set[int]  # unread until this page was shown; read from now on
    next_before: int | None


def see_page(member_id: int, *, before_id: int | None = None, limit: int = 30) -> SeenPage:
    """A page of notifications as the member sees it: what was unread is marked read by
    seeing it, and shown unread this once. The rows are detached before the commit, so
    the page renders them as they were, without reading them again."""
    items, next_before = page(member_id, before_id=before_id, limit=limit)
    unread_ids = {notification.id for notification, _ in items if notification.read_at is None}
    if unread_ids:
        for notification, actor in items:
            db.session.expunge(notification)
            if actor is not None and actor in db.session:
                db.session.expunge(actor)
        mark_all_read(member_id, up_to_id=max(unread_ids))
    return SeenPage(items, unread_ids, next_before)


def mark_all_read(member_id: int, up_to_id: int | None = None) -> None:
    """Mark the member's notifications read, up to `up_to_id` (the newest one shown)."""
    query = db.update(Notification).where(
        Notification.member_id == member_id, Notification.read_at.is_(None)
    )
    if up_to_id is not None:
        query = query.where(Notification.id <= up_to_id)
    db.session.execute(query.values(read_at=utcnow()))
    db.session.commit()
