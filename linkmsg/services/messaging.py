"""Messaging: who may message whom, sending and replying, the inbox, read state.

The rule of SPEC section 3 is `can_message`, on top of the refusals every way of writing
shares (`permission`); sending runs `threads.post`. The views only call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from flask import current_app
from sqlalchemy.orm import aliased, joinedload, noload

from ..extensions import db
from ..models import (
    MESSAGE_TEXT,
    SYSTEM_KINDS,
    THREAD_GROUP,
    THREAD_INMAIL,
    THREAD_ORDINARY,
    Attachment,
    Block,
    Face,
    FaceEpoch,
    GroupSpan,
    Label,
    Member,
    Message,
    Thread,
    ThreadLabel,
    ThreadMember,
)
from ..sql import CoreEntities, json_rows, spelled, state_digest
from ..text import is_blank, normalise_newlines
from . import (
    accounts,
    atomic,
    attachments,
    blocks,
    degrees,
    events,
    groups,
    inmail,
    permission,
    threads,
)
from .errors import ValidationFailed
from .permission import ALLOWED, Permission, basic_refusal
from .threads import ThreadView

INBOX_PAGE_SIZE = 20
# Rows of any one kind (threads, labels on threads, blocks) that `list_state` reads at
# most: a member with more has no state, and their list is read each time.
LIST_STATE_ROWS = 2000
THREAD_PAGE_SIZE = 30

# ---------------------------------------------------------------- who may message whom


def profile_relation(viewer: Member, member: Member) -> dict:
    """What `member`'s profile shows of the viewer's relation beyond the Connect control:
    the degree badge and the Message button (or why it is locked, and whether InMail is
    open or waits for an answer). My Network's actions send these again when they change."""
    allowed = can_message(viewer, member)
    waiting = None
    if viewer.is_premium and allowed.remedy == "connect":
        waiting = inmail.waiting_for_answer(viewer, member)
    return {
        "degree": degrees.degree_label(degrees.degree(viewer.id, member.id)),
        "permission": allowed,
        "inmail_waiting": waiting,
    }


def can_message(
    sender: Member,
    recipient: Member,
    *,
    blockers: set[int] | None = None,
    connected: bool | None = None,
) -> Permission:
    """The messaging rule of SPEC section 3, in the order a member can act on it.
    `blockers` (which of the two blocked the other) and `connected` are read when the
    caller has not read them already."""
    refusal = basic_refusal(sender, recipient, blockers=blockers)
    if refusal is not None:
        return refusal
    if connected is None:
        connected = degrees.are_connected(sender.id, recipient.id)
    if not connected:
        way = "send them an InMail" if sender.is_premium else "send an InMail with Premium"
        return Permission(
            False, f"Connect with {recipient.name} to message them, or {way}.", "connect"
        )
    if not accounts.has_full_profile(recipient):
        return Permission(
            False,
            f"{recipient.name} hasn't completed their profile yet, so they can't receive messages.",
        )
    return ALLOWED


def require_can_message(sender: Member, recipient: Member) -> None:
    """Raises MessagingRefused with the reason when `sender` may not message `recipient`."""
    permission.require(can_message(sender, recipient), recipient)


# ---------------------------------------------------------------- sending


def clean_body(body: str | None, *, has_files: bool = False) -> str:
    """Trimmed, newlines kept (as \\n). Raises ValidationFailed when too long, or empty
    without attachments (a message may be attachments only). A body that shows nothing
    (zero-width and other invisible characters) counts as empty."""
    body = normalise_newlines(body).strip()
    if is_blank(body):
        body = ""
    limit = current_app.config["MESSAGE_MAX_CHARS"]
    if not body and not has_files:
        raise ValidationFailed("Write a message or attach a file before sending.", field="body")
    if len(body) > limit:
        raise ValidationFailed(
            f"Your message can be at most {limit:,} characters (this one has {len(body):,}).",
            field="body",
        )
    return body


@dataclass(frozen=True)
class Sent:
    message: Message
    thread_id: int
    created: bool  # False when this was a repeat of an earlier submit


def start(
    sender: Member,
    recipient: Member,
    body: str,
    *,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
) -> Sent:
    """Send a first (or further) message to a member, creating the thread if needed.

    Raises MessagingRefused when the rule says no and ValidationFailed for a bad body;
    nothing is saved then.
    """

    def deliver(cleaned: str, key: str | None, files) -> Message | None:
        thread = threads.get_or_create_thread(sender.id, recipient.id)
        return threads.append(thread, sender.id, cleaned, key, files)

    posted = threads.post(
        sender.id,
        idempotency_key=idempotency_key,
        uploads=uploads,
        check=lambda: require_can_message(sender, recipient),
        clean=lambda has_files: clean_body(body, has_files=has_files),
        deliver=deliver,
    )
    return Sent(posted.message, posted.message.thread_id, posted.created)


