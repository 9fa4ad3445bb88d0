"""InMail: Premium members write to members outside their first degree, one message at
a time, for one credit, refunded when the recipient answers (replies or declines)
within 90 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    INMAIL_DECLINED,
    INMAIL_REPLIED,
    INMAIL_SENT,
    THREAD_INMAIL,
    InMail,
    Member,
    Message,
    utcnow,
)
from ..text import is_blank, normalise_newlines
from . import (
    accounts,
    atomic,
    attachments,
    billing,
    blocks,
    degrees,
    events,
    notifications,
    threads,
)
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .permission import ALLOWED, Permission, basic_refusal
from .threads import ThreadView

SUBJECT_MAX = 200
BODY_MAX = 1900
REFUND_WINDOW = timedelta(days=90)
INMAIL_RECEIVED = "inmail_received"
INMAIL_DECLINED_NOTICE = "inmail_declined"

# name -> (label, subject, body); {name} and {me} are filled in.
TEMPLATES = {
    "introduction": (
        "Introduction",
        "Introduction from {me}",
        "Hi {first},\n\nI came across your profile and would love to introduce myself. "
        "I'm {me}, {headline}.\n\nWould you be open to a short conversation?\n\nBest,\n{me}",
    ),
    "job": (
        "Job opportunity",
        "An opportunity that fits your background",
        "Hi {first},\n\nI'm {me}, {headline}. We have an opening that matches your experience, "
        "and I'd like to tell you more about it.\n\nIf you're interested, reply here and we can "
        "find a time to talk.\n\nBest,\n{me}",
    ),
    "networking": (
        "Networking",
        "Let's connect",
        "Hi {first},\n\nWe work in the same field and I'd value hearing your perspective. "
        "Would you be up for exchanging notes?\n\nThanks,\n{me}",
    ),
}


class InMailRefused(Forbidden):
    """Sending is not possible; `remedy` names the way forward (premium, credits, message)."""

    def __init__(self, message: str, remedy: str | None = None):
        super().__init__(message)
        self.remedy = remedy


def prefill(template: str | None, sender: Member, recipient: Member) -> tuple[str, str]:
    if template not in TEMPLATES:
        return "", ""
    _, subject, body = TEMPLATES[template]
    values = {
        "me": sender.name,
        "first": recipient.name.split()[0] if recipient.name else recipient.name,
        "headline": sender.headline or "on LinkMsg",
    }
    return subject.format(**values), body.format(**values)


def pending(sender_id: int, recipient_id: int) -> InMail | None:
    """The sender's unanswered InMail to this recipient, if any."""
    return db.session.scalar(
        db.select(InMail).where(
            InMail.sender_id == sender_id,
            InMail.recipient_id == recipient_id,
            InMail.status == INMAIL_SENT,
        )
    )


def waiting_for_answer(
    sender: Member, recipient: Member, *, unanswered: bool | None = None
) -> Conflict | None:
    """Why `sender` may not InMail `recipient` again yet, if an earlier InMail is
    unanswered (`unanswered`: whether one is, when the caller has read it already)."""
    if unanswered is None:
        unanswered = pending(sender.id, recipient.id) is not None
    if not unanswered:
        return None
    return Conflict(
        f"Your InMail to {recipient.name} is waiting for an answer. "
        "You can send another once they reply or decline."
    )


def check(sender: Member, recipient: Member, now: datetime | None = None) -> None:
    """Raises the reason `sender` may not InMail `recipient` now (InMailRefused, Conflict,
    NotFound for a recipient who blocked the sender)."""
    billing.refresh(sender.id, now)
    if blocks.has_blocked(recipient.id, sender.id):
        raise NotFound("This member does not exist.")
    refusal = basic_refusal(sender, recipient, verb="send InMail to")
    if refusal is not None:
        raise InMailRefused(refusal.reason, refusal.remedy)
    if not sender.is_premium:
        raise InMailRefused(
            f"InMail is part of Premium. Upgrade to write to {recipient.name} "
            "without a connection.",
            "premium",
        )
    if degrees.are_connected(sender.id, recipient.id):
        raise InMailRefused(
            f"You and {recipient.name} are connected: send a message instead.", "message"
        )
    if not accounts.has_full_profile(recipient):
        raise InMailRefused(
            f"{recipient.name} hasn't completed their profile yet, so they can't receive InMail."
        )
    if not recipient.accepts_inmail:
        raise InMailRefused(f"{recipient.name} doesn't accept InMail.")
    waiting = waiting_for_answer(sender, recipient)
    if waiting is not None:
        raise waiting
    if billing.balance(sender.id) < 1:
        raise _no_credits(sender.id)


def _no_credits(member_id: int) -> InMailRefused:
    subscription = billing.subscription_of(member_id)
    when = f" More arrive on {subscription.renews_at:%b %-d}." if subscription else ""
    return InMailRefused(f"You have no InMail credits left.{when}", "credits")


