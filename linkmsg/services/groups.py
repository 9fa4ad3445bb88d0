"""Group conversations: 3 to 50 members, started from the New message page.

A group is a thread of kind 'group' with one `ThreadMember` per member, past or present,
and one `GroupSpan` per stretch of history a member may read. Every change of
membership or name is a system line — an immutable message whose id marks where a
span starts or ends — written under the group's row lock, so every message falls on
one side of it: nobody ever reads a message sent while they were not a member.

Who may be added is the adder's own 1st-degree connections with a full profile, and
never across a block; anyone may add (up to 50 in all), rename and leave; the member
who started the group may also remove. Sending runs `threads.post` as every way of
writing does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..extensions import db
from ..models import (
    GROUP_MAX_MEMBERS,
    GROUP_MIN_MEMBERS,
    GROUP_NAME_MAX,
    SYSTEM_ADDED,
    SYSTEM_CREATED,
    SYSTEM_LEFT,
    SYSTEM_REMOVED,
    SYSTEM_RENAMED,
    THREAD_GROUP,
    Connection,
    GroupSpan,
    Member,
    Message,
    Thread,
    ThreadMember,
    utcnow,
)
from ..text import is_blank, join_and, like_pattern
from . import accounts, atomic, attachments, blocks, degrees, threads
from .errors import Forbidden, NotFound, ValidationFailed
from .permission import ALLOWED, Permission
from .threads import ThreadView

# ---------------------------------------------------------------- who may be added


@dataclass(frozen=True)
class _Ties:
    """What decides whether `adder` may add each of some members, read in three queries
    whatever their number."""

    blocked: set[int]  # members the adder blocked
    blocking: set[int]  # members who blocked the adder
    connected: set[int]  # the adder's connections among them

    @classmethod
    def of(cls, adder: Member, ids: Sequence[int]) -> _Ties:
        connected = db.session.scalars(
            db.select(Connection.other_id).where(
                Connection.member_id == adder.id, Connection.other_id.in_(ids)
            )
        )
        return cls(
            blocks.blocked_by(adder.id, ids),
            {blocker for blocker, _ in blocks.blocked_pairs(ids, [adder.id])},
            set(connected),
        )


def _refusal_to_add(adder: Member, candidate: Member, ties: _Ties) -> str | None:
    """Why `adder` may not add `candidate` to a group, or None when they may."""
    if candidate.id == adder.id:
        return "You are in the conversation already."
    if candidate.suspended_at is not None:
        return f"{candidate.name} can't be messaged."
    if candidate.id in ties.blocked:
        return f"You blocked {candidate.name}. Unblock them in Settings to add them."
    if candidate.id in ties.blocking:
        return f"You can't add {candidate.name}."
    if candidate.id not in ties.connected:
        return f"You can only add your own connections; {candidate.name} isn't one."
    if not accounts.has_full_profile(candidate):
        return (
            f"{candidate.name} hasn't completed their profile yet, so they can't receive messages."
        )
    return None


def candidates(
    member: Member,
    query: str = "",
    *,
    thread_id: int | None = None,
    limit=200,
    ids: Sequence[int] | None = None,
):
    """The member's connections they could pick for a group (or add to `thread_id`), by
    name, filtered by `query` (a part of the name or headline), or among `ids`."""
    statement = (
        db.select(Member)
        .join(Connection, Connection.other_id == Member.id)
        .where(
            Connection.member_id == member.id,
            Member.suspended_at.is_(None),
            Member.id.not_in(blocks.hidden_member_ids_query(member.id)),
        )
        .order_by(Member.name, Member.id)
        .limit(limit)
    )
    query = (query or "").strip()
    if query:
        pattern = like_pattern(query)
        statement = statement.where(
            db.or_(Member.name.ilike(pattern, escape="\\"), Member.headline.ilike(pattern, "\\"))
        )
    if thread_id is not None:
        statement = statement.where(Member.id.not_in(_current_ids_query(thread_id)))
    if ids is not None:
        statement = statement.where(Member.id.in_(list(ids)))
    return list(db.session.scalars(statement))


@dataclass(frozen=True)
class Option:
    member: Member
    picked: bool


def options(
    member: Member, query: str, picked_ids: Sequence[int], *, thread_id: int | None = None
) -> list[Option]:
    """The people a picker lists: those picked already first (whatever the filter, so a
    search never drops a pick), then the candidates matching `query`."""
    picked_ids = set(picked_ids)
    picked = candidates(member, thread_id=thread_id, ids=picked_ids) if picked_ids else []
    shown = [Option(m, True) for m in picked]
    seen = {m.id for m in picked}
    shown.extend(
        Option(m, False) for m in candidates(member, query, thread_id=thread_id) if m.id not in seen
    )
    return shown


def pick(adder: Member, member_ids: Sequence[int]) -> list[Member]:
    """The members picked, each checked; raises ValidationFailed naming every refusal."""
    ids = list(dict.fromkeys(int(i) for i in member_ids if i != adder.id))
    found = {m.id: m for m in db.session.scalars(db.select(Member).where(Member.id.in_(ids)))}
    ties = _Ties.of(adder, ids)
    picked, refusals = [], []
    for member_id in ids:
        member = found.get(member_id)
        if member is None:
            refusals.append("One of the people you picked doesn't exist.")
            continue
        reason = _refusal_to_add(adder, member, ties)
        if reason:
            refusals.append(reason)
        else:
            picked.append(member)
    if refusals:
        raise ValidationFailed(" ".join(dict.fromkeys(refusals)), field="recipients")
    return picked


def clean_name(name: str | None) -> str | None:
    """A group's name trimmed to one line, or None for no name. Raises ValidationFailed
    when it is too long."""
    name = " ".join((name or "").split())
    if is_blank(name):
        return None
    if len(name) > GROUP_NAME_MAX:
        raise ValidationFailed(
            f"A group's name can be at most {GROUP_NAME_MAX} characters "
            f"(this one has {len(name)}).",
            field="name",
        )
    return name


# ---------------------------------------------------------------- starting


def start(
    creator: Member,
    member_ids: Sequence[int],
    name: str | None,
    body: str,
    *,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
    clean_body,
):
    """Start a group with the picked members and send its first message (`clean_body`:
    the messaging rule for a body). Raises ValidationFailed when the picks, the name or
    the body are refused, RateLimited over the daily cap on new conversations; nothing
    is saved then. Returns `threads.Posted`."""
    state: dict = {}

    def check() -> None:
        if creator.suspended_at is not None:
            raise Forbidden("Your account is suspended.")
        missing = accounts.missing_profile_fields(creator)
        if missing:
            raise ValidationFailed(
                f"Add your {join_and(missing)} to your profile to start a group.",
                field="recipients",
            )
        state["members"] = pick(creator, member_ids)
        count = len(state["members"]) + 1
        if count < GROUP_MIN_MEMBERS:
            raise ValidationFailed("Pick at least two people for a group.", field="recipients")
        if count > GROUP_MAX_MEMBERS:
            raise ValidationFailed(
                f"A group can have at most {GROUP_MAX_MEMBERS} members, you included "
                f"(you picked {count - 1}).",
                field="recipients",
            )
        state["name"] = clean_name(name)

    def deliver(cleaned: str, key: str | None, files) -> Message | None:
        # The creator's lock: the daily cap on new conversations is counted under it.
        atomic.lock_members(creator.id)
        threads.check_new_thread_cap(creator.id)
        now = utcnow()
        thread = Thread(kind=THREAD_GROUP, name=state["name"], created_at=now)
        thread.started_by_id = creator.id
        db.session.add(thread)
        db.session.flush()
        everyone = [creator, *state["members"]]
        db.session.add_all(
            ThreadMember(thread_id=thread.id, member_id=m.id, other_id=None) for m in everyone
        )
        db.session.flush()
        line = threads.append(thread, creator.id, state["name"] or "", None, kind=SYSTEM_CREATED)
        db.session.add_all(
            GroupSpan(thread_id=thread.id, member_id=m.id, first_message_id=line.id)
            for m in everyone
        )
        return threads.append(thread, creator.id, cleaned, key, files)

    return threads.post(
        creator.id,
        idempotency_key=idempotency_key,
        uploads=uploads,
        check=check,
        clean=clean_body,
        deliver=deliver,
    )


# ---------------------------------------------------------------- members


def _current_ids_query(thread_id: int):
    return db.select(ThreadMember.member_id).where(
        ThreadMember.thread_id == thread_id, ThreadMember.active.is_(True)
    )


def members(thread_id: int) -> list[Member]:
    """The group's current members, by name."""
    return list(
        db.session.scalars(
            db.select(Member)
            .where(Member.id.in_(_current_ids_query(thread_id)))
            .order_by(Member.name, Member.id)
        )
    )