def start_group(
    creator: Member,
    member_ids: Sequence[int],
    name: str | None,
    body: str,
    *,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
) -> Sent:
    """Start a group conversation with the picked connections and send its first
    message (`groups.start` has the rules). Nothing is saved when anything is refused."""
    posted = groups.start(
        creator,
        member_ids,
        name,
        body,
        idempotency_key=idempotency_key,
        uploads=uploads,
        clean_body=lambda has_files: clean_body(body, has_files=has_files),
    )
    return Sent(posted.message, posted.message.thread_id, posted.created)


def start_picked(
    sender: Member,
    member_ids: Sequence[int],
    name: str | None,
    body: str,
    *,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
) -> Sent:
    """The New message page: one person picked opens (or starts) the one-to-one thread
    (the group's name is ignored), two or more start a group. Raises ValidationFailed
    (field "recipients") naming every refusal of the picks, MessagingRefused when the
    one-to-one rule says no, ValidationFailed for the name or the body; nothing is saved
    then."""
    member_ids = [i for i in dict.fromkeys(member_ids) if i != sender.id]
    if not member_ids:
        raise ValidationFailed("Pick at least one person to message.", field="recipients")
    if len(member_ids) == 1:
        [recipient] = groups.pick(sender, member_ids)
        return start(sender, recipient, body, idempotency_key=idempotency_key, uploads=uploads)
    return start_group(
        sender, member_ids, name, body, idempotency_key=idempotency_key, uploads=uploads
    )


def reply_permission(view: ThreadView, member: Member) -> Permission:
    """Whether `member` may still write in this thread (the right to message can end;
    a thread that grew from an answered InMail stays open). From the view's facts when
    it was read with them (a page), else asked now (a send, under its locks)."""
    if view.thread.kind == THREAD_INMAIL:
        return inmail.reply_permission(view, member)
    if view.is_group:
        return groups.reply_permission(view, member)
    facts = view.facts_for(member.id)
    if facts is None:
        return can_message(member, view.other)
    return can_message(member, view.other, blockers=facts.blockers, connected=facts.connected)


def thread_degree(view: ThreadView, member: Member, permission: Permission) -> int | None:
    """The other member's degree for the thread header. Being allowed to write in an
    ordinary thread already proves a 1st-degree connection: no query then. A group's
    header shows each member's degree instead (None here)."""
    if view.is_group:
        return None
    if permission.allowed and view.thread.kind == THREAD_ORDINARY:
        return 1
    facts = view.facts_for(member.id)
    if facts is not None and facts.connected:
        return 1
    return degrees.degree(member.id, view.other.id)


def reply(
    sender: Member,
    thread_id: int,
    body: str,
    *,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
    view: ThreadView | None = None,
) -> Sent:
    """Send a message in an existing thread (`view`: the thread as the sender sees it,
    when the caller has just loaded it).

    Raises NotFound when the sender is not in it, MessagingRefused when the right to
    message has ended, ValidationFailed for a bad body.
    """
    view = view or threads.get_thread_for(sender.id, thread_id)

    def deliver(cleaned: str, key: str | None, files) -> Message | None:
        if view.thread.kind == THREAD_INMAIL:
            # A reply answers an InMail (a refund): both members' locks come first, as in
            # a decline, and the permission is decided again under them, so a reply that
            # overlapped a decline finds the InMail declined.
            atomic.lock_members(sender.id, view.other.id)
            permission.require(reply_permission(view, sender))
        if view.is_group:
            # Decided again under the group's lock: a leave that overlapped this send
            # is on one side of it.
            threads.lock_thread_reading(view.membership)
            permission.require(reply_permission(view, sender))
        message = threads.append(view.thread, sender.id, cleaned, key, files)
        if message is not None and view.thread.kind == THREAD_INMAIL:
            inmail.answered_by_reply(view.thread.id, sender.id)
        return message

    posted = threads.post(
        sender.id,
        idempotency_key=idempotency_key,
        uploads=uploads,
        check=lambda: permission.require(reply_permission(view, sender)),
        clean=lambda has_files: clean_body(body, has_files=has_files),
        deliver=deliver,
    )
    return Sent(posted.message, thread_id, posted.created)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Preview:
    """What a row shows of its last message (the newest its owner may read): read as
    columns with the row, never as a `Message` (whose files and InMail would load too)."""

    id: int
    thread_id: int
    sender_id: int
    body: str
    created_at: datetime
    kind: str
    subject_id: int | None
    attachment_count: int  # counted only for a message of files alone: "Sent 2 attachments"

    @property
    def is_system(self) -> bool:
        return self.kind in SYSTEM_KINDS


