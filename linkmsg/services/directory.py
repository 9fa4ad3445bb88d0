"""The member directory: one member by handle (unless hidden from the viewer), search by
name and headline, and the member's own visibility settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Integer, String, and_, bindparam, or_

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


def by_name_page(query, after: tuple[str, int] | None, limit: int):
    """Run a member query keyset-paged on (name, id): no OFFSET, however deep the page.

    Returns (members, cursor of the next page or None).
    """
    if after is not None:
        name, member = after
        query = query.where(or_(Member.name > name, and_(Member.name == name, Member.id > member)))
    members = list(db.session.scalars(query.order_by(Member.name, Member.id).limit(limit + 1)))
    cursor = (members[limit - 1].name, members[limit - 1].id) if len(members) > limit else None
    return members[:limit], cursor


def search_rows(
    viewer_id: int,
    q: str,
    *,
    after: tuple[str, int] | None = None,
    limit: int = 20,
    more=None,
):
    """Members whose name or headline contains every word of `q`, by name, a page keyset
    on (name, id). Leaves out the viewer, suspended members and anyone blocked either way.

    Returns (rows, next cursor): each row the member, then the columns `more(viewer)`
    gives for them (`more` a hashable function of the bound parameter `viewer`; the
    caller's own columns)."""
    words = [w for w in (q or "").split() if w][:6]
    if not words:
        return [], None
    params = {f"word_{n}": like_pattern(word[:100]) for n, word in enumerate(words)}
    params["viewer"] = viewer_id
    if after is not None:
        params["after_name"], params["after_id"] = after
    rows = db.session.execute(
        _search_statement(len(words), after is not None, limit, more), params
    ).all()
    if len(rows) > limit:
        last = rows[limit - 1][0]
        return rows[:limit], (last.name, last.id)
    return rows, None


@lru_cache(maxsize=64)
def _search_statement(words: int, after: bool, limit: int, more):
    """The search's statement for its shape, over bound parameters (word_0.., viewer,
    after_name, after_id): built once, and SQLAlchemy keeps its cache key with it, where
    building it for every search had worked both out every time."""
    query = db.select(Member).where(Member.suspended_at.is_(None))
    for n in range(words):
        pattern = bindparam(f"word_{n}", type_=String)
        query = query.where(
            or_(
                Member.name.ilike(pattern, escape="\\"),
                Member.headline.ilike(pattern, escape="\\"),
            )
        )
    query = query.where(
        Member.id != _VIEWER, Member.id.not_in(blocks.hidden_member_ids_query(_VIEWER))
    )
    if more is not None:
        query = query.add_columns(*more(_VIEWER))
    if after:
        name, member = bindparam("after_name", type_=String), bindparam("after_id", type_=Integer)
        query = query.where(or_(Member.name > name, and_(Member.name == name, Member.id > member)))
    return query.order_by(Member.name, Member.id).limit(limit + 1)


_VIEWER = bindparam("viewer", type_=Integer)


def update_settings(
    member_id: int, *, show_active: bool, email_notifications: bool, accepts_inmail: bool
) -> Member:
    member = require_member(member_id)
    member.show_active = show_active
    member.email_notifications = email_notifications
    member.accepts_inmail = accepts_inmail
    db.session.commit()
    return member
