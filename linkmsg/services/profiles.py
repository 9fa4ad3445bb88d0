"""The profile page `/in/<handle>`: the member and everything the page shows of the
viewer's relation to them, read in one statement, and the view recorded in one more
the first time a day.

The rules are those of the services the page used to ask one by one: a member who
blocked the viewer, or is suspended, does not exist for them (`directory`); the degree
badge and mutual connections (`degrees`); the Message button or why it is locked, and
whether an InMail waits for an answer (`messaging`, `inmail`); the Connect control
(`network`); "Active ..." (`presence`); one recorded view a day (`profile_views`).
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Date, Integer, bindparam

from ..extensions import db
from ..models import (
    INMAIL_SENT,
    Block,
    InMail,
    Member,
)
from . import accounts, degrees, inmail, messaging, network, presence, profile_views
from .errors import NotFound


def page(viewer: Member | None, handle: str) -> dict:
    """What the profile of `handle` shows `viewer` (None: a visitor not logged in):
    member, is_self, missing; and for another member's profile degree, permission,
    inmail_waiting, mutual, rel and active. Records the view (once a day).

    Raises NotFound for an unknown or suspended member, and for one who blocked the viewer.
    """
    if viewer is None:
        member = db.session.scalar(db.select(Member).where(Member.handle == handle))
        _require_shown(member, blocked_viewer=False)
        return {"member": member, "is_self": False, "missing": None}
    row = db.session.execute(
        _profile_query(), {"viewer": viewer.id, "handle": handle, "day": profile_views.today()}
    ).first()
    member = row.Member if row is not None else None
    _require_shown(member, blocked_viewer=row is not None and row.blocked_viewer)
    if member.id == viewer.id:
        return {"member": member, "is_self": True, "missing": accounts.describe_missing(member)}
    blockers = {member.id} if row.blocked_viewer else set()
    if row.viewer_blocked:
        blockers.add(viewer.id)
    connected = row.degree == degrees.FIRST
    relation = network.relationships_from(
        viewer.id,
        blocked=[member.id] if row.viewer_blocked else [],
        connected=[member.id] if connected else [],
        open_invitations=network.open_invitations_of([row]),
    )
    allowed = messaging.can_message(viewer, member, blockers=blockers, connected=connected)
    waiting = None
    if viewer.is_premium and allowed.remedy == "connect":
        waiting = inmail.waiting_for_answer(viewer, member, unanswered=row.inmail_unanswered)
    if not row.viewed_today:
        profile_views.record_view(viewer.id, member.id)
    return {
        "member": member,
        "is_self": False,
        "missing": None,
        "degree": degrees.degree_label(row.degree or None),
        "permission": allowed,
        "inmail_waiting": waiting,
        "mutual": row.mutual,
        "rel": relation.get(member.id, network.Relationship("none")),
        "active": presence.active_status(member, viewer),
    }


def _require_shown(member: Member | None, *, blocked_viewer: bool) -> None:
    if member is None or member.suspended_at is not None or blocked_viewer:
        raise NotFound("This member does not exist.")


@cache
def _profile_query():
    """The member by :handle with, as columns: whether they blocked the :viewer and the
    viewer them, the degree (0 out of network), mutual connections, the open invitation
    between them (the viewer's own first) and whether the viewer's InMail to them waits
    for an answer, and whether the viewer's view of :day is recorded. Built once
    (building it costs more than running it)."""
    viewer_id = bindparam("viewer", type_=Integer)

    def blocked(blocker, blocked_member):
        return (
            db.select(Block.blocker_id)
            .where(Block.blocker_id == blocker, Block.blocked_id == blocked_member)
            .exists()
        )

    unanswered = (
        db.select(InMail.id)
        .where(
            InMail.sender_id == viewer_id,
            InMail.recipient_id == Member.id,
            InMail.status == INMAIL_SENT,
        )
        .exists()
    )
    return db.select(
        Member,
        blocked(Member.id, viewer_id).label("blocked_viewer"),
        blocked(viewer_id, Member.id).label("viewer_blocked"),
        degrees.degree_expression(viewer_id, Member.id).label("degree"),
        degrees.mutual_expression(viewer_id, Member.id).label("mutual"),
        *network.open_invitation_columns(viewer_id),
        unanswered.label("inmail_unanswered"),
        profile_views.viewed_on(viewer_id, Member.id, bindparam("day", type_=Date)).label(
            "viewed_today"
        ),
    ).where(Member.handle == bindparam("handle"))