@dataclass(frozen=True)
class GroupRow:
    """What a group's inbox row shows beyond a one-to-one row."""

    name: str  # its name, or "Ava, Ben and 3 others"
    # The first few of its current members but the owner, by name (stacked): each with
    # its id, name, handle and avatar only (`Face`).
    members: tuple
    last_sender: Member | None  # for the preview: "Ben: ..."
    collapsed: bool  # the last message is from someone the owner blocked
    line: str = ""  # the last message is a system line: its sentence


@dataclass(frozen=True)
class InboxRow:
    membership: ThreadMember
    other: Member | None  # None for a group
    last: Preview
    unread: int  # messages from the other members the owner has not seen
    kind: str = THREAD_ORDINARY
    labels: tuple = ()  # the owner's labels on the thread (id and name)
    group: GroupRow | None = None

    @property
    def is_group(self) -> bool:
        return self.kind == THREAD_GROUP


_UNREAD = ThreadMember.last_message_id > ThreadMember.last_read_message_id


def inbox(member_id: int, **where):
    """`inbox_page`'s rows and cursor: (rows, the next page's `before` or None), for a
    list that is not kept (the state is not read)."""
    page = inbox_page(member_id, with_state=False, **where)
    return page.rows, page.cursor


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    cursor: int | None  # the next page's `before`, or None
    # `list_state` as of the rows (read in their statement); None for an empty page, or
    # when not asked for.
    state: str | None


def inbox_page(
    member_id: int,
    *,
    unread_only: bool = False,
    inmail_only: bool = False,
    archived: bool = False,
    label_id: int | None = None,
    before: int | None = None,
    limit: int = INBOX_PAGE_SIZE,
    with_state: bool = True,
) -> InboxPage:
    """The member's threads by latest activity, in one statement whatever their number
    and kinds, with the state of the member's list they were read in.

    Each row carries the other member, the last message and the owner's labels. The main
    list leaves archived threads out, the archived list holds only them, and a label's
    list holds its threads wherever they are. Threads hidden by a block are left out.
    """
    query = _inbox_query(
        unread_only,
        inmail_only,
        archived,
        label_id is not None,
        before is not None,
        limit,
        with_state,
    )
    params = {"inbox_member": member_id}
    if label_id is not None:
        params["inbox_label"] = label_id
    if before is not None:
        params["inbox_before"] = before
    found = db.session.execute(query, params).all()
    cursor = found[limit - 1].ThreadMember.last_message_id if len(found) > limit else None
    state = found[0].list_state if found and with_state else None
    return InboxPage(_rows(found[:limit]), cursor, state)


def list_state(member_id) -> db.ColumnElement:
    """A scalar subquery: one value that changes whenever anything the member's
    Messaging list shows may have changed, and only then (equal values, equal lists).

    It spells out every row the list is read from that can change: the member's sides
    of their threads (a message moves `last_message_id` on every current member's side,
    so a group's new name, members and lines are in it too; reading, archiving, muting,
    leaving), the newest message of the groups they left (their side stays put), their
    labels on threads (by name), the blocks either way (hidden threads,
    collapsed previews), and `FaceEpoch` (anyone's name or avatar). Messages and
    attachments never change once written. The time a row shows ("5 minutes ago") is
    not in it: a kept list checks those itself (linkmsg/list_pane.py). NULL for a member
    with more than LIST_STATE_ROWS of any kind: past that, reading the state would cost
    more than the list.

    `member_id` a bound parameter or a column."""
    side = aliased(ThreadMember, name="side")
    gone = aliased(ThreadMember, name="gone")
    mine = aliased(Label, name="mine")
    filed = aliased(ThreadLabel, name="filed")
    block = aliased(Block, name="blk")
    return state_digest(
        db.select(
            spelled(
                side.thread_id,
                side.last_message_id,
                side.last_read_message_id,
                side.muted,
                side.archived,
                side.active,
            )
        )
        .where(side.member_id == member_id)
        .order_by(side.thread_id),
        # A group the member left still shows in their list, with its current name and
        # members, but their side no longer moves: the thread's newest message does
        # (every rename, member added or removed is a line).
        db.select(spelled(gone.thread_id, Thread.last_message_id))
        .join(Thread, Thread.id == gone.thread_id)
        .where(gone.member_id == member_id, gone.active.is_(False))
        .order_by(gone.thread_id),
        db.select(spelled(filed.thread_id, mine.id, db.func.length(mine.name), mine.name))
        .select_from(mine)
        .join(filed, filed.label_id == mine.id)
        .where(mine.member_id == member_id)
        .order_by(filed.thread_id, mine.id),
        db.select(spelled(block.blocker_id, block.blocked_id))
        .where(db.or_(block.blocker_id == member_id, block.blocked_id == member_id))
        .order_by(block.blocker_id, block.blocked_id),
        db.select(spelled(FaceEpoch.value)),
        most=LIST_STATE_ROWS,
    )


