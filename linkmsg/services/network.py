"""The network: invitations, connections, degrees, member search, profile views, presence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, or_, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import (
    INVITATION_ACCEPTED,
    INVITATION_IGNORED,
    INVITATION_OPEN,
    INVITATION_PENDING,
    INVITATION_WITHDRAWN,
    Block,
    Connection,
    Invitation,
    Member,
    ProfileView,
    utcnow,
)
from ..text import like_pattern, normalise_newlines, short_duration
from . import atomic, blocks, notifications
from .errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed

# ---------------------------------------------------------------- degrees

FIRST, SECOND, THIRD, OUT_OF_NETWORK = 1, 2, 3, None
DEGREE_LABELS = {FIRST: "1st", SECOND: "2nd", THIRD: "3rd", OUT_OF_NETWORK: "Out of network"}

# Meet in the middle: a's neighbours are expanded one step (about 50 x 50 index reads on
# a network of 50 connections each) and met with b's own neighbours through the primary
# key of `connection`. Nothing walks the graph beyond that, and nothing leaves SQL.
_DEGREE_SQL = text(
    """
    SELECT CASE
      WHEN EXISTS (SELECT 1 FROM connection WHERE member_id = :a AND other_id = :b) THEN 1
      WHEN EXISTS (
        SELECT 1 FROM connection x
        JOIN connection y ON y.member_id = x.other_id AND y.other_id = :b
        WHERE x.member_id = :a) THEN 2
      WHEN EXISTS (
        SELECT 1 FROM connection x
        JOIN connection m ON m.member_id = x.other_id
        JOIN connection y ON y.member_id = :b AND y.other_id = m.other_id
        WHERE x.member_id = :a) THEN 3
      ELSE 0
    END
    """
)

_BATCH_DEGREE_SQL = text(
    """
    SELECT other_id, 1 FROM connection WHERE member_id = :a AND other_id IN :ids
    UNION ALL
    SELECT DISTINCT y.other_id, 2 FROM connection x
      JOIN connection y ON y.member_id = x.other_id
      WHERE x.member_id = :a AND y.other_id IN :ids
    UNION ALL
    SELECT DISTINCT c.member_id, 3 FROM connection c
      WHERE c.member_id IN :ids AND c.other_id IN (
        SELECT m.other_id FROM connection x JOIN connection m ON m.member_id = x.other_id
        WHERE x.member_id = :a)
    """
).bindparams(bindparam("ids", expanding=True))


def degree(a_id: int, b_id: int) -> int | None:
    """1, 2 or 3 for the degree between two members, None when out of network (or self)."""
    if a_id == b_id:
        return None
    value = db.session.scalar(_DEGREE_SQL, {"a": a_id, "b": b_id})
    return value or None


def degrees(viewer_id: int, member_ids: list[int]) -> dict[int, int | None]:
    """Degrees from one member to a page of others, in one query."""
    ids = sorted({m for m in member_ids if m != viewer_id})
    result: dict[int, int | None] = dict.fromkeys(member_ids)
    if not ids:
        return result
    for member_id, value in db.session.execute(_BATCH_DEGREE_SQL, {"a": viewer_id, "ids": ids}):
        current = result.get(member_id)
        if current is None or value < current:
            result[member_id] = value
    return result


def degree_label(value: int | None) -> str:
    return DEGREE_LABELS[value]


def mutual_count(a_id: int, b_id: int) -> int:
    if a_id == b_id:
        return 0
    return db.session.scalar(
        text(
            "SELECT count(*) FROM connection x JOIN connection y"
            " ON y.member_id = x.other_id AND y.other_id = :b WHERE x.member_id = :a"
        ),
        {"a": a_id, "b": b_id},
    )


def are_connected(a_id: int, b_id: int) -> bool:
    return db.session.get(Connection, (a_id, b_id)) is not None


# ---------------------------------------------------------------- members


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


def _require_member(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.suspended_at is not None:
        raise NotFound("This member does not exist.")
    return member


# ---------------------------------------------------------------- relationship state


@dataclass(frozen=True)
class Relationship:
    """What the viewer can do about another member, as the Connect control shows it."""

    state: str  # self | connected | sent | received | blocked | none
    invitation_id: int | None = None


def relationship(viewer_id: int, member_id: int) -> Relationship:
    return relationships(viewer_id, [member_id])[member_id]


def relationships(viewer_id: int, member_ids: list[int]) -> dict[int, Relationship]:
    """The Connect state for a page of members, in three queries whatever the page size."""
    ids = list({m for m in member_ids if m != viewer_id})
    result = {m: Relationship("none") for m in member_ids}
    if viewer_id in member_ids:
        result[viewer_id] = Relationship("self")
    if not ids:
        return result
    blocked = set(
        db.session.scalars(
            db.select(Block.blocked_id).where(
                Block.blocker_id == viewer_id, Block.blocked_id.in_(ids)
            )
        )
    )
    connected = set(
        db.session.scalars(
            db.select(Connection.other_id).where(
                Connection.member_id == viewer_id, Connection.other_id.in_(ids)
            )
        )
    )
    open_invitations = db.session.execute(
        db.select(
            Invitation.id, Invitation.sender_id, Invitation.recipient_id, Invitation.status
        ).where(
            Invitation.status.in_(INVITATION_OPEN),
            or_(
                and_(Invitation.sender_id == viewer_id, Invitation.recipient_id.in_(ids)),
                and_(Invitation.recipient_id == viewer_id, Invitation.sender_id.in_(ids)),
            ),
        )
    ).all()
    for inv_id, sender_id, recipient_id, status in open_invitations:
        if sender_id == viewer_id:
            result[recipient_id] = Relationship("sent", inv_id)
        elif status == INVITATION_PENDING:
            result[sender_id] = Relationship("received", inv_id)
    for member_id in connected:
        result[member_id] = Relationship("connected")
    for member_id in blocked:
        result[member_id] = Relationship("blocked")
    return result


# ---------------------------------------------------------------- invitations


@dataclass(frozen=True)
class InviteResult:
    connected: bool  # True when the invitation accepted one the other member had sent
    invitation: Invitation


def invitations_sent_this_week(member_id: int, now: datetime | None = None) -> int:
    since = (now or utcnow()) - timedelta(days=7)
    return db.session.scalar(
        db.select(db.func.count(Invitation.id)).where(
            Invitation.sender_id == member_id, Invitation.created_at > since
        )
    )


def _weekly_limit_error(member_id: int, limit: int) -> RateLimited:
    now = utcnow()
    oldest = db.session.scalar(
        db.select(db.func.min(Invitation.created_at)).where(
            Invitation.sender_id == member_id, Invitation.created_at > now - timedelta(days=7)
        )
    )
    again = (oldest or now) + timedelta(days=7)
    error = RateLimited(
        f"You've reached the limit of {limit} invitations a week. "
        f"You can invite again after {again:%b %-d, %H:%M} UTC."
    )
    error.retry_after = max(1, int((again - now).total_seconds()))
    return error


def invite(sender_id: int, recipient_id: int, note: str = "") -> InviteResult:
    """Invite a member to connect, or accept their invitation if they already sent one.

    Raises ValidationFailed (self, a note over 300 characters), NotFound (unknown,
    suspended or blocking member), Forbidden (a block either way), Conflict (already
    connected, or an invitation already pending) and RateLimited (weekly limit).
    """
    note = normalise_newlines(note).strip()
    limit_chars = current_app.config["INVITATION_NOTE_MAX_CHARS"]
    if sender_id == recipient_id:
        raise ValidationFailed("You can't invite yourself.")
    if len(note) > limit_chars:
        raise ValidationFailed(f"Your note can be at most {limit_chars} characters.", field="note")
    recipient = _require_member(recipient_id)
    # Both members' locks before anything is counted or looked up: overlapping invites
    # from one member meet the weekly cap one after another, two members inviting each
    # other at once end connected (the second accepts the first), and a block that
    # overlaps is seen.
    atomic.lock_members(sender_id, recipient_id)
    if blocks.has_blocked(recipient_id, sender_id):
        raise NotFound("This member does not exist.")
    if blocks.has_blocked(sender_id, recipient_id):
        raise Forbidden(f"You blocked {recipient.name}. Unblock them in Settings to connect.")
    if are_connected(sender_id, recipient_id):
        raise Conflict(f"You and {recipient.name} are already connected.")

    low, high = sorted((sender_id, recipient_id))
    existing = db.session.scalar(
        db.select(Invitation).where(
            Invitation.pair_low == low,
            Invitation.pair_high == high,
            Invitation.status.in_(INVITATION_OPEN),
        )
    )
    if existing is not None and existing.sender_id == sender_id:
        raise Conflict(f"Your invitation to {recipient.name} is pending.")
    if existing is not None:
        # They invited us first: inviting them back accepts theirs.
        _accept(existing)
        db.session.commit()
        return InviteResult(connected=True, invitation=existing)

    limit = current_app.config["INVITATIONS_PER_WEEK"]
    if invitations_sent_this_week(sender_id) >= limit:
        raise _weekly_limit_error(sender_id, limit)

    invitation = Invitation(
        sender_id=sender_id,
        recipient_id=recipient_id,
        pair_low=low,
        pair_high=high,
        note=note,
    )
    db.session.add(invitation)
    try:
        db.session.flush()
    except IntegrityError:
        # A concurrent invitation between the same two members won the race.
        db.session.rollback()
        raise Conflict(
            f"An invitation between you and {recipient.name} is already pending."
        ) from None
    notifications.notify(
        recipient_id, notifications.INVITATION_RECEIVED, actor_id=sender_id, ref_id=invitation.id
    )
    db.session.commit()
    return InviteResult(connected=False, invitation=invitation)


def _connect(a_id: int, b_id: int) -> None:
    if not are_connected(a_id, b_id):
        now = utcnow()
        db.session.add_all(
            [
                Connection(member_id=a_id, other_id=b_id, created_at=now),
                Connection(member_id=b_id, other_id=a_id, created_at=now),
            ]
        )


def _accept(invitation: Invitation) -> None:
    invitation.status = INVITATION_ACCEPTED
    invitation.responded_at = utcnow()
    _connect(invitation.sender_id, invitation.recipient_id)
    notifications.notify(
        invitation.sender_id,
        notifications.INVITATION_ACCEPTED,
        actor_id=invitation.recipient_id,
        ref_id=invitation.id,
    )


def _open_invitation(invitation_id: int, *, statuses=INVITATION_OPEN) -> Invitation:
    """The invitation, read again under both members' locks, so that of overlapping
    answers (accept twice, accept and withdraw) one acts and the rest find it answered."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is not None:
        atomic.lock_members(invitation.sender_id, invitation.recipient_id)
        invitation = db.session.scalar(
            db.select(Invitation)
            .where(Invitation.id == invitation_id)
            .execution_options(populate_existing=True)
        )
    if invitation is None or invitation.status not in statuses:
        raise NotFound("This invitation is no longer pending.")
    return invitation


