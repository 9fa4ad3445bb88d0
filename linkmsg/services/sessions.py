"""Login sessions: one row per login, live until it is ended.

The cookie carries the row's id and a secret (the database keeps only its hash), so a
copied cookie works exactly as long as the row is live. Ending rows records a
`session_ended` event in the same transaction: open event streams of those sessions
close when it arrives.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam

from ..extensions import db
from ..models import Member, MemberSession, utcnow
from ..sql import CoreEntities
from . import events

USER_AGENT_MAX = 200


@dataclass(frozen=True)
class Started:
    """What the cookie keeps of a new session: its id and its secret."""

    id: int
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(member_id: int, user_agent: str = "") -> Started:
    """Open a session for a member who has just proved who they are."""
    secret = secrets.token_urlsafe(32)
    row = MemberSession(
        member_id=member_id,
        secret_hash=_hash(secret),
        user_agent=(user_agent or "")[:USER_AGENT_MAX],
    )
    db.session.add(row)
    db.session.commit()
    return Started(row.id, secret)


def load_query(also: dict | None = None):
    """The statement `load_member` runs: the session and its member, and `also`, more
    columns (name -> column) a page wants in the same round trip, over the bound
    parameter `member_id` (the member the cookie names). Build it once and keep it."""
    extra = [column.label(name) for name, column in (also or {}).items()]
    # The session's few columns, and the member's through Core (`_MEMBER`): this runs on
    # every request, and the ORM's loading of one row had cost more than the statement.
    return (
        db.select(*_SESSION_COLUMNS, *_MEMBER.columns, *extra)
        .select_from(MemberSession)
        .join(Member, Member.id == MemberSession.member_id)
        .where(MemberSession.id == bindparam("session_id"), MemberSession.ended_at.is_(None))
    )


_SESSION_COLUMNS = (MemberSession.id, MemberSession.secret_hash, MemberSession.last_seen_at)
_MEMBER = CoreEntities(Member)
_LOAD = load_query()


def load_member(
    member_id: str, session_id, secret, *, query=None, also: dict | None = None, touch=True
) -> Member | None:
    """The member a cookie names, if its session is live and the member not suspended.
    With `query` (from `load_query`), its further columns are put in `also` by name, for
    that member only. `touch`: the session was used (its `last_seen_at`)."""
    if not (member_id or "").isdigit() or not isinstance(session_id, int) or not secret:
        return None
    # One query for both: this runs on every request.
    found = (
        db.session.connection()
        .execute(
            _LOAD if query is None else query,
            {"session_id": session_id, "member_id": int(member_id)},
        )
        .first()
    )
    if found is None:
        return None
    (session_row, secret_hash, last_seen_at), (member,) = found[:3], _MEMBER.instances(found, 3)
    if (
        member.id != int(member_id)
        or member.suspended_at is not None
        or not secrets.compare_digest(secret_hash, _hash(str(secret)))
    ):
        return None
    # In the session as if loaded there: a service that changes the member (a new name,
    # a plan) finds this instance, so the page drawn after it shows the change.
    db.session.add(member)
    if also is not None:
        start = 3 + len(_MEMBER.columns)
        also.update(zip(found._fields[start:], found[start:], strict=True))
    if touch:
        _touch(session_row, last_seen_at)
    return member


def _touch(session_row: int, last_seen_at: datetime, now: datetime | None = None) -> None:
    """Keep the session's `last_seen_at` roughly current: written at most once a minute."""
    now = now or utcnow()
    interval = timedelta(seconds=current_app.config["ACTIVE_WRITE_INTERVAL_SECONDS"])
    if now - last_seen_at < interval:
        return
    db.session.execute(
        db.update(MemberSession)
        .where(MemberSession.id == session_row, MemberSession.last_seen_at < now - interval)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def live(member_id: int) -> list[MemberSession]:
    """The member's open sessions, most recently seen first."""
    return list(
        db.session.scalars(
            db.select(MemberSession)
            .where(MemberSession.member_id == member_id, MemberSession.ended_at.is_(None))
            .order_by(MemberSession.last_seen_at.desc(), MemberSession.id.desc())
        )
    )


def end(member_id: int, session_id: int | None) -> list[int]:
    """End one session (logging out). Commits; returns the ids ended."""
    if session_id is None:
        return []
    ended = _end_where(member_id, MemberSession.id == session_id)
    db.session.commit()
    return ended


def end_all(member_id: int, *, keep: int | None = None) -> list[int]:
    """End every live session of a member, except `keep` (this one) when given.

    Joins the caller's transaction: the caller commits, so the sessions end together
    with what caused it (a new password, a suspension).
    """
    condition = MemberSession.id != keep if keep is not None else db.true()
    return _end_where(member_id, condition)


def _end_where(member_id: int, condition) -> list[int]:
    # A conditional UPDATE: two requests ending the same session both see it end once.
    ended = list(
        db.session.scalars(
            db.update(MemberSession)
            .where(
                MemberSession.member_id == member_id,
                MemberSession.ended_at.is_(None),
                condition,
            )
            .values(ended_at=utcnow())
            .returning(MemberSession.id)
            .execution_options(synchronize_session=False)
        )
    )
    if ended:
        events.record(member_id, events.SESSION_ENDED, sessions=sorted(ended))
    return ended


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe(user_agent: str) -> str:
    """'Firefox on Linux': enough for a member to recognise their own device."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    word = re.match(r"[\w.-]+", user_agent or "")
    return word.group(0)[:40] if word else "Unknown device"