@cache
def _inbox_query(
    unread_only: bool,
    inmail_only: bool,
    archived: bool,
    by_label: bool,
    paged: bool,
    limit: int,
    with_state: bool = True,
):
    """One kind of inbox page as a statement with bound parameters, built once: the
    statement's cache key is worked out on its first execution only (SQLAlchemy keeps it
    on the statement object), which per request had cost more than running it."""
    member_id = db.bindparam("inbox_member", type_=db.Integer)
    query = (
        _row_query()
        .where(ThreadMember.member_id == member_id, not_hidden(member_id))
        .order_by(ThreadMember.last_message_id.desc())
        .limit(limit + 1)
    )
    if with_state:
        query = query.add_columns(list_state(member_id).label("list_state"))
    if by_label:
        label_id = db.bindparam("inbox_label", type_=db.Integer)
        query = query.where(
            ThreadMember.thread_id.in_(
                db.select(ThreadLabel.thread_id).where(ThreadLabel.label_id == label_id)
            )
        )
    else:
        query = query.where(ThreadMember.archived.is_(archived))
    if unread_only:
        query = query.where(_UNREAD)
    if inmail_only:
        query = query.where(Thread.kind == THREAD_INMAIL)
    if paged:
        query = query.where(
            ThreadMember.last_message_id < db.bindparam("inbox_before", type_=db.Integer)
        )
    return query


# The row's last message, and in a group who sent it and whom a system line is about.
_LAST = aliased(Message, name="last_message")
_SENDER = aliased(Member, name="last_sender")
_SUBJECT = aliased(Member, name="last_subject")


@cache
def _row_query(one_thread: bool = False):
    """Inbox rows, whoever's they are (each side names its owner): the owner's side, the
    other member (None in a group), the thread, and as columns everything else a row
    shows — so that a page of rows, or one thread's row for every member of a group, is
    one statement. Built once: a select is immutable, and building this one (its
    aliases, its subqueries) costs more than running it.

    `one_thread`: the rows of the thread bound as `ROW_THREAD`, for several of its
    members (a live event to a group). A group's first members and their number are then
    read once for all the rows, not once per row; `_rows` leaves each owner out."""
    in_group = Thread.kind == THREAD_GROUP
    if one_thread:
        cast = (_thread_members().label("members"), _thread_member_count().label("member_count"))
    else:
        cast = (_other_members().label("members"), _other_member_count().label("member_count"))
    return (
        db.select(
            ThreadMember,
            Member,
            Thread,
            _SENDER,
            _SUBJECT,
            _LAST.id.label("last_id"),
            _LAST.sender_id.label("last_sender_id"),
            _LAST.body.label("last_body"),
            _LAST.created_at.label("last_created_at"),
            _LAST.kind.label("last_kind"),
            _LAST.subject_id.label("last_subject_id"),
            _attachment_count().label("attachment_count"),
            _unread_count().label("unread"),
            db.and_(
                in_group,
                _LAST.kind == MESSAGE_TEXT,
                blocks.has_blocked_sql(ThreadMember.member_id, _LAST.sender_id),
            ).label("collapsed"),
            _own_labels().label("labels"),
            *cast,
        )
        .outerjoin(Member, Member.id == ThreadMember.other_id)
        .join(_LAST, _LAST.id == ThreadMember.last_message_id)
        .join(Thread, Thread.id == ThreadMember.thread_id)
        .outerjoin(_SENDER, db.and_(in_group, _SENDER.id == _LAST.sender_id))
        .outerjoin(_SUBJECT, db.and_(in_group, _SUBJECT.id == _LAST.subject_id))
    )


def _attachment_count():
    """The last message's files, counted when it has no words (its preview counts them)."""
    count = (
        db.select(db.func.count(Attachment.id))
        .where(Attachment.message_id == _LAST.id)
        .correlate(_LAST)
        .scalar_subquery()
    )
    return db.case((_LAST.body == "", count), else_=0)


def _unread_count():
    """Messages from the others the owner may read (in a group: within their spans) and
    has not read; counted only for a thread that is unread."""
    unseen = aliased(Message, name="unseen")
    count = (
        db.select(db.func.count(unseen.id))
        .where(
            unseen.thread_id == ThreadMember.thread_id,
            unseen.id > ThreadMember.last_read_message_id,
            unseen.id <= ThreadMember.last_message_id,
            unseen.sender_id != ThreadMember.member_id,
            db.or_(
                ThreadMember.other_id.is_not(None),
                # Correlated to the row's owner, two queries out.
                threads.visible_to(
                    ThreadMember.member_id, unseen.id, unseen.thread_id
                ).correlate_except(GroupSpan),
            ),
        )
        .correlate(ThreadMember)
        .scalar_subquery()
    )
    return db.case((_UNREAD, count), else_=0)