def accept(member_id: int, invitation_id: int) -> Invitation:
    """Accept an invitation sent to `member_id`; the two become connected.

    Raises NotFound when it is not theirs or no longer pending, Forbidden on a block.
    """
    invitation = _open_invitation(invitation_id)
    if invitation.recipient_id != member_id:
        raise NotFound("This invitation is no longer pending.")
    if blocks.blocked_either_way(invitation.sender_id, member_id):
        raise Forbidden("You can't connect with this member.")
    sender = db.session.get(Member, invitation.sender_id)
    if sender is None or sender.suspended_at is not None:
        # Hidden from the received list; a POST naming it fares no better.
        raise NotFound("This invitation is no longer pending.")
    _accept(invitation)
    db.session.commit()
    return invitation


def ignore(member_id: int, invitation_id: int) -> Invitation:
    """Ignore an invitation sent to `member_id`. The sender is not told.

    Raises NotFound when it is not theirs or no longer pending.
    """
    invitation = _open_invitation(invitation_id, statuses=(INVITATION_PENDING,))
    if invitation.recipient_id != member_id:
        raise NotFound("This invitation is no longer pending.")
    invitation.status = INVITATION_IGNORED
    invitation.responded_at = utcnow()
    notifications.retract(member_id, notifications.INVITATION_RECEIVED, invitation.id)
    db.session.commit()
    return invitation


