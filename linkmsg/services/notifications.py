"""In-app notifications: what happened, to whom, by whom; unread counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Invitation, Member, Notification, utcnow
from . import events
from .blocks import hidden_member_ids_query

INVITATION_RECEIVED = "invitation_received"
INVITATION_ACCEPTED = "invitation_accepted"
PROFILE_VIEWED = "profile_viewed"

# Kinds whose consecutive notifications read as one line ("Ava and 6 others viewed your
# profile"): many of them say little each.
GROUPED_KINDS = frozenset({PROFILE_VIEWED})


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


def unread_count(member_id: int) -> int:
    return db.session.scalar(unread_count_query(member_id))


def unread_count_query(member_id: int):
    return db.select(db.func.count(Notification.id)).where(
        Notification.member_id == member_id, Notification.read_at.is_(None), _visible(member_id)
    )


@dataclass
class Group:
    """One line of the notifications page: a notification, or a run of consecutive ones of a
    grouped kind, newest first."""

    items: list[tuple[Notification, Member | None]]
    # For an invitation received: what became of it ("pending", "accepted").
    invitation_status: str | None = field(default=None)

    @property
    def notification(self) -> Notification:
        return self.items[0][0]

    @property
    def actor(self) -> Member | None:
        return self.items[0][1]

    @property
    def actors(self) -> list[Member]:
        """Everyone in the group once, most recent first."""
        seen: dict[int, Member] = {}
        for _, actor in self.items:
            if actor is not None:
                seen.setdefault(actor.id, actor)
        return list(seen.values())

    @property
    def ids(self) -> list[int]:
        return [notification.id for notification, _ in self.items]

    @property
    def anchor_id(self) -> int:
        """The oldest notification's id: it stays the group's as newer ones join it."""
        return self.items[-1][0].id


def group(items: list[tuple[Notification, Member | None]]) -> list[Group]:
    """Consecutive notifications of a grouped kind become one group; others stay alone."""
    groups: list[Group] = []
    for notification, actor in items:
        last = groups[-1] if groups else None
        if (
            last
            and notification.kind in GROUPED_KINDS
            and last.notification.kind == notification.kind
        ):
            last.items.append((notification, actor))
        else:
            groups.append(Group([(notification, actor)]))
    return groups


def _with_invitation_status(groups: list[Group]) -> list[Group]:
    """An invitation's notification says whether it is still waiting (one query per page)."""
    ids = [g.notification.ref_id for g in groups if g.notification.kind == INVITATION_RECEIVED]
    if ids:
        statuses = dict(
            db.session.execute(
                db.select(Invitation.id, Invitation.status).where(Invitation.id.in_(ids))
            ).all()
        )
        for g in groups:
            if g.notification.kind == INVITATION_RECEIVED:
                g.invitation_status = statuses.get(g.notification.ref_id)
    return groups


def page(member_id: int, *, before_id: int | None = None, limit: int = 30):
    """Newest first, keyset-paged by id over notifications (grouped within the page);
    actors loaded with the same query.

    Returns (groups, next_before_id or None).
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
    return _with_invitation_status(group(items)), next_before


def group_of(member_id: int, notification_id: int, *, limit: int = 30) -> Group | None:
    """The group a new notification joins at the top of the first page (for live delivery)."""
    groups, _ = page(member_id, before_id=notification_id + 1, limit=limit)
    if groups and notification_id in groups[0].ids:
        return groups[0]
    return None


@dataclass(frozen=True)
class SeenPage:
    groups: list[Group]
    unread_ids: set[int]  # unread until this page was shown; read from now on
    next_before: int | None


def see_page(member_id: int, *, before_id: int | None = None, limit: int = 30) -> SeenPage:
    """A page of notifications as the member sees it: what was unread is marked read by
    seeing it, and shown unread this once. The rows are detached before the commit, so
    the page renders them as they were, without reading them again."""
    groups, next_before = page(member_id, before_id=before_id, limit=limit)
    items = [item for each in groups for item in each.items]
    unread_ids = {notification.id for notification, _ in items if notification.read_at is None}
    if unread_ids:
        for notification, actor in items:
            if notification in db.session:
                db.session.expunge(notification)
            if actor is not None and actor in db.session:
                db.session.expunge(actor)
        mark_all_read(member_id, up_to_id=max(unread_ids))
    return SeenPage(groups, unread_ids, next_before)


def mark_all_read(member_id: int, up_to_id: int | None = None) -> None:
    """Mark the member's notifications read, up to `up_to_id` (the newest one shown)."""
    query = db.update(Notification).where(
        Notification.member_id == member_id, Notification.read_at.is_(None)
    )
    if up_to_id is not None:
        query = query.where(Notification.id <= up_to_id)
    db.session.execute(query.values(read_at=utcnow()))
    db.session.commit()