def _own_labels():
    """The owner's labels on the thread, by name: nobody else's are ever read."""
    return json_rows(
        db.select(Label.id.label("id"), Label.name.label("name"))
        .join(ThreadLabel, ThreadLabel.label_id == Label.id)
        .where(
            ThreadLabel.thread_id == ThreadMember.thread_id,
            Label.member_id == ThreadMember.member_id,
        )
        .correlate(ThreadMember),
        order_by=(Label.name_key, Label.id),
    )


def _current_others():
    """A group's current members but the row's owner (nothing for a one-to-one row)."""
    side = aliased(ThreadMember, name="other_side")
    return side, (
        ThreadMember.other_id.is_(None),
        side.thread_id == ThreadMember.thread_id,
        side.active.is_(True),
        side.member_id != ThreadMember.member_id,
    )


def _other_members():
    """The first few current other members of a group, by name: what its row stacks
    and names."""
    side, where = _current_others()
    person = aliased(Member, name="group_member")
    return json_rows(
        db.select(*_face_of(person))
        .join(side, side.member_id == person.id)
        .where(*where)
        .correlate(ThreadMember)
        .limit(groups.NAMED_MEMBERS),
        order_by=(person.name, person.id),
    )


def _face_of(person) -> tuple:
    """The columns of a `Face` (what a row's stacked avatars are drawn from)."""
    return (
        person.id.label("id"),
        person.name.label("name"),
        person.handle.label("handle"),
        person.avatar_key.label("avatar_key"),
    )


def _other_member_count():
    side, where = _current_others()
    return (
        db.select(db.func.count())
        .select_from(side)
        .where(*where)
        .correlate(ThreadMember)
        .scalar_subquery()
    )


ROW_THREAD = "row_thread_id"  # the thread of `_row_query(one_thread=True)`


def _current_in_thread():
    """The current members of the thread `ROW_THREAD`, the owner of a row among them
    (`_current_others` without the owner, for one thread's rows)."""
    side = aliased(ThreadMember, name="current_side")
    return side, (
        side.thread_id == db.bindparam(ROW_THREAD, type_=db.Integer),
        side.active.is_(True),
    )


def _thread_members():
    """The first current members of the thread `ROW_THREAD` by name, one more than a row
    names (the row's owner may be among them): read once, whatever the rows."""
    side, where = _current_in_thread()
    person = aliased(Member, name="group_member")
    return json_rows(
        db.select(*_face_of(person))
        .join(side, side.member_id == person.id)
        .where(*where)
        .correlate()
        .limit(groups.NAMED_MEMBERS + 1),
        order_by=(person.name, person.id),
    )


def _thread_member_count():
    side, where = _current_in_thread()
    return db.select(db.func.count()).select_from(side).where(*where).correlate().scalar_subquery()


def not_hidden(member_id: int):
    """SQL over ThreadMember: not a one-to-one thread hidden by a block (a block never
    hides a group)."""
    return db.or_(
        ThreadMember.other_id.is_(None),
        ThreadMember.other_id.not_in(blocks.hidden_member_ids_query(member_id)),
    )


def _rows(found, *, one_thread: bool = False) -> list[InboxRow]:
    """Inbox rows from `_row_query` results (`one_thread` as it was built with): no
    further statement."""
    rows = []
    for found_row in found:
        tm, thread = found_row.ThreadMember, found_row.Thread
        owner = tm.member_id
        last = Preview(
            found_row.last_id,
            tm.thread_id,
            found_row.last_sender_id,
            found_row.last_body,
            found_row.last_created_at,
            found_row.last_kind,
            found_row.last_subject_id,
            found_row.attachment_count,
        )
        unread = found_row.unread
        if not unread and tm.last_message_id > tm.last_read_message_id:
            unread = 1  # marked unread by the member, though the newest message is theirs
        group = None
        if thread.is_group:
            sender, subject = found_row.last_sender, found_row.last_subject
            people = {person.id: person for person in (sender, subject) if person is not None}
            first, others = found_row.members, found_row.member_count
            if one_thread:  # the thread's first members and their number: but the owner
                first = [p for p in first if p["id"] != owner][: groups.NAMED_MEMBERS]
                others -= 1 if tm.active else 0
            members = tuple(Face(**person) for person in first)
            group = GroupRow(
                groups.name_from(thread.name, [m.name for m in members], others),
                members,
                sender,
                bool(found_row.collapsed),
                groups.system_line(last, people, owner) if last.is_system else "",
            )
        labels = tuple(Label(member_id=owner, **label) for label in found_row.labels)
        rows.append(InboxRow(tm, found_row.Member, last, unread, thread.kind, labels, group))
    return rows


def row_in_list(row: InboxRow | None, shown: str) -> bool:
    """Whether a row belongs to a list `inbox` shows: "all", "unread", "inmail",
    "archived", or "label:<id>" (the row's thread was acted on from that list)."""
    if row is None:
        return False
    if shown.startswith("label:"):
        return True  # a label lists its threads, archived or not
    archived = row.membership.archived
    if shown == "archived":
        return archived
    if shown == "unread":
        return not archived and row.unread > 0
    if shown == "inmail":
        return not archived and row.kind == THREAD_INMAIL
    return not archived