def withdraw(member_id: int, invitation_id: int) -> Invitation:
    """Withdraw an invitation `member_id` sent while it is still open.

    Raises NotFound when it is not theirs or no longer open.
    """
    invitation = _open_invitation(invitation_id)
    if invitation.sender_id != member_id:
        raise NotFound("This invitation is no longer pending.")
    invitation.status = INVITATION_WITHDRAWN
    invitation.responded_at = utcnow()
    notifications.retract(invitation.recipient_id, notifications.INVITATION_RECEIVED, invitation.id)
    db.session.commit()
    return invitation


def remove_connection(member_id: int, other_id: int) -> None:
    """End a connection, from either side. Raises NotFound when there is none."""
    deleted = db.session.execute(
        db.delete(Connection).where(
            or_(
                and_(Connection.member_id == member_id, Connection.other_id == other_id),
                and_(Connection.member_id == other_id, Connection.other_id == member_id),
            )
        )
    ).rowcount
    if not deleted:
        db.session.rollback()
        raise NotFound("You are not connected with this member.")
    db.session.commit()


def _received(query, member_id: int):
    return query.join(Member, Member.id == Invitation.sender_id).where(
        Invitation.recipient_id == member_id,
        Invitation.status == INVITATION_PENDING,
        Member.suspended_at.is_(None),
    )


