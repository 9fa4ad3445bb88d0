"""The invariants overlapping requests must not break, checked over the whole database.

`flask --app app check-integrity` runs every check in `CHECKS` and lists what is wrong;
the race tests run it after every race. Each check is a function that returns a list of
problems, one sentence each (empty when all is well): to add a check, write one more
such function and append it to `CHECKS`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_

from ..extensions import db
from ..models import (
    GROUP_MAX_MEMBERS,
    INMAIL_SENT,
    THREAD_GROUP,
    CreditEntry,
    GroupSpan,
    InMail,
    Invitation,
    Label,
    Message,
    Thread,
)
from ..models import ThreadMember as Side
from . import billing, events, organise, threads
from .inmail import REFUND_WINDOW
from .spans import visible_to

Check = Callable[[], list[str]]


def ledger_balances() -> list[str]:
    """Every member's balance (the sum of their ledger) is never below zero, and every
    spend and refund in the ledger is the one its InMail points at."""
    problems = [
        f"member {member_id}: balance {total} is below zero"
        for member_id, total in db.session.execute(
            db.select(CreditEntry.member_id, func.sum(CreditEntry.delta))
            .group_by(CreditEntry.member_id)
            .having(func.sum(CreditEntry.delta) < 0)
        )
    ]
    for reason, column in ((billing.SPEND, "credit_entry_id"), (billing.REFUND, "refund_entry_id")):
        pointer = getattr(InMail, column)
        rows = db.session.execute(
            db.select(CreditEntry.id, CreditEntry.member_id, CreditEntry.ref_id, InMail.id)
            .outerjoin(InMail, InMail.id == CreditEntry.ref_id)
            .where(
                CreditEntry.reason == reason,
                CreditEntry.ref_id.is_not(None),
                or_(
                    InMail.id.is_(None),
                    InMail.sender_id != CreditEntry.member_id,
                    pointer.is_(None),
                    pointer != CreditEntry.id,
                ),
            )
        )
        problems += [
            f"ledger entry {entry_id} ({reason}, member {member_id}): "
            f"InMail {ref_id} does not point at it"
            for entry_id, member_id, ref_id, _ in rows
        ]
    return problems


def inmail_refunds() -> list[str]:
    """At most one refund per InMail, none for an unanswered one, none after 90 days."""
    problems = [
        f"InMail {ref_id}: refunded {count} times"
        for ref_id, count in db.session.execute(
            db.select(CreditEntry.ref_id, func.count())
            .where(CreditEntry.reason == billing.REFUND)
            .group_by(CreditEntry.ref_id)
            .having(func.count() > 1)
        )
    ]
    rows = db.session.execute(
        db.select(InMail.id, InMail.status, InMail.created_at, InMail.responded_at).where(
            InMail.id.in_(db.select(CreditEntry.ref_id).where(CreditEntry.reason == billing.REFUND))
        )
    )
    for inmail_id, status, created_at, responded_at in rows:
        if status == INMAIL_SENT:
            problems.append(f"InMail {inmail_id}: refunded but not answered")
        elif responded_at is None or responded_at - created_at > REFUND_WINDOW:
            problems.append(f"InMail {inmail_id}: refunded although answered after 90 days")
    return problems


def allowances() -> list[str]:
    """At most one allowance per 30-day period, each at most the monthly allowance,
    and never one that takes the balance above the rollover cap."""
    problems = []
    entries = db.session.execute(
        db.select(
            CreditEntry.member_id, CreditEntry.delta, CreditEntry.reason, CreditEntry.created_at
        ).order_by(CreditEntry.member_id, CreditEntry.id)
    )
    running: dict[int, int] = defaultdict(int)
    last_allowance: dict[int, datetime] = {}
    for member_id, delta, reason, created_at in entries:
        running[member_id] += delta
        if reason != billing.ALLOWANCE:
            continue
        if delta > billing.MONTHLY_ALLOWANCE:
            problems.append(f"member {member_id}: an allowance of {delta} credits")
        if running[member_id] > billing.ROLLOVER_CAP:
            problems.append(
                f"member {member_id}: an allowance took the balance to {running[member_id]}, "
                f"above the cap of {billing.ROLLOVER_CAP}"
            )
        previous = last_allowance.get(member_id)
        if previous is not None and created_at - previous < billing.PERIOD:
            problems.append(
                f"member {member_id}: two allowances within one period "
                f"({previous:%Y-%m-%d %H:%M:%S} and {created_at:%Y-%m-%d %H:%M:%S})"
            )
        last_allowance[member_id] = created_at
    return problems


def label_cap() -> list[str]:
    cap = organise.LABELS_PER_MEMBER
    return [
        f"member {member_id}: {count} labels, above the cap of {cap}"
        for member_id, count in db.session.execute(
            db.select(Label.member_id, func.count())
            .group_by(Label.member_id)
            .having(func.count() > cap)
        )
    ]


def invitation_cap() -> list[str]:
    """No 7 days in which a member sent more invitations than INVITATIONS_PER_WEEK."""
    cap = current_app.config["INVITATIONS_PER_WEEK"]
    rows = db.session.execute(
        db.select(Invitation.sender_id, Invitation.created_at).order_by(
            Invitation.sender_id, Invitation.created_at
        )
    )
    return [
        f"member {member_id}: {count} invitations within 7 days, above the cap of {cap}"
        for member_id, count in _over_cap(rows, timedelta(days=7), cap)
    ]


def new_thread_cap() -> list[str]:
    """No window (NEW_THREAD_RATE_LIMIT) in which a member started more conversations."""
    cap, window = threads.new_thread_cap()
    rows = db.session.execute(
        db.select(Thread.started_by_id, Thread.created_at)
        .where(Thread.started_by_id.is_not(None))
        .order_by(Thread.started_by_id, Thread.created_at)
    )
    return [
        f"member {member_id}: {count} new conversations within {window}, above the cap of {cap}"
        for member_id, count in _over_cap(rows, window, cap)
    ]


def _over_cap(rows: Iterable, window: timedelta, cap: int) -> list[tuple[int, int]]:
    """(member, the most rows in any window) for members over the cap; rows are
    (member, time) ordered by member then time."""
    worst: dict[int, int] = {}
    recent: deque = deque()
    current = None
    for member_id, at in rows:
        if member_id != current:
            current, recent = member_id, deque()
        recent.append(at)
        while at - recent[0] >= window:
            recent.popleft()
        if len(recent) > cap:
            worst[member_id] = max(worst.get(member_id, 0), len(recent))
    return sorted(worst.items())


def threads_and_sides() -> list[str]:
    """Every one-to-one thread has its two sides, and every message agrees with its
    thread: sent by one of its two members, and counted in the thread's and both sides'
    newest message. (A group's members and senders: `group_members`.)"""
    problems = []
    pair = Thread.kind != THREAD_GROUP
    sides = db.select(Side.thread_id, func.count().label("n")).group_by(Side.thread_id).subquery()
    for thread_id, count in db.session.execute(
        db.select(Thread.id, func.coalesce(sides.c.n, 0))
        .outerjoin(sides, sides.c.thread_id == Thread.id)
        .where(pair, func.coalesce(sides.c.n, 0) != 2)
    ):
        problems.append(f"thread {thread_id}: {count} member sides instead of 2")
    for thread_id, member_id in db.session.execute(
        db.select(Side.thread_id, Side.member_id)
        .join(Thread, Thread.id == Side.thread_id)
        .where(
            pair,
            or_(
                and_(Side.member_id == Thread.a_id, Side.other_id != Thread.b_id),
                and_(Side.member_id == Thread.b_id, Side.other_id != Thread.a_id),
                Side.member_id.not_in([Thread.a_id, Thread.b_id]),
                Side.other_id.is_(None),
            ),
        )
    ):
        problems.append(f"thread {thread_id}: member {member_id}'s side names the wrong members")
    for message_id, thread_id in db.session.execute(
        db.select(Message.id, Message.thread_id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(pair, Message.sender_id.not_in([Thread.a_id, Thread.b_id]))
    ):
        problems.append(f"message {message_id}: its sender is not in thread {thread_id}")
    newest = (
        db.select(Message.thread_id, func.max(Message.id).label("newest"))
        .group_by(Message.thread_id)
        .subquery()
    )
    for thread_id, recorded, actual in db.session.execute(
        db.select(Thread.id, Thread.last_message_id, newest.c.newest)
        .outerjoin(newest, newest.c.thread_id == Thread.id)
        .where(func.coalesce(Thread.last_message_id, 0) != func.coalesce(newest.c.newest, 0))
    ):
        problems.append(f"thread {thread_id}: newest message {actual}, the thread says {recorded}")
    # A side that moves (every side but a former group member's) is at the newest message.
    thread_newest = func.coalesce(newest.c.newest, 0)
    for thread_id, member_id, recorded, actual in db.session.execute(
        db.select(Side.thread_id, Side.member_id, Side.last_message_id, newest.c.newest)
        .outerjoin(newest, newest.c.thread_id == Side.thread_id)
        .where(
            or_(
                and_(Side.active.is_(True), Side.last_message_id != thread_newest),
                Side.last_read_message_id > Side.last_message_id,
            )
        )
    ):
        problems.append(
            f"thread {thread_id}: member {member_id}'s side says newest message {recorded}, "
            f"it is {actual}"
        )
    for inmail_id, thread_id in db.session.execute(
        db.select(InMail.id, InMail.thread_id)
        .join(Message, Message.id == InMail.message_id)
        .where(or_(Message.thread_id != InMail.thread_id, Message.sender_id != InMail.sender_id))
    ):
        problems.append(f"InMail {inmail_id}: its message is not the sender's in {thread_id}")
    return problems


def group_members() -> list[str]:
    """A group has no pair and its sides name no other member; each member's spans are
    in order, not overlapping, and only the last may be open; a member is in the group
    (an active side) exactly when they have an open span, and a former member's side
    stopped at the end of their last span; there are at most 50 members at a time;
    every message was sent by someone whose span covers it (what they sent, they were
    there to read)."""
    problems = []
    group = Thread.kind == THREAD_GROUP
    for thread_id in db.session.scalars(
        db.select(Thread.id).where(group, or_(Thread.a_id.is_not(None), Thread.b_id.is_not(None)))
    ):
        problems.append(f"group {thread_id}: has a pair of members")
    sides = {
        (side.thread_id, side.member_id): side
        for side in db.session.scalars(
            db.select(Side).join(Thread, Thread.id == Side.thread_id).where(group)
        )
    }
    for (thread_id, member_id), side in sides.items():
        if side.other_id is not None:
            problems.append(f"group {thread_id}: member {member_id}'s side names another member")
    spans: dict[tuple[int, int], list[GroupSpan]] = defaultdict(list)
    for span in db.session.scalars(
        db.select(GroupSpan).order_by(
            GroupSpan.thread_id, GroupSpan.member_id, GroupSpan.first_message_id
        )
    ):
        spans[(span.thread_id, span.member_id)].append(span)
    for key in sorted(spans.keys() | sides.keys()):
        problems += _member_problems(*key, sides.get(key), spans.get(key, []))
    for thread_id, count in db.session.execute(
        db.select(Side.thread_id, func.count())
        .join(Thread, Thread.id == Side.thread_id)
        .where(group, Side.active.is_(True))
        .group_by(Side.thread_id)
        .having(func.count() > GROUP_MAX_MEMBERS)
    ):
        problems.append(f"group {thread_id}: {count} members, above the cap of {GROUP_MAX_MEMBERS}")
    for message_id, thread_id, sender_id in db.session.execute(
        db.select(Message.id, Message.thread_id, Message.sender_id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(group, ~visible_to(Message.sender_id))
    ):
        problems.append(
            f"message {message_id}: sender {sender_id} was not in group {thread_id} then"
        )
    return problems


def _member_problems(thread_id: int, member_id: int, side, spans: list) -> list[str]:
    """What is wrong with one member's side and spans of one group."""
    who = f"group {thread_id}: member {member_id}"
    if side is None:
        return [f"{who} has spans but no side"]
    problems = []
    previous_end = 0
    for span in spans:
        if span.first_message_id <= previous_end:
            problems.append(f"{who}: spans overlap or are out of order at {span.first_message_id}")
        if span.last_message_id is not None and span.last_message_id < span.first_message_id:
            problems.append(f"{who}: a span ends ({span.last_message_id}) before it starts")
        previous_end = span.last_message_id or span.first_message_id
    open_spans = [span for span in spans if span.last_message_id is None]
    if side.active and (len(open_spans) != 1 or spans[-1].last_message_id is not None):
        problems.append(f"{who} is in it but has {len(open_spans)} open spans, not the last one")
    if not side.active:
        if open_spans:
            problems.append(f"{who} left but still has an open span")
        elif not spans or side.last_message_id != spans[-1].last_message_id:
            problems.append(f"{who} left, but their side did not stop where their span ends")
    return problems


# The checks `flask check-integrity` runs, in order. One more: append a function.
CHECKS: list[Check] = [
    ledger_balances,
    inmail_refunds,
    allowances,
    label_cap,
    invitation_cap,
    new_thread_cap,
    threads_and_sides,
    group_members,
    events.sequence_problems,
]


def problems() -> list[str]:
    """Everything wrong, each as `check: sentence`; empty when every invariant holds."""
    found = []
    for check in CHECKS:
        found += [f"{check.__name__}: {problem}" for problem in check()]
    return found