def clean(subject: str | None, body: str | None, *, has_files: bool) -> tuple[str, str]:
    """Raises ValidationFailed naming every faulty field, not only the first."""
    subject = " ".join((subject or "").split())
    body = normalise_newlines(body).strip()
    subject, body = ("" if is_blank(subject) else subject), ("" if is_blank(body) else body)
    problems = []
    if not subject:
        problems.append(ValidationFailed("Give your InMail a subject.", field="subject"))
    elif len(subject) > SUBJECT_MAX:
        problems.append(
            ValidationFailed(
                f"The subject can be at most {SUBJECT_MAX} characters.", field="subject"
            )
        )
    if not body and not has_files:
        problems.append(ValidationFailed("Write your InMail before sending.", field="body"))
    elif len(body) > BODY_MAX:
        problems.append(
            ValidationFailed(
                f"An InMail can be at most {BODY_MAX:,} characters (this one has {len(body):,}).",
                field="body",
            )
        )
    if problems:
        raise ValidationFailed.of(problems)
    return subject, body


@dataclass(frozen=True)
class SentInMail:
    inmail: InMail
    thread_id: int
    created: bool


def send(
    sender: Member,
    recipient: Member,
    subject: str,
    body: str,
    *,
    template: str | None = None,
    idempotency_key: str | None = None,
    uploads: Sequence[attachments.Upload] = (),
    now: datetime | None = None,
) -> SentInMail:
    """Send one InMail for one credit.

    Raises InMailRefused / Conflict / NotFound (see `check`) and ValidationFailed; nothing
    is saved or spent then. Two sends racing for the last credit spend it once.
    """

    def deliver(cleaned: tuple[str, str], key: str | None, files) -> Message | None:
        clean_subject, clean_body = cleaned
        # From here on this member's credits are ours alone (both members' locks, in
        # the order every transaction takes them).
        atomic.lock_members(sender.id, recipient.id)
        if billing.balance(sender.id) < 1:
            raise _no_credits(sender.id)
        thread = threads.get_or_create_thread(sender.id, recipient.id, THREAD_INMAIL)
        message = threads.append(thread, sender.id, clean_body, key, files)
        if message is None:
            return None
        item = InMail(
            thread_id=thread.id,
            message_id=message.id,
            sender_id=sender.id,
            recipient_id=recipient.id,
            subject=clean_subject,
            template=template if template in TEMPLATES else None,
            created_at=now or utcnow(),
        )
        db.session.add(item)
        db.session.flush()
        item.credit_entry_id = billing.spend(sender.id, item.id, now).id
        notifications.notify(recipient.id, INMAIL_RECEIVED, actor_id=sender.id, ref_id=item.id)
        return message

    try:
        posted = threads.post(
            sender.id,
            idempotency_key=idempotency_key,
            uploads=uploads,
            check=lambda: check(sender, recipient, now),
            clean=lambda has_files: clean(subject, body, has_files=has_files),
            deliver=deliver,
        )
    except IntegrityError:
        # uq_inmail_unanswered: an overlapping send to this member came first.
        raise Conflict(
            f"Your InMail to {recipient.name} is waiting for an answer. "
            "You can send another once they reply or decline."
        ) from None
    item = db.session.scalar(db.select(InMail).where(InMail.message_id == posted.message.id))
    return SentInMail(item, posted.message.thread_id, posted.created)