def members_of(thread_ids: Sequence[int]) -> dict[int, list[Member]]:
    """Current members of several groups, by name, in one query."""
    if not thread_ids:
        return {}
    found: dict[int, list[Member]] = {t: [] for t in thread_ids}
    rows = db.session.execute(
        db.select(ThreadMember.thread_id, Member)
        .join(Member, Member.id == ThreadMember.member_id)
        .where(ThreadMember.thread_id.in_(thread_ids), ThreadMember.active.is_(True))
        .order_by(Member.name, Member.id)
    )
    for thread_id, member in rows:
        found[thread_id].append(member)
    return found


# How many of a group's other members its name and avatars show: the first few by name.
NAMED_MEMBERS = 3


def display_name(thread: Thread, current: Sequence[Member], viewer_id: int) -> str:
    """The group's name, or its other members' names: "Ava, Ben and 3 others"."""
    others = [m.name for m in current if m.id != viewer_id]
    return name_from(thread.name, others[:NAMED_MEMBERS], len(others))


def name_from(name: str | None, first_others: Sequence[str], others: int) -> str:
    """`display_name` from the group's name, the names of its first `NAMED_MEMBERS`
    other members by name, and how many other members it has (for a list that reads
    only those of each group)."""
    if name:
        return name
    if not others:
        return "Only you"
    if others <= NAMED_MEMBERS:
        return join_and(list(first_others))
    rest = others - 2
    return f"{first_others[0]}, {first_others[1]} and {rest} other{'' if rest == 1 else 's'}"


