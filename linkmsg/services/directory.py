"""The member directory: one member by handle (unless hidden from the viewer), search by
name and headline, and the member's own visibility settings."""

from __future__ import annotations

from collections import namedtuple
from functools import lru_cache

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    table,
)
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Member
from ..sql import CoreEntities
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

    Returns (rows, next cursor): each row the member (detached: to show, not to change),
    then the columns `more(viewer)` gives for them (`more` a hashable function of the
    bound parameter `viewer`; the caller's own columns)."""
    words = [w for w in (q or "").split() if w][:6]
    if not words:
        return [], None
    params = {f"word_{n}": like_pattern(word[:100]) for n, word in enumerate(words)}
    params["viewer"] = viewer_id
    if after is not None:
        params["after_name"], params["after_id"] = after
    # On PostgreSQL the longest word leads (as a rule the fewest members have it), when
    # it is long enough for the terms' trigram index.
    lead = max(range(len(words)), key=lambda n: len(words[n]))
    if db.session.get_bind().dialect.name == "postgresql" and len(words[lead]) >= 3:
        statement = _search_by_terms(len(words), lead, after is not None, limit, more)
    else:
        statement = _search_statement(len(words), after is not None, limit, more)
    # Through Core: the members are made from their columns, detached (a page of results
    # is only shown; the ORM's loading of twenty members cost more than the statement).
    result = db.session.connection().execute(statement, params)
    width = len(_MEMBER.columns)
    found = _found(tuple(result.keys())[width:])
    rows = [found(*_MEMBER.instances(row), *row[width:]) for row in result.all()]
    if len(rows) > limit:
        last = rows[limit - 1][0]
        return rows[:limit], (last.name, last.id)
    return rows, None


def _shown(member, words: int, *, unseen: bool = False) -> list:
    """What a member found must be, as conditions on `member` (the entity or an alias):
    every word in the name or headline, not suspended, not the viewer, not blocked
    either way. `unseen`: the words through subqueries, which PostgreSQL plans without
    looking at (see `_search_by_terms`)."""
    conditions = [member.suspended_at.is_(None)]
    for n in range(words):
        pattern = _unseen(f"word_{n}") if unseen else bindparam(f"word_{n}", type_=String)
        conditions.append(
            or_(
                member.name.ilike(pattern, escape="\\"),
                member.headline.ilike(pattern, escape="\\"),
            )
        )
    conditions += [
        member.id != _VIEWER,
        member.id.not_in(blocks.hidden_member_ids_query(_VIEWER)),
    ]
    return conditions


@lru_cache(maxsize=64)
def _search_statement(words: int, after: bool, limit: int, more):
    """The search's statement for its shape, over bound parameters (word_0.., viewer,
    after_name, after_id): built once, and SQLAlchemy keeps its cache key with it, where
    building it for every search had worked both out every time."""
    query = db.select(*_MEMBER.columns).where(*_shown(Member, words))
    if more is not None:
        query = query.add_columns(*more(_VIEWER))
    if after:
        name, member = bindparam("after_name", type_=String), bindparam("after_id", type_=Integer)
        query = query.where(or_(Member.name > name, and_(Member.name == name, Member.id > member)))
    return query.order_by(Member.name, Member.id).limit(limit + 1)


def _unseen(name: str):
    """The bound parameter `name` as a subquery (an InitPlan, worked out once)."""
    return db.select(bindparam(name, type_=String)).scalar_subquery()


# The terms of every member's name and headline, each with the member's name (migration
# 0014: PostgreSQL only, kept by triggers), and every term once.
_MEMBER_TERM = table(
    "member_term", column("term", String), column("name", String), column("member_id", Integer)
)
_SEARCH_TERM = table("search_term", column("term", String))


@lru_cache(maxsize=64)
def _search_by_terms(words: int, lead: int, after: bool, limit: int, more):
    """The same search through the terms (PostgreSQL), for the same bound parameters.

    The members having a term that contains the `lead` word come from the terms' primary
    key in name order, without reading their rows. Each is then checked against
    `_shown` on its own row, in that order, until the page is full: a word that
    thousands of members have costs index entries, and the rows of the members the page
    shows (and of those it passes over). A word asked lies inside one term of any name
    or headline that contains it (terms are split on whitespace, which no word holds), so
    the candidates hold every member the search may show.

    The words reach the statement through subqueries (`_unseen`), so PostgreSQL plans
    it without looking at them: the plan is the same for every word, and PostgreSQL
    keeps the first one. Planned for each word, as it was while it could see them,
    every search cost 0.5 ms of planning for the same plan.

    Two fences keep that order of work. OFFSET 0 keeps the check out of the candidates'
    subquery (PostgreSQL would move it there and check every candidate before sorting).
    The check is a scalar subquery, which PostgreSQL does not turn into a join (as a
    join it would read every member with the word through the trigram indexes)."""
    terms = _MEMBER_TERM
    pattern = bindparam(f"word_{lead}", type_=String)
    matching = db.select(_SEARCH_TERM.c.term).where(
        _SEARCH_TERM.c.term.like(db.select(func.lower(pattern)).scalar_subquery(), escape="\\")
    )
    candidates = (
        db.select(terms.c.name, terms.c.member_id).distinct().where(terms.c.term.in_(matching))
    )
    if after:
        name, member = bindparam("after_name", type_=String), bindparam("after_id", type_=Integer)
        candidates = candidates.where(
            or_(terms.c.name > name, and_(terms.c.name == name, terms.c.member_id > member))
        )
    candidates = (
        candidates.order_by(terms.c.name, terms.c.member_id)
        .offset(literal_column("0"))
        .subquery("candidate")
    )
    found = aliased(Member, name="found")
    shown = (
        db.select(literal_column("true"))
        .where(found.id == candidates.c.member_id, *_shown(found, words, unseen=True))
        .scalar_subquery()
    )
    page = (
        db.select(candidates.c.member_id)
        .where(shown)
        .order_by(candidates.c.name, candidates.c.member_id)
        .limit(literal_column(str(limit + 1)))  # written in: the kept plan is planned for it
        .subquery("page")
    )
    query = db.select(*_MEMBER.columns).join(page, page.c.member_id == Member.id)
    if more is not None:
        query = query.add_columns(*more(_VIEWER))
    return query.order_by(Member.name, Member.id)


_VIEWER = bindparam("viewer", type_=Integer)
_MEMBER = CoreEntities(Member)


@lru_cache(maxsize=16)
def _found(names: tuple[str, ...]):
    """A row of `search_rows`: the member, then the caller's columns by their names."""
    return namedtuple("Found", ("member", *names))


def update_settings(
    member_id: int, *, show_active: bool, email_notifications: bool, accepts_inmail: bool
) -> Member:
    member = require_member(member_id)
    member.show_active = show_active
    member.email_notifications = email_notifications
    member.accepts_inmail = accepts_inmail
    db.session.commit()
    return member
