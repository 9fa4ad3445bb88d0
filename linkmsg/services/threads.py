"""Conversations underneath every way of writing: finding and starting threads, who is
in them, appending a message, idempotency keys, file access, and `post`, the one send
pipeline that messaging and InMail both run with their own rules.

Nothing here decides who may write to whom: callers hand `post` their permission check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from flask import current_app
from limits import parse as parse_limit
from sqlalchemy import bindparam, case, false, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, make_transient_to_detached

from ..extensions import db
from ..models import (
    MESSAGE_TEXT,
    THREAD_INMAIL,
    THREAD_ORDINARY,
    Attachment,
    Block,
    Connection,
    InMail,
    Label,
    Member,
    Message,
    Thread,
    ThreadLabel,
    ThreadMember,
    utcnow,
)
from ..sql import CoreEntities, json_rows
from . import atomic, attachments, events, outbox
from .errors import NotFound, RateLimited
from .spans import visible_to

_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

# ---------------------------------------------------------------- finding and starting


def find_thread(a_id: int, b_id: int, kind: str = THREAD_ORDINARY) -> Thread | None:
    """The thread of this kind between two members, if they have one."""
    low, high = sorted((a_id, b_id))
    return db.session.scalar(
        db.select(Thread).where(Thread.a_id == low, Thread.b_id == high, Thread.kind == kind)
    )


def get_or_create_thread(sender_id: int, recipient_id: int, kind: str = THREAD_ORDINARY) -> Thread:
    """The pair's thread of this kind, started by `sender_id` if they have none, in the
    caller's transaction.

    A new conversation counts toward the sender's daily cap. Both members' locks are
    taken first (in id order), so the count and the insert are one step: overlapping
    first messages to many members cannot start more than the cap, and overlapping
    first messages to one member meet in one thread (its unique index).
    Raises RateLimited over the cap.
    """
    existing = find_thread(sender_id, recipient_id, kind)
    if existing is not None:
        return existing
    atomic.lock_members(sender_id, recipient_id)
    existing = find_thread(sender_id, recipient_id, kind)
    if existing is not None:
        return existing
    check_new_thread_cap(sender_id)
    low, high = sorted((sender_id, recipient_id))
    thread_id = atomic.insert_ignoring_conflict(
        Thread,
        {
            "a_id": low,
            "b_id": high,
            "kind": kind,
            "created_at": utcnow(),
            "started_by_id": sender_id,
        },
        ["a_id", "b_id"],
        index_where=text(f"kind = '{kind}'"),
    )
    if thread_id is not None:
        db.session.add_all(
            [
                ThreadMember(thread_id=thread_id, member_id=low, other_id=high),
                ThreadMember(thread_id=thread_id, member_id=high, other_id=low),
            ]
        )
        db.session.flush()
    return find_thread(low, high, kind)


def new_thread_cap() -> tuple[int, timedelta]:
    """NEW_THREAD_RATE_LIMIT ("50 per day") as (how many, in what sliding window)."""
    item = parse_limit(current_app.config["NEW_THREAD_RATE_LIMIT"])
    return item.amount, timedelta(seconds=item.get_expiry())


def check_new_thread_cap(member_id: int) -> None:
    """Raises RateLimited when the member started their cap of conversations in the
    window (the caller holds the member's lock)."""
    limit, window = new_thread_cap()
    now = utcnow()
    started = (
        db.select(Thread.created_at)
        .where(Thread.started_by_id == member_id, Thread.created_at > now - window)
        .subquery()
    )
    count, oldest = db.session.execute(
        db.select(db.func.count(), db.func.min(started.c.created_at)).select_from(started)
    ).one()
    if count < limit:
        return
    again = oldest + window
    error = RateLimited(
        f"You've started {limit} new conversation{'' if limit == 1 else 's'} "
        f"in the last {_window_words(window)}. "
        f"Nothing was sent; you can start another after {again:%b %-d, %H:%M} UTC."
    )
    error.retry_after = max(1, int((again - now).total_seconds()))
    raise error


def _window_words(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"


# ---------------------------------------------------------------- membership


@dataclass(frozen=True)
class ThreadFacts:
    """What a thread page decides from, read with the thread (`get_thread_for(...,
    facts=True)`): who blocked whom of the member and the other, whether they are
    connected, the member's labels on the thread, and in an InMail thread its InMails as
    (status, recipient id), oldest first."""

    blockers: frozenset[int]
    connected: bool
    label_ids: frozenset[int]
    inmails: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ThreadView:
    """A thread as one of its members sees it. `other` is the other member of a
    one-to-one thread, None in a group. `facts`: read with it for a page, else None."""

    thread: Thread
    membership: ThreadMember
    other: Member | None
    facts: ThreadFacts | None = None

    @property
    def is_group(self) -> bool:
        return self.thread.is_group

    @property
    def active(self) -> bool:
        """Whether the member is in it now (a former group member only reads)."""
        return self.membership.active

    def facts_for(self, member_id: int) -> ThreadFacts | None:
        """The facts when they are this member's (a view is one member's)."""
        return self.facts if self.membership.member_id == member_id else None


def _blocked(blocker, blocked):
    return (
        db.select(Block.blocker_id)
        .where(Block.blocker_id == blocker, Block.blocked_id == blocked)
        .exists()
    )


def _view_statement(facts: bool):
    """The thread as the member sees it, with whether a block stands between them and the
    other member, and for a page the rest of `ThreadFacts`: one statement, built once."""
    member_id, thread_id = bindparam("member_id"), bindparam("thread_id")
    columns = [
        _blocked(member_id, ThreadMember.other_id).label("i_blocked"),
        _blocked(ThreadMember.other_id, member_id).label("they_blocked"),
    ]
    if facts:
        columns += [
            db.select(Connection.member_id)
            .where(Connection.member_id == member_id, Connection.other_id == ThreadMember.other_id)
            .exists()
            .label("connected"),
            json_rows(
                db.select(ThreadLabel.label_id.label("id"))
                .join(Label, Label.id == ThreadLabel.label_id)
                .where(ThreadLabel.thread_id == thread_id, Label.member_id == member_id)
            ).label("label_ids"),
            json_rows(
                db.select(
                    InMail.id.label("id"),
                    InMail.status.label("status"),
                    InMail.recipient_id.label("to"),
                )
                .where(InMail.thread_id == thread_id, Thread.kind == THREAD_INMAIL)
                .correlate(Thread),
                order_by=(InMail.id,),
            ).label("inmails"),
        ]
    # For a page, the entities' columns through Core (`_PAGE_VIEW`); else the entities,
    # which the services that write load through the session.
    entities = _PAGE_VIEW.columns if facts else (ThreadMember, Thread, Member)
    return (
        db.select(*entities, *columns)
        .select_from(ThreadMember)
        .join(Thread, Thread.id == ThreadMember.thread_id)
        .outerjoin(Member, Member.id == ThreadMember.other_id)
        .where(ThreadMember.thread_id == thread_id, ThreadMember.member_id == member_id)
    )


# A thread page's view is read only: its membership, thread and other member are made
# from the row (`sql.CoreEntities`), not loaded by the ORM, which cost more than the
# statement itself.
_PAGE_VIEW = CoreEntities(ThreadMember, Thread, Member)
_VIEW_STATEMENTS = {facts: _view_statement(facts) for facts in (False, True)}


def get_thread_for(member_id: int, thread_id: int, *, facts: bool = False) -> ThreadView:
    """The thread if `member_id` is in it (or was, for a group) and it is not hidden by
    a block; with `facts`, what its page decides from, read in the same statement.

    Raises NotFound otherwise — the same answer whether the thread does not exist or
    belongs to others, so that nobody learns it exists.
    """
    # A page's view goes through Core (the session's connection), the entities made below.
    execute = db.session.connection().execute if facts else db.session.execute
    row = execute(_VIEW_STATEMENTS[facts], view_parameters(member_id, thread_id)).first()
    return view_of(row, facts=facts)


def page_view_statement(*columns):
    """A page's view statement (`get_thread_for(..., facts=True)`) with more columns of the
    caller's in its row, correlated to `Thread` and `ThreadMember` (the messaging service
    reads a thread's newest messages with it). Read it through Core with
    `view_parameters`, and make its view with `view_of(row, facts=True)`."""
    return _VIEW_STATEMENTS[True].add_columns(*columns)


def view_parameters(member_id: int, thread_id: int) -> dict:
    return {"member_id": member_id, "thread_id": thread_id}


def view_of(row, *, facts: bool) -> ThreadView:
    """The view from a row of a view statement; NotFound for no row, or a thread a block
    hides (see `get_thread_for`)."""
    if row is None or row.i_blocked or row.they_blocked:
        raise NotFound("This conversation does not exist.")
    if facts:
        membership, thread, other = _PAGE_VIEW.instances(row)
    else:
        membership, thread, other = row[0], row[1], row[2]
    found = None
    if facts:
        inmails = row.inmails
        found = ThreadFacts(
            blockers=frozenset(),  # a block hides the thread: nobody blocked anybody here
            connected=bool(row.connected),
            label_ids=frozenset(item["id"] for item in row.label_ids),
            inmails=tuple((item["status"], item["to"]) for item in inmails),
        )
    return ThreadView(thread, membership, other, found)


def views_for(thread_id: int, member_ids: Sequence[int]) -> dict[int, ThreadView]:
    """A group as each of these members sees it, in one query (for live events to all
    of them). Only for groups: a block hides nothing there."""
    rows = db.session.execute(
        db.select(ThreadMember, Thread)
        .join(Thread, Thread.id == ThreadMember.thread_id)
        .where(ThreadMember.thread_id == thread_id, ThreadMember.member_id.in_(member_ids))
    ).all()
    return {tm.member_id: ThreadView(thread, tm, None) for tm, thread in rows if thread.is_group}


def may_read(member_id: int, message: Message) -> bool:
    """Whether the member may read this message (in its thread, within their spans)."""
    view = get_thread_for(member_id, message.thread_id)
    if not view.is_group:
        return True
    return bool(db.session.scalar(db.select(visible_to(member_id, message.id, message.thread_id))))


def attachment_for(member_id: int, attachment_id: int) -> Attachment:
    """The attachment if `member_id` may read its message. Raises NotFound otherwise, the
    same as for one that does not exist."""
    found = db.session.execute(
        db.select(Attachment, Message)
        .join(Message, Message.id == Attachment.message_id)
        .where(Attachment.id == attachment_id)
    ).first()
    if found is None:
        raise NotFound("This file does not exist.")
    attachment, message = found
    if not may_read(member_id, message):
        raise NotFound("This file does not exist.")
    return attachment


# ---------------------------------------------------------------- appending


def usable_idempotency_key(submitted: str | None) -> str | None:
    """The form's idempotency key when it has the shape the page gives it, else None
    (a submit without a usable key is never taken for a repeat)."""
    if submitted and _IDEMPOTENCY_KEY_RE.match(submitted):
        return submitted
    return None


def message_by_key(sender_id: int, key: str | None) -> Message | None:
    """The message this sender already sent with this idempotency key, if any."""
    if key is None:
        return None
    return db.session.scalar(
        db.select(Message).where(Message.sender_id == sender_id, Message.idempotency_key == key)
    )


_LOCKED = "linkmsg_locked_threads"  # session.info: groups locked in this transaction


def lock_thread(thread_id: int) -> None:
    """Take the group's row lock: sends and membership changes of one group run one
    after the other, so every message falls on one side of a join or a leave. Taken once
    per transaction (`append` asks again for callers that did not)."""
    locked = db.session.info.setdefault(_LOCKED, set())
    if thread_id in locked:
        return
    db.session.execute(
        db.select(Thread.id).where(Thread.id == thread_id).with_for_update(key_share=True)
    )
    locked.add(thread_id)


def lock_thread_reading(membership: ThreadMember) -> None:
    """Take the group's row lock and read `membership` (one member's side) again under
    it, in one statement: whether they are still in the group is decided under the lock."""
    db.session.execute(
        db.select(ThreadMember)
        .join(Thread, Thread.id == ThreadMember.thread_id)
        .where(
            ThreadMember.thread_id == membership.thread_id,
            ThreadMember.member_id == membership.member_id,
        )
        .with_for_update(key_share=True, of=Thread)
        .execution_options(populate_existing=True)
    ).scalar_one()
    db.session.info.setdefault(_LOCKED, set()).add(membership.thread_id)


@sa_event.listens_for(Session, "after_transaction_end")
def _locks_released(session: Session, transaction) -> None:
    session.info.pop(_LOCKED, None)


def append(
    thread: Thread,
    sender_id: int,
    body: str,
    key: str | None,
    files: list[attachments.Prepared] | None = None,
    *,
    kind: str = MESSAGE_TEXT,
    subject_id: int | None = None,
) -> Message | None:
    """Add a message (or a group's system line, `kind`) to the thread and bring every
    current member's side up to date, in the caller's transaction (the caller commits).

    Returns None, having added nothing, when this sender already used `key` (an
    overlapping repeat of the same submit committed first): the caller decides what of
    its transaction stands — `post` rolls it back and answers with the earlier message.

    In a group, whatever the number of members, the sides, the live events and the
    emails are written by a few statements; a member who blocked the sender has it
    marked read, gets no event and no email.
    """
    if thread.is_group:
        lock_thread(thread.id)
    values = {
        "thread_id": thread.id,
        "sender_id": sender_id,
        "body": body,
        "idempotency_key": key,
        "created_at": utcnow(),
        "kind": kind,
        "subject_id": subject_id,
    }
    message_id = atomic.insert_ignoring_conflict(Message, values, ["sender_id", "idempotency_key"])
    if message_id is None:
        return None
    attachments.attach(message_id, files or [])
    newest = case(
        (Thread.last_message_id.is_(None), message_id),
        (Thread.last_message_id < message_id, message_id),
        else_=Thread.last_message_id,
    )
    db.session.execute(
        db.update(Thread).where(Thread.id == thread.id).values(last_message_id=newest)
    )
    # Every current member's side moves to the newest message; the sender has read up
    # to theirs, and so has whoever blocked the sender (it shows to them collapsed). In a
    # group, the sides updated say who hears of it live: all but those who blocked the
    # sender.
    blocked = false()
    if thread.is_group:
        blocked = ThreadMember.member_id.in_(
            db.select(Block.blocker_id).where(Block.blocked_id == sender_id)
        )
    read_it = (ThreadMember.member_id == sender_id) | blocked
    sides = db.session.execute(
        db.update(ThreadMember)
        .where(ThreadMember.thread_id == thread.id, ThreadMember.active.is_(True))
        .values(
            last_message_id=at_least(ThreadMember.last_message_id, message_id),
            last_read_message_id=case(
                (read_it, at_least(ThreadMember.last_read_message_id, message_id)),
                else_=ThreadMember.last_read_message_id,
            ),
            archived=False,
        )
        .returning(ThreadMember.member_id, blocked)
        .execution_options(synchronize_session=False)
    ).all()
    if thread.is_group:
        told = sorted(member_id for member_id, blocker in sides if not blocker)
    else:
        told = [sender_id, thread.other_id(sender_id)]
    for member_id in told:
        events.record(member_id, events.MESSAGE, thread_id=thread.id, message_id=message_id)
    if kind == MESSAGE_TEXT:
        if thread.is_group:
            outbox.queue_group_message_email(thread.id, sender_id, message_id)
        else:
            outbox.queue_message_email(thread.other_id(sender_id), thread.id, message_id)
    db.session.flush()
    # The row as written, without reading it back (its files and InMail load if asked).
    message = Message(id=message_id, **values)
    make_transient_to_detached(message)
    db.session.add(message)
    return message


def at_least(column, value: int):
    """max(column, value), evaluated on the row as it is when the update takes its lock."""
    return case((column < value, value), else_=column)


# ---------------------------------------------------------------- the send pipeline

Content = TypeVar("Content")


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False when this was a repeat of an earlier submit


def post(
    sender_id: int,
    *,
    idempotency_key: str | None,
    uploads: Sequence[attachments.Upload],
    check: Callable[[], None],
    clean: Callable[[bool], Content],
    deliver: Callable[[Content, str | None, list[attachments.Prepared]], Message | None],
) -> Posted:
    """Send one message, every way of writing alike:

    1. a repeated submit (same idempotency key) answers with the earlier message;
    2. `check()` raises when the sender may not write (the caller's rule);
    3. `clean(has_files)` returns the cleaned content or raises ValidationFailed;
    4. the files are checked and stored;
    5. `deliver(content, key, files)` finds or starts the thread and `append`s, in one
       transaction with whatever else the way of writing records (an InMail, a credit);
       it returns None when `append` met a repeat that overlapped this one;
    6. commit — or, on any failure, roll back and remove the stored files.

    Nothing is saved when a step raises.
    """
    key = usable_idempotency_key(idempotency_key)
    earlier = message_by_key(sender_id, key)
    if earlier is not None:
        return Posted(earlier, False)
    check()
    content = clean(any(upload.filename for upload in uploads))
    files = attachments.prepare(list(uploads))
    try:
        message = deliver(content, key, files)
        if message is not None:
            db.session.commit()
            return Posted(message, True)
    except BaseException:
        db.session.rollback()
        attachments.discard(files)
        raise
    # An overlapping submit with the same key committed first: it stands, and nothing of
    # this one (a thread it started, its files) is kept.
    db.session.rollback()
    attachments.discard(files)
    return Posted(message_by_key(sender_id, key), False)
