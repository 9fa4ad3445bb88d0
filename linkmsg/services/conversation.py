"""How a thread's messages are laid out: runs from one sender, and the days between them.

A run (one name, avatar and time above several messages) is consecutive messages from the
same sender less than `GROUP_WINDOW` apart on the same day. Decided on the server, for a
page of messages and for a message appended to an open page (a reply, a live message), so
that the appended one continues the run on the page or starts a new one, the same way.
Days are UTC days, as the times the server writes are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..extensions import db
from ..models import SYSTEM_KINDS, Message, utcnow

GROUP_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class Placed:
    """A message and what goes with it: a day separator before it, a run header."""

    message: Message
    starts_group: bool
    day: date | None  # a new day starts with this message: its separator

    @property
    def day_label(self) -> str:
        return day_label(self.day) if self.day else ""


def day_label(day: date, today: date | None = None) -> str:
    today = today or utcnow().date()
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return day.strftime("%A, %B %-d")
    return day.strftime("%B %-d, %Y")


def place(message: Message, previous: Message | _Before | None) -> Placed:
    """Where `message` goes after `previous` (None: the first one shown)."""
    day = message.created_at.date()
    if previous is None or previous.created_at.date() != day:
        return Placed(message, True, day)
    # A system line of a group stands alone: it neither joins a run nor continues one.
    continues = (
        not previous.is_system
        and not message.is_system
        and previous.sender_id == message.sender_id
        and message.created_at - previous.created_at < GROUP_WINDOW
    )
    return Placed(message, not continues, None)


def laid_out(messages: Sequence[Message]) -> list[Placed]:
    """A page of messages, oldest first, each placed after the one before it."""
    placed, previous = [], None
    for message in messages:
        placed.append(place(message, previous))
        previous = message
    return placed


@dataclass(frozen=True)
class _Before:
    """What placing a message reads of the one before it."""

    sender_id: int
    created_at: datetime
    kind: str

    @property
    def is_system(self) -> bool:
        return self.kind in SYSTEM_KINDS


def place_appended(message: Message) -> Placed:
    """A message added to the end of an open thread: placed after the one before it
    (of which three columns are read, not the message with its files and InMail)."""
    previous = db.session.execute(
        db.select(Message.sender_id, Message.created_at, Message.kind)
        .where(Message.thread_id == message.thread_id, Message.id < message.id)
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    return place(message, _Before(*previous) if previous is not None else None)


def rejoined(
    thread_id: int, first_id: int, older: Sequence[Message], *, read: Message | None = None
) -> Placed | None:
    """The message `first_id`, which heads the page already shown, placed again after the
    page of `older` messages just loaded above it — when it now continues their last run
    (same sender, within `GROUP_WINDOW`), so its name, avatar and time go. None when it
    still starts a run, is not in the thread, or nothing older came. `read`: the message
    `first_id` as the older page's statement read it (`messages(..., and_before=True)`)."""
    if not older:
        return None
    message = read
    if message is None or message.id != first_id or message.thread_id != thread_id:
        message = db.session.scalars(
            db.select(Message).where(Message.id == first_id, Message.thread_id == thread_id)
        ).first()
    if message is None:
        return None
    placed = place(message, older[-1])
    return None if placed.starts_group else placed