@dataclass(frozen=True)
class Header:
    """What a group's header shows to one member."""

    name: str  # its name, or "Ava, Ben and 3 others"
    members: list[Member]  # current members, by name
    degrees: dict[int, str]  # the viewer's degree badge for each of them
    roles: Roles


def header(view: ThreadView, viewer_id: int) -> Header:
    """The group's name, current members with the viewer's degree to each (one query),
    and what the viewer may do."""
    rows = db.session.execute(
        db.select(Member, degrees.degree_column(viewer_id, Member.id))
        .where(Member.id.in_(_current_ids_query(view.thread.id)))
        .order_by(Member.name, Member.id)
    ).all()
    current = [member for member, _ in rows]
    return Header(
        display_name(view.thread, current, viewer_id),
        current,
        {m.id: degrees.degree_label(found) for m, found in rows if m.id != viewer_id},
        roles(view, viewer_id),
    )


def title(view: ThreadView, viewer_id: int) -> str:
    """What a thread is called for this member: the other member's name, or the group's."""
    if not view.is_group:
        return view.other.name
    return display_name(view.thread, members(view.thread.id), viewer_id)


@dataclass(frozen=True)
class Cast:
    """Who a page of a group's messages is from and about, as one reader sees them."""

    people: dict[int, Member]  # senders and subjects of system lines
    blocked: frozenset[int]  # senders the reader blocked: their messages show collapsed

    def sender(self, message: Message) -> Member | None:
        return self.people.get(message.sender_id)

    def collapsed(self, message: Message) -> bool:
        return not message.is_system and message.sender_id in self.blocked

    def line(self, message: Message, viewer_id: int) -> str:
        return system_line(message, self.people, viewer_id)

    @staticmethod
    def of(*casts: Cast | None) -> Cast | None:
        """The casts of several pages as one (None when none was read)."""
        found = [cast for cast in casts if cast is not None]
        if not found:
            return None
        people = {k: v for cast in found for k, v in cast.people.items()}
        return Cast(people, frozenset().union(*(cast.blocked for cast in found)))


