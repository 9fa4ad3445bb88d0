"""Presence: when a member was last active, and the "Active 12m ago" others may see."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import Member, utcnow
from ..text import short_duration

ACTIVE_NOW_SECONDS = 5 * 60
ACTIVE_SHOWN_DAYS = 30


def touch_active(member: Member, now: datetime | None = None) -> bool:
    """Record that the member is active, at most once a minute (not on every request).

    Returns True when a write happened.
    """
    now = now or utcnow()
    interval = timedelta(seconds=current_app.config["ACTIVE_WRITE_INTERVAL_SECONDS"])
    if member.last_active_at is not None and now - member.last_active_at < interval:
        return False
    updated = db.session.execute(
        db.update(Member)
        .where(
            Member.id == member.id,
            or_(Member.last_active_at.is_(None), Member.last_active_at < now - interval),
        )
        .values(last_active_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    # Reflect the write without marking the member dirty (which would flush it again).
    set_committed_value(member, "last_active_at", now)
    return bool(updated)


def active_status(member: Member, viewer: Member | None, now: datetime | None = None) -> str | None:
    """ "Active now" / "Active 12m ago", or None when it is not to be shown.

    Hidden when the member hides it, when the viewer hides their own (it is shared
    both ways or not at all), to visitors who are not logged in, and after 30 days.
    """
    if viewer is None or member.id == viewer.id:
        return None
    if not member.show_active or not viewer.show_active or member.last_active_at is None:
        return None
    seconds = ((now or utcnow()) - member.last_active_at).total_seconds()
    if seconds < ACTIVE_NOW_SECONDS:
        return "Active now"
    if seconds > ACTIVE_SHOWN_DAYS * 86400:
        return None
    return f"Active {short_duration(seconds)} ago"