def inbox_row(member_id: int, thread_id: int) -> InboxRow | None:
    """One thread's inbox row for the member, as `inbox` renders it (one statement)."""
    found = db.session.execute(
        _row_query().where(ThreadMember.member_id == member_id, ThreadMember.thread_id == thread_id)
    ).first()
    return _rows([found])[0] if found is not None else None


def inbox_rows_for(thread_id: int, member_ids: Sequence[int]) -> dict[int, InboxRow]:
    """One thread's inbox row for each of these members (a group's, for a live event to
    all of them), in one statement whatever their number."""
    if not member_ids:
        return {}
    found = db.session.execute(
        _one_thread_rows(), {ROW_THREAD: thread_id, "row_members": list(member_ids)}
    ).all()
    return {row.membership.member_id: row for row in _rows(found, one_thread=True)}


@cache
def _one_thread_rows():
    return _row_query(one_thread=True).where(
        ThreadMember.thread_id == db.bindparam(ROW_THREAD, type_=db.Integer),
        ThreadMember.member_id.in_(db.bindparam("row_members", expanding=True)),
    )


def labels_for_threads(member_id: int, thread_ids: list[int]) -> dict[int, list[Label]]:
    """The member's labels on each of these threads, in one query."""
    found = _labels_of([member_id], thread_ids)
    return {thread_id: labels for (_, thread_id), labels in found.items()}


def _labels_of(member_ids, thread_ids) -> dict[tuple[int, int], list[Label]]:
    """Each member's own labels on each of these threads, by (member, thread)."""
    if not member_ids or not thread_ids:
        return {}
    found: dict[tuple[int, int], list[Label]] = {}
    rows = db.session.execute(
        db.select(ThreadLabel.thread_id, Label)
        .join(Label, Label.id == ThreadLabel.label_id)
        .where(ThreadLabel.thread_id.in_(thread_ids), Label.member_id.in_(member_ids))
        .order_by(Label.name_key)
    )
    for thread_id, label in rows:
        found.setdefault((label.member_id, thread_id), []).append(label)
    return found


def unread_thread_count(member_id: int) -> int:
    """Threads with unread messages, as the navigation badge counts them."""
    return db.session.scalar(unread_thread_count_query(member_id))


def unread_thread_count_query(member_id: int):
    """The badge's count as a query, for pages that fetch all their counts at once."""
    return (
        db.select(db.func.count())
        .select_from(ThreadMember)
        .where(
            ThreadMember.member_id == member_id,
            _UNREAD,
            ThreadMember.archived.is_(False),
            ThreadMember.muted.is_(False),
            not_hidden(member_id),
        )
    )


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]  # oldest first
    older_cursor: int | None  # pass as `before` for the page before this one
    newest: bool  # this page ends at the newest message
    newer_cursor: int | None = None  # pass as `after` for the page after this one
    # With `and_before`: the message `before` itself (it heads the page already shown),
    # read with this one; None when it is not in the thread (or not the reader's).
    before_message: Message | None = None
    # In a group: who the messages are from and about, read with them.
    cast: groups.Cast | None = None


def messages(
    thread_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    at: int | None = None,
    limit: int = THREAD_PAGE_SIZE,
    kind: str | None = None,
    reader_id: int | None = None,
    and_before: bool = False,
) -> MessagePage:
    """A page of a thread's history with its files, keyset-paged on message id (never
    OFFSET), in one statement.

    The newest page by default; the page before `before`, the page after `after`, or
    the page around the message `at` (a search result), with a few older ones above it.
    In a group (`kind`), only what `reader_id` may read: the stretches they were in it.
    `and_before`: the message `before` too, as `before_message` (see MessagePage).
    """
    base = (_plain(kind), {"page_thread": thread_id, "page_reader": reader_id})
    if at is not None:
        older = _older_than(base, at + 1, AT_CONTEXT)
        newer = _newer_than(base, at, limit - len(older.messages))
        return MessagePage(
            older.messages + newer.messages,
            older.older_cursor,
            newer.newest,
            newer.newer_cursor,
            cast=groups.Cast.of(older.cast, newer.cast),
        )
    if after is not None:
        return _newer_than(base, after, limit)
    return _older_than(base, before, limit, and_before=and_before and before is not None)


AT_CONTEXT = 6  # a message opened from a search result, and the ones just before it


def _plain(kind: str | None) -> str | None:
    """The kinds of thread whose pages differ: groups, threads without InMail, others."""
    return kind if kind in (THREAD_ORDINARY, THREAD_GROUP) else None