def cast(reader_id: int | None, messages: Sequence[Message]) -> Cast:
    """The people of these messages and the senders the reader blocked, in two queries
    (no reader: nobody blocked, for a live message sent only to those who did not)."""
    ids = {m.sender_id for m in messages} | {m.subject_id for m in messages if m.subject_id}
    people = (
        {m.id: m for m in db.session.scalars(db.select(Member).where(Member.id.in_(ids)))}
        if ids
        else {}
    )
    senders = {m.sender_id for m in messages if not m.is_system}
    blocked = blocks.blocked_by(reader_id, senders) if reader_id is not None else ()
    return Cast(people, frozenset(blocked))


def system_line(message: Message, people: dict[int, Member], viewer_id: int | None) -> str:
    """A system line's sentence for the viewer: "Ava added Ben", "You left" (no viewer:
    in the third person throughout, as an export says it)."""

    def who(member_id: int | None, *, subject: bool = False) -> str:
        if viewer_id is not None and member_id == viewer_id:
            return "you" if subject else "You"
        member = people.get(member_id)
        return member.name if member else "A former member"

    actor = who(message.sender_id)
    if message.kind == SYSTEM_CREATED:
        return (
            f"{actor} started the group “{message.body}”"
            if message.body
            else (f"{actor} started the group")
        )
    if message.kind == SYSTEM_ADDED:
        return f"{actor} added {who(message.subject_id, subject=True)}"
    if message.kind == SYSTEM_REMOVED:
        return f"{actor} removed {who(message.subject_id, subject=True)}"
    if message.kind == SYSTEM_LEFT:
        return f"{actor} left"
    if message.kind == SYSTEM_RENAMED:
        return (
            f"{actor} renamed the group “{message.body}”"
            if message.body
            else (f"{actor} removed the group's name")
        )
    return ""


def require_member(actor: Member, thread_id: int) -> ThreadView:
    """The group as the actor sees it, when they are in it now (no lock: for pages).
    Raises NotFound for a thread that is not theirs or not a group, Forbidden for a
    former member."""
    view = threads.get_thread_for(actor.id, thread_id)
    if not view.is_group:
        raise NotFound("This conversation does not exist.")
    if not view.active:
        raise Forbidden("You're no longer in this conversation.")
    return view


@dataclass(frozen=True)
class Roles:
    """What a member may do in a group, for its header."""

    member: bool  # in it now
    starter: bool  # started it: may also remove


def roles(view: ThreadView, member_id: int) -> Roles:
    return Roles(view.active, view.thread.started_by_id == member_id and view.active)


def reply_permission(view: ThreadView, member: Member) -> Permission:
    """Whether the member may write in the group now."""
    if not view.active:
        return Permission(False, "You're no longer in this conversation.")
    if member.suspended_at is not None:
        return Permission(False, "Your account is suspended.")
    return ALLOWED


def _group_for(actor: Member, thread_id: int) -> ThreadView:
    """The group as the actor sees it, when they are in it now, with its lock taken."""
    view = threads.get_thread_for(actor.id, thread_id)
    if not view.is_group:
        raise NotFound("This conversation does not exist.")
    threads.lock_thread(thread_id)
    db.session.refresh(view.membership)
    if not view.membership.active:
        raise Forbidden("You're no longer in this conversation.")
    if actor.suspended_at is not None:
        raise Forbidden("Your account is suspended.")
    return view


