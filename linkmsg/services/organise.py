"""Organising one's own threads: archive, mute, mark unread, and private labels.

Each action changes only the acting member's side of a thread (`ThreadMember`) or their
own labels; the other member never learns of it. A thread the member is not in, or one
hidden by a block, is NotFound, as everywhere in messaging.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..extensions import db
from ..models import Label, Message, ThreadLabel, ThreadMember
from ..sql import json_rows
from . import atomic, events, messaging, threads
from .errors import NotFound, ValidationFailed

LABEL_MAX = 40
LABELS_PER_MEMBER = 100

# ---------------------------------------------------------------- archive, mute, unread


def _update_side(
    member_id: int, thread_id: int, view: threads.ThreadView | None = None, **values
) -> threads.ThreadView:
    view = view or threads.get_thread_for(member_id, thread_id)
    db.session.execute(
        db.update(ThreadMember)
        .where(ThreadMember.thread_id == thread_id, ThreadMember.member_id == member_id)
        .values(**values)
    )
    # The member's other open pages redraw the row and the badges.
    events.record(member_id, events.THREAD_CHANGED, thread_id=thread_id)
    db.session.commit()
    return view


def set_archived(member_id: int, thread_id: int, archived: bool) -> threads.ThreadView:
    """Archive (out of the main list until a new message arrives) or bring back."""
    return _update_side(member_id, thread_id, archived=archived)


def set_muted(member_id: int, thread_id: int, muted: bool) -> threads.ThreadView:
    """A muted thread sends no email and does not count on the badge; it still updates."""
    return _update_side(member_id, thread_id, muted=muted)


def archived_count(member_id: int) -> int:
    """Threads the member archived and can still see (for an empty list to point at)."""
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(ThreadMember)
        .where(
            ThreadMember.member_id == member_id,
            ThreadMember.archived.is_(True),
            # Not `other_id NOT IN (...)` alone: a group's other_id is NULL, and NULL NOT IN
            # a non-empty list is NULL — a member who blocked anyone would lose their groups.
            messaging.not_hidden(member_id),
        )
    )


def mark_unread(member_id: int, thread_id: int) -> threads.ThreadView:
    """The thread counts as unread again from its newest message (the member's newest:
    a former group member's ends where they left)."""
    view = threads.get_thread_for(member_id, thread_id)
    newest = view.membership.last_message_id or None
    if newest is None:
        return view
    before_newest = db.session.scalar(
        db.select(db.func.max(Message.id)).where(
            Message.thread_id == thread_id, Message.id < newest
        )
    )
    return _update_side(member_id, thread_id, view, last_read_message_id=before_newest or 0)


# ---------------------------------------------------------------- labels


def labels(member_id: int) -> list[Label]:
    """The member's labels, by name."""
    return list(
        db.session.scalars(
            db.select(Label).where(Label.member_id == member_id).order_by(Label.name_key)
        )
    )


def labels_query(member_id):
    """The member's labels as one JSON column (`member_id` may be a bound parameter), for
    a page that asks for them with what it reads anyway; `labels_from` reads it back."""
    return json_rows(
        db.select(
            Label.id.label("id"), Label.name.label("name"), Label.name_key.label("name_key")
        ).where(Label.member_id == member_id),
        order_by=(Label.name_key, Label.id),
    )


def labels_from(member_id: int, value) -> list[Label]:
    """The member's labels, by name, from a `labels_query` column (not in the session:
    for showing)."""
    found = value or []
    return [
        Label(id=row["id"], member_id=member_id, name=row["name"], name_key=row["name_key"])
        for row in found
    ]


def labels_for_thread(member_id: int, thread_id: int) -> tuple[list[Label], list[Label]]:
    """(all the member's labels, those on this thread), in one query."""
    rows = db.session.execute(
        db.select(Label, ThreadLabel.thread_id)
        .outerjoin(
            ThreadLabel, (ThreadLabel.label_id == Label.id) & (ThreadLabel.thread_id == thread_id)
        )
        .where(Label.member_id == member_id)
        .order_by(Label.name_key)
    ).all()
    return [label for label, _ in rows], [label for label, on in rows if on is not None]


def get_label(member_id: int, label_id: int) -> Label:
    label = db.session.get(Label, label_id)
    if label is None or label.member_id != member_id:
        raise NotFound("This label does not exist.")
    return label


def label_named(member_id: int, name: str) -> Label:
    """The member's label of this name (in any case); NotFound for anyone else's."""
    label = db.session.scalar(
        db.select(Label).where(Label.member_id == member_id, Label.name_key == _name_key(name))
    )
    if label is None:
        raise NotFound("This label does not exist.")
    return label


def _name_key(name: str) -> str:
    return " ".join((name or "").split()).casefold()


def _clean_name(member_id: int, name: str | None, *, except_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("Give the label a name.", field="name")
    if len(name) > LABEL_MAX:
        raise ValidationFailed(f"A label name can be at most {LABEL_MAX} characters.", field="name")
    clash = db.session.scalar(
        db.select(Label.id).where(Label.member_id == member_id, Label.name_key == _name_key(name))
    )
    if clash is not None and clash != except_id:
        raise ValidationFailed(f"You already have a label called “{name}”.", field="name")
    return name


def create_label(member_id: int, name: str | None) -> Label:
    """A new label. The member's lock comes before the name and the count are checked,
    so overlapping creates neither pass the cap together nor clash on a name."""
    atomic.lock_members(member_id)
    name = _clean_name(member_id, name)
    count = db.session.scalar(
        db.select(db.func.count()).select_from(Label).where(Label.member_id == member_id)
    )
    if count >= LABELS_PER_MEMBER:
        raise ValidationFailed(
            f"You can have at most {LABELS_PER_MEMBER} labels. Delete one you no longer use.",
            field="name",
        )
    label = Label(member_id=member_id, name=name, name_key=_name_key(name))
    db.session.add(label)
    db.session.commit()
    return label


def rename_label(member_id: int, label_id: int, name: str | None) -> Label:
    atomic.lock_members(member_id)  # as create_label: names checked one rename at a time
    label = get_label(member_id, label_id)
    name = _clean_name(member_id, name, except_id=label.id)
    label.name, label.name_key = name, _name_key(name)
    db.session.commit()
    return label


def delete_label(member_id: int, label_id: int) -> str:
    """Deletes the label; its threads stay where they are. Returns the name it had.

    Under the member's lock: a delete clicked twice finds the label gone (NotFound).
    """
    atomic.lock_members(member_id)
    label = get_label(member_id, label_id)
    name = label.name
    db.session.execute(db.delete(ThreadLabel).where(ThreadLabel.label_id == label.id))
    db.session.delete(label)
    db.session.commit()
    return name


def set_thread_labels(member_id: int, thread_id: int, label_ids: Iterable[int]) -> list[Label]:
    """File the thread under exactly these labels of the member's (others are ignored).

    Under the member's lock: two overlapping saves apply one after the other.
    """
    threads.get_thread_for(member_id, thread_id)
    atomic.lock_members(member_id)
    own = {label.id: label for label in labels(member_id)}
    wanted = {label_id for label_id in label_ids if label_id in own}
    current = set(
        db.session.scalars(
            db.select(ThreadLabel.label_id)
            .join(Label, Label.id == ThreadLabel.label_id)
            .where(ThreadLabel.thread_id == thread_id, Label.member_id == member_id)
        )
    )
    if current - wanted:
        db.session.execute(
            db.delete(ThreadLabel).where(
                ThreadLabel.thread_id == thread_id, ThreadLabel.label_id.in_(current - wanted)
            )
        )
    db.session.add_all(
        ThreadLabel(label_id=label_id, thread_id=thread_id) for label_id in wanted - current
    )
    events.record(member_id, events.THREAD_CHANGED, thread_id=thread_id)
    db.session.commit()
    return sorted((own[i] for i in wanted), key=lambda label: label.name_key)
