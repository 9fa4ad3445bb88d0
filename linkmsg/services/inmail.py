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
from . import accounts, attachments, billing, events, network, notifications, safety
from .errors import Conflict, Forbidden, NotFound, ValidationFailed

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


def waiting_for_answer(sender: Member, recipient: Member) -> Conflict | None:
    """Why `sender` may not InMail `recipient` again yet, if an earlier InMail is unanswered."""
    if pending(sender.id, recipient.id) is None:
        return None
    return Conflict(
        f"Your InMail to {recipient.name} is waiting for an answer. "
        "You can send another once they reply or decline."
    )


def check(sender: Member, recipient: Member, now: datetime | None = None) -> None:
    """Raises the reason `sender` may not InMail `recipient` now (InMailRefused, Conflict,
    NotFound for a recipient who blocked the sender)."""
    from .messaging import basic_refusal

    billing.refresh(sender.id, now)
    if safety.has_blocked(recipient.id, sender.id):
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
    if network.are_connected(sender.id, recipient.id):
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
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
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
    from . import messaging

    key = messaging._key(idempotency_key)
    earlier = messaging._existing_message(sender.id, key)
    if earlier is not None:
        found = db.session.scalar(db.select(InMail).where(InMail.message_id == earlier.id))
        return SentInMail(found, earlier.thread_id, False)
    check(sender, recipient, now)
    subject, body = clean(subject, body, has_files=any(u.filename for u in uploads))
    files = attachments.prepare(list(uploads))
    try:
        billing.lock(sender.id)  # from here on, this member's credits are ours alone
        if billing.balance(sender.id) < 1:
            raise _no_credits(sender.id)
        thread = messaging._get_or_create_thread(sender.id, recipient.id, THREAD_INMAIL)
        message, created = messaging._append(thread, sender.id, body, key, files)
        if not created:
            found = db.session.scalar(db.select(InMail).where(InMail.message_id == message.id))
            return SentInMail(found, thread.id, False)
        item = InMail(
            thread_id=thread.id,
            message_id=message.id,
            sender_id=sender.id,
            recipient_id=recipient.id,
            subject=subject,
            template=template if template in TEMPLATES else None,
            created_at=now or utcnow(),
        )
        db.session.add(item)
        db.session.flush()
        item.credit_entry_id = billing.spend(sender.id, item.id, now).id
        notifications.notify(recipient.id, INMAIL_RECEIVED, actor_id=sender.id, ref_id=item.id)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        attachments.discard(files)
        raise Conflict(
            f"Your InMail to {recipient.name} is waiting for an answer. "
            "You can send another once they reply or decline."
        ) from None
    except BaseException:
        db.session.rollback()
        attachments.discard(files)
        raise
    return SentInMail(item, item.thread_id, True)


def _answer(item: InMail, status: str, now: datetime) -> None:
    item.status, item.responded_at = status, now
    if item.opened_at is None:
        item.opened_at = now
    if now - item.created_at <= REFUND_WINDOW and item.refund_entry_id is None:
        billing.lock(item.sender_id)
        item.refund_entry_id = billing.refund(item.sender_id, item.id, now).id


def answered_by_reply(thread_id: int, replier_id: int, now: datetime | None = None) -> None:
    """A reply in an InMail thread answers the InMails waiting for the replier."""
    for item in db.session.scalars(
        db.select(InMail).where(
            InMail.thread_id == thread_id,
            InMail.recipient_id == replier_id,
            InMail.status == INMAIL_SENT,
        )
    ):
        _answer(item, INMAIL_REPLIED, now or utcnow())


def decline(member_id: int, inmail_id: int, now: datetime | None = None) -> InMail:
    """The recipient declines; the sender is told, and refunded within 90 days.

    Raises NotFound unless it is an unanswered InMail to this member.
    """
    item = db.session.get(InMail, inmail_id)
    if item is None or item.recipient_id != member_id or item.status != INMAIL_SENT:
        raise NotFound("This InMail is no longer waiting for an answer.")
    _answer(item, INMAIL_DECLINED, now or utcnow())
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


def reply_permission(view, member: Member):
    """Who may write in an InMail thread: the recipient of an unanswered InMail (to
    reply), and both members once any InMail in it has been replied to."""
    from .messaging import ALLOWED, Permission, basic_refusal

    refusal = basic_refusal(member, view.other)
    if refusal is not None:
        return refusal
    items = list(
        db.session.scalars(
            db.select(InMail).where(InMail.thread_id == view.thread.id).order_by(InMail.id)
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


def for_messages(message_ids: list[int]) -> dict[int, InMail]:
    """The InMail behind each of these messages, in one query."""
    if not message_ids:
        return {}
    return {
        item.message_id: item
        for item in db.session.scalars(db.select(InMail).where(InMail.message_id.in_(message_ids)))
    }


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


def get_message_inmail(message: Message) -> InMail | None:
    return db.session.scalar(db.select(InMail).where(InMail.message_id == message.id))


def config_templates():
    return [(name, label) for name, (label, _, _) in TEMPLATES.items()]