def add(actor: Member, thread_id: int, member_ids: Sequence[int]) -> list[Member]:
    """Add the actor's picked connections to the group: one system line each, from
    which each of them reads. Raises ValidationFailed naming every refusal, or over 50
    members; nothing is saved then."""
    try:
        view = _group_for(actor, thread_id)
        current = set(db.session.scalars(_current_ids_query(thread_id)))
        picked = [m for m in pick(actor, member_ids) if m.id not in current]
        if not picked:
            raise ValidationFailed(
                "Pick someone who isn't in the conversation.", field="recipients"
            )
        if len(current) + len(picked) > GROUP_MAX_MEMBERS:
            room = GROUP_MAX_MEMBERS - len(current)
            raise ValidationFailed(
                f"A group can have at most {GROUP_MAX_MEMBERS} members; "
                f"there is room for {room} more.",
                field="recipients",
            )
        for member in picked:
            _join(view.thread, actor.id, member.id)
        db.session.commit()
        return picked
    except BaseException:
        db.session.rollback()
        raise


def _join(thread: Thread, actor_id: int, member_id: int) -> None:
    side = db.session.get(ThreadMember, (thread.id, member_id))
    if side is None:
        db.session.add(ThreadMember(thread_id=thread.id, member_id=member_id, other_id=None))
    else:
        side.active = True
    db.session.flush()
    line = threads.append(thread, actor_id, "", None, kind=SYSTEM_ADDED, subject_id=member_id)
    db.session.add(GroupSpan(thread_id=thread.id, member_id=member_id, first_message_id=line.id))


def _part(thread: Thread, actor_id: int, member_id: int, kind: str) -> None:
    """The member leaves (or is removed): the line is the last thing they read."""
    line = threads.append(thread, actor_id, "", None, kind=kind, subject_id=member_id)
    db.session.execute(
        db.update(ThreadMember)
        .where(ThreadMember.thread_id == thread.id, ThreadMember.member_id == member_id)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        db.update(GroupSpan)
        .where(
            GroupSpan.thread_id == thread.id,
            GroupSpan.member_id == member_id,
            GroupSpan.last_message_id.is_(None),
        )
        .values(last_message_id=line.id)
        .execution_options(synchronize_session=False)
    )


def leave(actor: Member, thread_id: int) -> None:
    """The actor leaves: they keep what they saw, read-only, and get nothing after."""
    try:
        view = _group_for(actor, thread_id)
        _part(view.thread, actor.id, actor.id, SYSTEM_LEFT)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def remove(actor: Member, thread_id: int, member_id: int) -> Member:
    """The member who started the group removes someone from it."""
    try:
        view = _group_for(actor, thread_id)
        if view.thread.started_by_id != actor.id:
            raise Forbidden("Only the member who started this conversation can remove people.")
        if member_id == actor.id:
            raise ValidationFailed("To leave the conversation, use Leave.", field="member")
        side = db.session.get(ThreadMember, (thread_id, member_id))
        if side is None or not side.active:
            raise NotFound("That member isn't in this conversation.")
        _part(view.thread, actor.id, member_id, SYSTEM_REMOVED)
        removed = db.session.get(Member, member_id)
        db.session.commit()
        return removed
    except BaseException:
        db.session.rollback()
        raise


def rename(actor: Member, thread_id: int, name: str | None) -> str | None:
    """Any member renames the group (an empty name: named after its members again)."""
    try:
        # Who asks comes first: a former member hears why they can't, whatever the name.
        view = _group_for(actor, thread_id)
        cleaned = clean_name(name)
        if cleaned == view.thread.name:
            db.session.rollback()
            return cleaned
        db.session.execute(
            db.update(Thread)
            .where(Thread.id == thread_id)
            .values(name=cleaned)
            .execution_options(synchronize_session=False)
        )
        threads.append(view.thread, actor.id, cleaned or "", None, kind=SYSTEM_RENAMED)
        db.session.commit()
        return cleaned
    except BaseException:
        db.session.rollback()
        raise