def _answer(inmail_id: int, status: str, now: datetime) -> InMail | None:
    """Answer the InMail if it is still waiting: one conditional UPDATE, so of any
    number of overlapping answers (declines, replies, both) exactly one changes it.
    The winner refunds the sender within 90 days. Returns the InMail for the winner,
    None for an answer that came too late. The caller holds both members' locks."""
    answered = db.session.execute(
        db.update(InMail)
        .where(InMail.id == inmail_id, InMail.status == INMAIL_SENT)
        .values(
            status=status,
            responded_at=now,
            opened_at=db.func.coalesce(InMail.opened_at, now),
        )
        .returning(InMail.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if answered is None:
        return None
    item = db.session.scalar(
        db.select(InMail).where(InMail.id == inmail_id).execution_options(populate_existing=True)
    )
    if now - item.created_at <= REFUND_WINDOW:
        item.refund_entry_id = billing.refund(item.sender_id, item.id, now).id
    db.session.flush()
    return item


def answered_by_reply(thread_id: int, replier_id: int, now: datetime | None = None) -> None:
    """A reply in an InMail thread answers the InMails waiting for the replier."""
    waiting = db.session.execute(
        db.select(InMail.id, InMail.sender_id).where(
            InMail.thread_id == thread_id,
            InMail.recipient_id == replier_id,
            InMail.status == INMAIL_SENT,
        )
    ).all()
    if not waiting:
        return
    atomic.lock_members(replier_id, *(sender_id for _, sender_id in waiting))
    for inmail_id, _ in waiting:
        _answer(inmail_id, INMAIL_REPLIED, now or utcnow())


def decline(member_id: int, inmail_id: int, now: datetime | None = None) -> InMail:
    """The recipient declines; the sender is told, and refunded within 90 days.

    Raises NotFound unless it is an InMail to this member, Conflict when it was already
    answered (a second click, or a reply or decline that overlapped this one): only the
    answer that changed it refunds and tells the sender.
    """
    item = db.session.get(InMail, inmail_id)
    if item is None or item.recipient_id != member_id:
        raise NotFound("This InMail is no longer waiting for an answer.")
    atomic.lock_members(member_id, item.sender_id)
    item = _answer(inmail_id, INMAIL_DECLINED, now or utcnow())
    if item is None:
        raise Conflict("This InMail was already answered.")
    notifications.notify(item.sender_id, INMAIL_DECLINED_NOTICE, actor_id=member_id, ref_id=item.id)
    # The sender's open thread shows the answer and the reply box closes for good.
    events.record(item.sender_id, events.INMAIL_ANSWERED, thread_id=item.thread_id)
    db.session.commit()
    return item


def mark_opened(thread_id: int, member_id: int, now: datetime | None = None) -> None:
    """The recipient opened the thread: their unopened InMails count as opened."""
    changed = db.session.execute(
        db.update(InMail)
        .where(
            InMail.thread_id == thread_id,
            InMail.recipient_id == member_id,
            InMail.opened_at.is_(None),
        )
        .values(opened_at=now or utcnow())
    ).rowcount
    if changed:
        db.session.commit()


@dataclass(frozen=True)
class _InMailState:
    status: str
    recipient_id: int


def reply_permission(view: ThreadView, member: Member) -> Permission:
    """Who may write in an InMail thread: the recipient of an unanswered InMail (to
    reply), and both members once any InMail in it has been replied to. From the view's
    facts when it was read with them (a page), else the InMails as they are now."""
    facts = view.facts_for(member.id)
    refusal = basic_refusal(member, view.other, blockers=facts.blockers if facts else None)
    if refusal is not None:
        return refusal
    if facts is not None:
        items = [_InMailState(status, to) for status, to in facts.inmails]
    else:
        items = list(
            db.session.scalars(
                db.select(InMail)
                .where(InMail.thread_id == view.thread.id)
                .order_by(InMail.id)
                .execution_options(populate_existing=True)  # as they are now, not as first read
            )
        )
    if any(item.status == INMAIL_REPLIED for item in items):
        return ALLOWED
    latest = items[-1] if items else None
    if latest is None:
        return Permission(False, "This conversation is closed.")
    if latest.status == INMAIL_SENT:
        if latest.recipient_id == member.id:
            return ALLOWED
        return Permission(
            False, f"Your InMail is waiting for {view.other.name} to reply or decline."
        )
    if latest.recipient_id == member.id:
        return Permission(False, "You declined this InMail.")
    return Permission(
        False,
        f"{view.other.name} declined your InMail politely. You can send another InMail later.",
        "inmail",
    )


@dataclass(frozen=True)
class Stats:
    sent: int
    opened: int
    responded: int

    @property
    def open_rate(self) -> float:
        return self.opened / self.sent if self.sent else 0.0

    @property
    def response_rate(self) -> float:
        return self.responded / self.sent if self.sent else 0.0


def premium_stats(member_id: int) -> Stats:
    """The member's InMail figures, a Premium feature. Raises InMailRefused (remedy
    "premium") for a member without Premium (after a lapsed plan is brought up to date)."""
    billing.refresh(member_id)
    member = db.session.get(Member, member_id)
    if not member.is_premium:
        raise InMailRefused("InMail stats are part of Premium.", "premium")
    return stats(member_id)


def stats(member_id: int) -> Stats:
    """The sender's InMail figures (ordinary messages have no such tracking)."""
    row = db.session.execute(
        db.select(
            db.func.count(InMail.id),
            db.func.count(InMail.opened_at),
            db.func.count(InMail.responded_at),
        ).where(InMail.sender_id == member_id)
    ).one()
    return Stats(*row)


def latest_sent_message(thread_id: int, sender_id: int) -> Message | None:
    """The message of the sender's latest InMail in this thread (its status shows there)."""
    return db.session.scalar(
        db.select(Message)
        .join(InMail, InMail.message_id == Message.id)
        .where(InMail.thread_id == thread_id, InMail.sender_id == sender_id)
        .order_by(InMail.id.desc())
        .limit(1)
    )


def config_templates():
    return [(name, label) for name, (label, _, _) in TEMPLATES.items()]