# A page's statements are built once per kind of page, over these bound parameters:
# SQLAlchemy keeps a statement's cache key on the statement object, which building the
# select on every request had worked out (and paid for) every time.
_THREAD = db.bindparam("page_thread", type_=db.Integer)
_READER = db.bindparam("page_reader", type_=db.Integer)
_CURSOR = db.bindparam("page_cursor", type_=db.Integer)


@cache
def _message_query(kind: str | None):
    """Messages of a thread with their files, joined in (one statement); ordinary threads
    and groups have no InMail to load with them, and a group shows only what the reader
    may read."""
    query = (
        db.select(Message)
        .where(Message.thread_id == _THREAD)
        .options(joinedload(Message.attachments))
    )
    if kind in (THREAD_ORDINARY, THREAD_GROUP):
        query = query.options(noload(Message.inmail))
    else:
        query = query.options(joinedload(Message.inmail))
    if kind == THREAD_GROUP:
        # Who each message is from and about, and whether the reader blocked its sender
        # (it shows collapsed): the page's `cast`, in the same statement.
        sender, subject = aliased(Member), aliased(Member)
        blocked = (
            db.select(Block.blocker_id)
            .where(Block.blocker_id == _READER, Block.blocked_id == Message.sender_id)
            .exists()
        )
        query = (
            query.where(threads.visible_to(_READER))
            .add_columns(sender, subject, blocked)
            .outerjoin(sender, sender.id == Message.sender_id)
            .outerjoin(subject, subject.id == Message.subject_id)
        )
    return query


@lru_cache(maxsize=64)
def _older_statement(kind: str | None, limit: int, cursor: bool, and_before: bool):
    where = ()
    if cursor:
        where = (Message.id <= _CURSOR if and_before else Message.id < _CURSOR,)
    if kind == THREAD_ORDINARY:
        return _core_page(where, limit + 1 + and_before, newest_first=True)
    query = _message_query(kind).order_by(Message.id.desc()).limit(limit + 1 + and_before)
    return query.where(*where)


@lru_cache(maxsize=64)
def _newer_statement(kind: str | None, limit: int):
    if kind == THREAD_ORDINARY:
        return _core_page((Message.id > _CURSOR,), limit + 1, newest_first=False)
    return _message_query(kind).where(Message.id > _CURSOR).order_by(Message.id).limit(limit + 1)


# An ordinary thread's page (most pages) through Core: its messages, then each one's
# files joined in, made into instances by `_core_messages`. The ORM's loading of thirty
# messages and their files (joined eager loading, then a unique() pass) cost a thread
# page 0.5 ms, more than the rest of its statements together.
_PAGE_MESSAGE = CoreEntities(Message)
_PAGE_FILE = CoreEntities(Attachment)


def _core_page(where: tuple, limit: int, *, newest_first: bool):
    order = Message.id.desc() if newest_first else Message.id
    page = (
        db.select(*_PAGE_MESSAGE.columns)
        .where(Message.thread_id == _THREAD, *where)
        .order_by(order)
        .limit(limit)
        .subquery("page")
    )
    return (
        db.select(page, *_PAGE_FILE.columns)
        .outerjoin(Attachment, Attachment.message_id == page.c.id)
        .order_by(page.c.id.desc() if newest_first else page.c.id, Attachment.id)
    )


def open_thread(member_id: int, thread_id: int) -> tuple[ThreadView, MessagePage | None]:
    """A thread's page as it opens: the view with its facts (`threads.get_thread_for`)
    and, for an ordinary thread, its newest page of messages (as `messages` reads it),
    read in the same statement; None for any other kind of thread, whose page is asked
    for as usual. Raises NotFound as `get_thread_for` does."""
    row = (
        db.session.connection()
        .execute(_opening_statement(), threads.view_parameters(member_id, thread_id))
        .first()
    )
    view = threads.view_of(row, facts=True)
    if view.thread.kind != THREAD_ORDINARY:
        return view, None
    newest = _with_files(
        row.newest_messages,
        lambda values: values["id"],
        lambda values: _PAGE_MESSAGE.instances_from_json(values, attachments=[], inmail=None)[0],
        lambda values: _PAGE_FILE.instances_from_json(values, "file_")[0],
    )
    return view, _page_of(newest, THREAD_PAGE_SIZE, newest=True)


@cache
def _opening_statement():
    """The view statement of a thread's page with its newest page of messages (an
    ordinary thread's: a limit + 1 newest, each with its files) as one JSON column."""
    newest = (
        db.select(*_PAGE_MESSAGE.columns)
        .where(Message.thread_id == Thread.id, Thread.kind == THREAD_ORDINARY)
        .correlate(Thread)
        .order_by(Message.id.desc())
        .limit(THREAD_PAGE_SIZE + 1)
        .subquery("newest")
    )
    rows = db.select(*newest.c, *_PAGE_FILE.labelled("file_")).outerjoin(
        Attachment, Attachment.message_id == newest.c.id
    )
    column = json_rows(rows, order_by=(newest.c.id.desc(), Attachment.id))
    return threads.page_view_statement(column.label("newest_messages"))