def _sent(query, member_id: int):
    return query.join(Member, Member.id == Invitation.recipient_id).where(
        Invitation.sender_id == member_id, Invitation.status.in_(INVITATION_OPEN)
    )


def received_invitations(member_id: int, limit: int = 50) -> list[Invitation]:
    """Pending invitations to the member, newest first, with their senders."""
    query = _received(db.select(Invitation), member_id).options(
        db.contains_eager(Invitation.sender)
    )
    return list(db.session.scalars(query.order_by(Invitation.id.desc()).limit(limit)))


def sent_invitations(member_id: int, limit: int = 50) -> list[Invitation]:
    """Open invitations from the member (ignored ones look pending), newest first."""
    query = _sent(db.select(Invitation), member_id).options(db.contains_eager(Invitation.recipient))
    return list(db.session.scalars(query.order_by(Invitation.id.desc()).limit(limit)))


def network_counts(member_id: int) -> dict[str, int]:
    """The numbers My Network shows: invitations received and sent, connections."""
    count = db.select(db.func.count(Invitation.id))
    row = db.session.execute(
        db.select(
            _received(count, member_id).scalar_subquery(),
            _sent(count, member_id).scalar_subquery(),
            db.select(db.func.count())
            .select_from(Connection)
            .where(Connection.member_id == member_id)
            .scalar_subquery(),
        )
    ).one()
    return {"received": row[0], "sent": row[1], "connections": row[2]}


def connections_page(member_id: int, *, after: tuple[str, int] | None = None, limit: int = 20):
    """Connections by name, keyset-paged on (name, id). Returns (members, next cursor)."""
    query = (
        db.select(Member)
        .join(Connection, Connection.other_id == Member.id)
        .where(Connection.member_id == member_id)
    )
    return _by_name_page(query, after, limit)


def _by_name_page(query, after: tuple[str, int] | None, limit: int):
    """Run a member query keyset-paged on (name, id): no OFFSET, however deep the page.

    Returns (members, cursor of the next page or None).
    """
    if after is not None:
        name, member = after
        query = query.where(or_(Member.name > name, and_(Member.name == name, Member.id > member)))
    members = list(db.session.scalars(query.order_by(Member.name, Member.id).limit(limit + 1)))
    cursor = (members[limit - 1].name, members[limit - 1].id) if len(members) > limit else None
    return members[:limit], cursor


# ---------------------------------------------------------------- search


def search(viewer_id: int | None, q: str, *, after: tuple[str, int] | None = None, limit: int = 20):
    """Members whose name or headline contains every word of `q`, by name.

    Leaves out the viewer, suspended members and anyone blocked either way.
    Returns (members, next cursor).
    """
    words = [w for w in (q or "").split() if w][:6]
    if not words:
        return [], None
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
    return _by_name_page(query, after, limit)


# ---------------------------------------------------------------- profile views

FREE_VIEWERS_SHOWN = 5
VIEWS_KEPT_DAYS = 90


def record_view(viewer_id: int, viewed_id: int) -> bool:
    """Record that `viewer_id` looked at `viewed_id`'s profile, once a day per viewer.

    Returns True when this was the first view of the day (and a notification went out).
    """
    if viewer_id == viewed_id or blocks.blocked_either_way(viewer_id, viewed_id):
        return False
    now = utcnow()
    exists = db.session.scalar(
        db.select(ProfileView.id).where(
            ProfileView.viewed_id == viewed_id,
            ProfileView.viewer_id == viewer_id,
            ProfileView.day == now.date(),
        )
    )
    if exists is not None:
        return False
    db.session.add(
        ProfileView(viewer_id=viewer_id, viewed_id=viewed_id, day=now.date(), viewed_at=now)
    )
    notifications.notify(viewed_id, notifications.PROFILE_VIEWED, actor_id=viewer_id)
    try:
        db.session.commit()
    except IntegrityError:  # the same viewer in two tabs at once
        db.session.rollback()
        return False
    return True


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


# ---------------------------------------------------------------- presence

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


def update_settings(
    member_id: int, *, show_active: bool, email_notifications: bool, accepts_inmail: bool
) -> Member:
    member = _require_member(member_id)
    member.show_active = show_active
    member.email_notifications = email_notifications
    member.accepts_inmail = accepts_inmail
    db.session.commit()
    return member
