"""The network: invitations, connections and the Connect state between two members.

Degrees are in `degrees`, finding members in `directory`, profile views in
`profile_views`, presence in `presence`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import String, and_, cast, literal_column, or_
from sqlalchemy.exc import IntegrityError

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
    utcnow,
)
from ..text import normalise_newlines
from . import atomic, blocks, degrees, directory, notifications
from .errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed

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
    result.update(relationships_from(viewer_id, blocked, connected, open_invitations))
    return result


def open_invitation_columns(viewer_id) -> list:
    """A column of a query over `Member`: the open invitation between the viewer and each
    member (the viewer's own first) as one text, "id:sender:recipient:status", NULL
    when there is none; `open_invitations_of` reads it. `viewer_id` a value or a bound
    parameter. One subquery rather than one per value: four planned and run for every
    member of a search page had cost PostgreSQL more than the rest of the page's
    statement."""
    spelled = (
        cast(Invitation.id, String)
        + ":"
        + cast(Invitation.sender_id, String)
        + ":"
        + cast(Invitation.recipient_id, String)
        + ":"
        + Invitation.status
    )
    between = (
        db.select(spelled)
        .where(
            Invitation.status.in_(INVITATION_OPEN),
            or_(
                and_(Invitation.sender_id == viewer_id, Invitation.recipient_id == Member.id),
                and_(Invitation.recipient_id == viewer_id, Invitation.sender_id == Member.id),
            ),
        )
        .order_by((Invitation.sender_id == viewer_id).desc(), Invitation.id)
        .limit(literal_column("1"))
        .correlate(Member)
    )
    return [between.scalar_subquery().label("invitation")]


def open_invitations_of(rows) -> list[tuple]:
    """(id, sender, recipient, status) of the open invitations in rows read with
    `open_invitation_columns`, for `relationships_from`."""
    found = []
    for row in rows:
        if row.invitation is not None:
            invitation, sender, recipient, status = row.invitation.split(":", 3)
            found.append((int(invitation), int(sender), int(recipient), status))
    return found


def relationships_from(viewer_id: int, blocked, connected, open_invitations) -> dict:
    """The Connect state from what was read: the members the viewer blocked, those they
    are connected to, and the open invitations between them and the viewer as (id,
    sender, recipient, status). A block wins over a connection, which wins over an
    invitation. Members none of these name are left out (their state is "none")."""
    result = {}
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
    recipient = directory.require_member(recipient_id)
    # Both members' locks before anything is counted or looked up: overlapping invites
    # from one member meet the weekly cap one after another, two members inviting each
    # other at once end connected (the second accepts the first), and a block that
    # overlaps is seen.
    atomic.lock_members(sender_id, recipient_id)
    if blocks.has_blocked(recipient_id, sender_id):
        raise NotFound("This member does not exist.")
    if blocks.has_blocked(sender_id, recipient_id):
        raise Forbidden(f"You blocked {recipient.name}. Unblock them in Settings to connect.")
    if degrees.are_connected(sender_id, recipient_id):
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
    if not degrees.are_connected(a_id, b_id):
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


@dataclass(frozen=True)
class SearchPage:
    members: list[Member]
    cursor: tuple[str, int] | None  # keyset cursor of the next page
    degrees: dict[int, int | None]  # member id -> 1, 2, 3 or None
    rels: dict[int, Relationship]  # member id -> the Connect state


def search(
    viewer_id: int, q: str, *, after: tuple[str, int] | None = None, limit: int = 20
) -> SearchPage:
    """A page of `directory.search_rows` with each member's degree and Connect state, in two
    statements: the members with their open invitation, and their degrees. The search
    leaves out anyone blocked either way, so no result is "blocked"; a 1st degree is a
    connection."""
    rows, cursor = directory.search_rows(
        viewer_id, q, after=after, limit=limit, more=open_invitation_columns
    )
    members = [row[0] for row in rows]
    found = degrees.degrees(viewer_id, [member.id for member in members])
    rels = {member.id: Relationship("none") for member in members}
    rels.update(
        relationships_from(
            viewer_id,
            blocked=[],
            connected=[m for m, degree in found.items() if degree == degrees.FIRST],
            open_invitations=open_invitations_of(rows),
        )
    )
    return SearchPage(members, cursor, found, rels)


def connections_page(member_id: int, *, after: tuple[str, int] | None = None, limit: int = 20):
    """Connections by name, keyset-paged on (name, id). Returns (members, next cursor)."""
    query = (
        db.select(Member)
        .join(Connection, Connection.other_id == Member.id)
        .where(Connection.member_id == member_id)
    )
    return directory.by_name_page(query, after, limit)