def _core_messages(rows) -> list[Message]:
    """The messages of a `_core_page`'s rows, each with its files (in id order) and no
    InMail (an ordinary thread has none)."""
    first_file = len(_PAGE_MESSAGE.columns)
    return _with_files(
        rows,
        lambda row: row[0],
        lambda row: _PAGE_MESSAGE.instances(row, attachments=[], inmail=None)[0],
        lambda row: _PAGE_FILE.instances(row, first_file)[0],
    )


def _with_files(rows, message_id, message, attachment) -> list[Message]:
    """Messages from rows of a message joined with its files (a row per file, or one with
    no file), in the rows' order: `message_id`, `message` and `attachment` read a row."""
    messages: list[Message] = []
    for row in rows:
        if not messages or messages[-1].id != message_id(row):
            messages.append(message(row))
        found = attachment(row)
        if found is not None:
            messages[-1].attachments.append(found)
    return messages


def _read(query, params: dict, kind: str | None) -> tuple[list[Message], groups.Cast | None]:
    """The messages of a page's statement (`_older_statement`, `_newer_statement`), and
    their cast when it is a group's."""
    if kind == THREAD_ORDINARY:
        return _core_messages(db.session.connection().execute(query, params).all()), None
    rows = db.session.execute(query, params).unique().all()
    if not rows or len(rows[0]) == 1:
        return [row[0] for row in rows], None
    people, blocked = {}, set()
    for message, sender, subject, sender_blocked in rows:
        for member in (sender, subject):
            if member is not None:
                people[member.id] = member
        if sender_blocked:
            blocked.add(message.sender_id)
    return [row[0] for row in rows], groups.Cast(people, frozenset(blocked))


def _older_than(base, before: int | None, limit: int, *, and_before: bool = False) -> MessagePage:
    kind, params = base
    query = _older_statement(kind, limit, before is not None, and_before)
    rows, cast = _read(query, params | {"page_cursor": before}, kind)
    first = None
    if and_before:
        first = rows.pop(0) if rows and rows[0].id == before else None
        rows = rows[: limit + 1]
    return _page_of(rows, limit, newest=before is None, before_message=first, cast=cast)


def _page_of(rows: list[Message], limit: int, **page) -> MessagePage:
    """The page of up to `limit + 1` messages read newest first: the newest `limit`,
    oldest first, and the cursor to the ones before them when there are more."""
    older = rows[limit - 1].id if len(rows) > limit else None
    shown = rows[:limit]
    shown.reverse()
    return MessagePage(shown, older, **page)


def _newer_than(base, after: int, limit: int) -> MessagePage:
    kind, params = base
    rows, cast = _read(_newer_statement(kind, limit), params | {"page_cursor": after}, kind)
    more = len(rows) > limit
    page = rows[:limit]
    older = page[0].id if page else None  # the messages before this page, when asked for
    return MessagePage(page, older, not more, page[-1].id if more else None, cast=cast)


def opened(member_id: int, view: ThreadView) -> None:
    """The member opened the thread at its newest page: read up to the newest message,
    and an InMail waiting for them counts as opened."""
    mark_read(member_id, view.thread.id, view.membership.last_message_id, view=view)
    if view.thread.kind == THREAD_INMAIL:
        inmail.mark_opened(view.thread.id, member_id)


def mark_read(
    member_id: int, thread_id: int, up_to_message_id: int | None, *, view: ThreadView | None = None
) -> None:
    """The member has seen the thread up to this message; anything newer stays unread.

    The member's other open pages hear of it, so their badges agree. With the `view` just
    loaded, nothing is read again when there is nothing new.
    """
    if up_to_message_id is None:
        return
    # Never past the member's own side's newest message (in a group they left, what
    # follows is not theirs).
    if view is not None:
        newest, seen = view.membership.last_message_id, view.membership.last_read_message_id
    else:
        newest, seen = db.session.execute(
            db.select(ThreadMember.last_message_id, ThreadMember.last_read_message_id).where(
                ThreadMember.thread_id == thread_id, ThreadMember.member_id == member_id
            )
        ).first() or (None, None)
    up_to_message_id = min(up_to_message_id, newest or 0)
    if seen is None or seen >= up_to_message_id:
        return  # nothing new: no write, no transaction held
    changed = db.session.execute(
        db.update(ThreadMember)
        .where(
            ThreadMember.thread_id == thread_id,
            ThreadMember.member_id == member_id,
            ThreadMember.last_read_message_id < up_to_message_id,
        )
        .values(
            last_read_message_id=threads.at_least(
                ThreadMember.last_read_message_id, up_to_message_id
            )
        )
    ).rowcount
    if changed:
        events.record(member_id, events.THREAD_CHANGED, thread_id=thread_id)
    db.session.commit()
