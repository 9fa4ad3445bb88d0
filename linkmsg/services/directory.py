"""The member directory: one member by handle (unless hidden from the viewer), search by
name and headline, and the member's own visibility settings."""

from __future__ import annotations

from sqlalchemy import and_, or_

from ..extensions import db
from ..models import Member
from ..text import like_pattern
from . import blocks
from .errors import NotFound


def get_visible_member(viewer_id: int | None, handle: str) -> Member:
    """The member with this handle as `viewer_id` may see them.

    Raises NotFound for an unknown or suspended member, and for one who has blocked the
    viewer (the blocked member sees no trace of the blocker).
    """
    member = db.session.scalar(db.select(Member).where(Member.handle == handle))
    if member is None or member.suspended_at is not None:
        raise NotFound("This member does not exist.")
    if (
        viewer_id is not None
        and viewer_id != member.id
        and blocks.has_blocked(member.id, viewer_id)
    ):
        raise NotFound("This member does not exist.")
    return member


def require_member(member_id: int) -> Member:
    """The member by id, unless suspended. Raises NotFound otherwise."""
    member = db.session.get(Member, member_id)
    if member is None or member.suspended_at is not None:
        raise NotFound("This member does not exist.")
    return member


def by_name_page(query, after: tuple[str, int] | None, limit: int, *, rows: bool = False):
    """Run a member query keyset-paged on (name, id): no OFFSET, however deep the page.

    Returns (members, cursor of the next page or None); with `rows`, the query's rows
    (the member first, then its further columns) in place of the members.
    """
    if after is not None:
        name, member = after
        query = query.where(or_(Member.name > name, and_(Member.name == name, Member.id > member)))
    query = query.order_by(Member.name, Member.id).limit(limit + 1)
    found = list(db.session.execute(query).all() if rows else db.session.scalars(query))
    if len(found) > limit:
        last = found[limit - 1][0] if rows else found[limit - 1]
        return found[:limit], (last.name, last.id)
    return found, None


def search(viewer_id: int | None, q: str, *, after: tuple[str, int] | None = None, limit: int = 20):
    """Members whose name or headline contains every word of `q`, by name.

    Leaves out the viewer, suspended members and anyone blocked either way.
    Returns (members, next cursor).
    """
    query = search_query(viewer_id, q)
    if query is None:
        return [], None
    return by_name_page(query, after, limit)


def search_query(viewer_id: int | None, q: str):
    """The select of `search`, unordered and unpaged (None when `q` has no word), for a
    caller that reads more columns with each member."""
    words = [w for w in (q or "").split() if w][:6]
    if not words:
        return None
    query = db.select(Member).where(Member.suspended_at.is_(None))
    for word in words:
        pattern = like_pattern(word[:100])
        query = query.where(
            or_(
                Member.name.ilike(pattern, escape="\\"), Member.headline.ilike(pattern, escape="\\")
            )
        )
    if viewer_id is not None:
        query = query.where(
            Member.id != viewer_id, Member.id.not_in(blocks.hidden_member_ids_query(viewer_id))
        )
    return query


def update_settings(
    member_id: int, *, show_active: bool, email_notifications: bool, accepts_inmail: bool
) -> Member:
    member = require_member(member_id)
    member.show_active = show_active
    member.email_notifications = email_notifications
    member.accepts_inmail = accepts_inmail
    db.session.commit()
    return member
