"""Profile views: recorded once a day per viewer, and who viewed a member (the last few
for free members, everyone in 90 days for Premium)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import literal

from ..extensions import db
from ..models import Member, ProfileView, utcnow
from . import atomic, blocks, notifications

FREE_VIEWERS_SHOWN = 5
VIEWS_KEPT_DAYS = 90


def record_view(viewer_id: int, viewed_id: int) -> bool:
    """Record that `viewer_id` looked at `viewed_id`'s profile, once a day per viewer,
    unless either has blocked the other.

    One statement, INSERT ... SELECT ... WHERE no block ON CONFLICT DO NOTHING RETURNING:
    a view already recorded today costs no more than the check would, and two views at
    once (two tabs) record one row, the unique (viewed, viewer, day) deciding which.
    Returns True when this was the first view of the day (and a notification went out).
    """
    if viewer_id == viewed_id:
        return False
    now = utcnow()
    recorded = atomic.insert_ignoring_conflict(
        ProfileView,
        {"viewer_id": viewer_id, "viewed_id": viewed_id, "day": now.date(), "viewed_at": now},
        ["viewed_id", "viewer_id", "day"],
        where=literal(viewed_id).not_in(blocks.hidden_member_ids_query(viewer_id)),
    )
    if recorded is None:
        return False
    notifications.notify(viewed_id, notifications.PROFILE_VIEWED, actor_id=viewer_id)
    db.session.commit()
    return True


def viewed_on(viewer_id, viewed_id, day):
    """SQL: whether `viewer_id`'s view of `viewed_id` on `day` is recorded already (a
    column of the profile page's statement, so that a page seen again today writes
    nothing: `record_view` is asked only when it would record)."""
    return (
        db.select(ProfileView.viewer_id)
        .where(
            ProfileView.viewed_id == viewed_id,
            ProfileView.viewer_id == viewer_id,
            ProfileView.day == day,
        )
        .exists()
    )


def today():
    """The day a view made now is recorded under."""
    return utcnow().date()


@dataclass(frozen=True)
class Viewers:
    shown: list[tuple[Member, datetime]]
    total: int  # distinct viewers in the window
    limited: bool  # True when the plan shows only some of them
    next_after: tuple[datetime, int] | None = None  # keyset cursor of the next page


VIEWERS_PAGE = 50


def viewers(
    member: Member, *, after: tuple[datetime, int] | None = None, limit: int = VIEWERS_PAGE
) -> Viewers:
    """Who viewed the member's profile in the last 90 days, most recent first.

    Free members see the last 5 viewers; premium members see all of them, a page at a
    time (keyset-paged on (last view, member id) after `after`).
    """
    since = (utcnow() - timedelta(days=VIEWS_KEPT_DAYS)).date()
    hidden = blocks.hidden_member_ids_query(member.id)
    last_seen = db.func.max(ProfileView.viewed_at).label("last_seen")
    base = (
        db.select(ProfileView.viewer_id, last_seen)
        .join(Member, Member.id == ProfileView.viewer_id)
        .where(
            ProfileView.viewed_id == member.id,
            ProfileView.day >= since,
            Member.suspended_at.is_(None),
            ProfileView.viewer_id.not_in(hidden),
        )
        .group_by(ProfileView.viewer_id)
    ).subquery()
    total = db.session.scalar(db.select(db.func.count()).select_from(base))
    query = (
        db.select(Member, base.c.last_seen)
        .join(base, base.c.viewer_id == Member.id)
        .order_by(base.c.last_seen.desc(), Member.id)
    )
    if not member.is_premium:
        shown = [(m, seen) for m, seen in db.session.execute(query.limit(FREE_VIEWERS_SHOWN))]
        return Viewers(shown=shown, total=total, limited=total > FREE_VIEWERS_SHOWN)
    if after is not None:
        seen_at, member_id = after
        query = query.where(
            db.or_(
                base.c.last_seen < seen_at,
                db.and_(base.c.last_seen == seen_at, Member.id > member_id),
            )
        )
    rows = [(m, seen) for m, seen in db.session.execute(query.limit(limit + 1))]
    more = len(rows) > limit
    shown = rows[:limit]
    next_after = (shown[-1][1], shown[-1][0].id) if more else None
    return Viewers(shown=shown, total=total, limited=False, next_after=next_after)
