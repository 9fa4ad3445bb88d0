"""Premium and InMail credits, recorded as a billing system would.

The plan is a `subscription` row; every credit movement is a `credit_ledger` row and
the balance is their sum, never a number kept on the side. Premium grants 15 credits a
month on upgrade and at each renewal; unused credits roll over up to 45.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..extensions import db
from ..models import (
    PLAN_FREE,
    PLAN_PREMIUM,
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_ENDED,
    CreditEntry,
    Member,
    Subscription,
    utcnow,
)
from . import atomic
from .errors import Conflict, NotFound

MONTHLY_ALLOWANCE = 15
ROLLOVER_CAP = 45
PERIOD = timedelta(days=30)

ALLOWANCE = "allowance"
SPEND = "inmail"
REFUND = "refund"

# What each ledger reason means to the member, in the credit history.
REASON_LABELS = {
    ALLOWANCE: "Monthly allowance",
    SPEND: "InMail sent",
    REFUND: "Refund: InMail answered",
}


def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, reason)


def balance(member_id: int) -> int:
    """Credits left: the sum of the member's ledger."""
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(CreditEntry.delta), 0)).where(
            CreditEntry.member_id == member_id
        )
    )


def subscription_of(member_id: int) -> Subscription | None:
    return db.session.scalar(db.select(Subscription).where(Subscription.member_id == member_id))


def _grant(member_id: int, period_start: datetime) -> None:
    """The allowance of the period starting at `period_start`, up to the rollover cap
    (the caller holds `lock`). The ledger's unique (member, period) index makes a second
    allowance for the same period impossible, whatever the caller does."""
    grant = min(MONTHLY_ALLOWANCE, ROLLOVER_CAP - balance(member_id))
    if grant > 0:
        db.session.add(
            CreditEntry(member_id=member_id, delta=grant, reason=ALLOWANCE, created_at=period_start)
        )
        db.session.flush()


def lock(member_id: int) -> Subscription | None:
    """Serialise this member's plan and credit movements until the transaction ends (the
    member's row lock), so that the subscription and the balance read after it are the
    truth. Returns the subscription as it now is."""
    atomic.lock_members(member_id)
    return db.session.scalar(
        db.select(Subscription)
        .where(Subscription.member_id == member_id)
        .execution_options(populate_existing=True)
    )


def _is_due(subscription: Subscription | None, now: datetime) -> bool:
    return (
        subscription is not None
        and subscription.renews_at <= now
        and subscription.status != SUBSCRIPTION_ENDED
    )


def _apply_renewals(member_id: int, subscription: Subscription, now: datetime) -> None:
    """Every renewal (or the end of a canceled plan) whose time has come; the caller
    holds `lock`, and each period moves `renews_at` on, so a renewal applies once."""
    if not _is_due(subscription, now):
        return
    if subscription.status == SUBSCRIPTION_CANCELED:
        subscription.status = SUBSCRIPTION_ENDED
        db.session.get(Member, member_id).plan = PLAN_FREE
        return
    while subscription.renews_at <= now:
        _grant(member_id, subscription.renews_at)
        subscription.renews_at += PERIOD


def start_premium(member_id: int, now: datetime | None = None) -> Subscription:
    """Upgrade: Premium now, renewing every 30 days, with this month's credits.

    Raises Conflict when the member already has an active plan (also when a second
    start overlaps the first). Restarting a canceled plan before it ends keeps its
    period (no second allowance).
    """
    now = now or utcnow()
    subscription = lock(member_id)
    if subscription is not None:
        _apply_renewals(member_id, subscription, now)
    if subscription is not None and subscription.status == SUBSCRIPTION_ACTIVE:
        db.session.commit()
        raise Conflict("You already have Premium.")
    if subscription is not None and subscription.status == SUBSCRIPTION_CANCELED:
        subscription.status, subscription.canceled_at = SUBSCRIPTION_ACTIVE, None
    else:
        if subscription is None:
            atomic.insert_ignoring_conflict(
                Subscription,
                {
                    "member_id": member_id,
                    "status": SUBSCRIPTION_ACTIVE,
                    "started_at": now,
                    "renews_at": now + PERIOD,
                },
                ["member_id"],
            )
            subscription = subscription_of(member_id)
        else:
            subscription.status, subscription.started_at = SUBSCRIPTION_ACTIVE, now
            subscription.renews_at, subscription.canceled_at = now + PERIOD, None
        db.session.flush()
        _grant(member_id, now)
    db.session.get(Member, member_id).plan = PLAN_PREMIUM
    db.session.commit()
    return subscription


def cancel_premium(member_id: int, now: datetime | None = None) -> Subscription:
    """Cancel: Premium lasts until the end of the paid period, then ends.

    Raises NotFound when there is no plan, Conflict when it is already canceled (a
    second cancel, or one that overlapped the first).
    """
    now = now or utcnow()
    subscription = lock(member_id)
    if subscription is not None:
        _apply_renewals(member_id, subscription, now)
    if subscription is not None and subscription.status == SUBSCRIPTION_CANCELED:
        db.session.commit()
        raise Conflict(
            f"Premium is already canceled. It stays on until {subscription.renews_at:%b %-d, %Y}."
        )
    if subscription is None or subscription.status != SUBSCRIPTION_ACTIVE:
        db.session.commit()
        raise NotFound("You don't have an active Premium plan.")
    subscription.status, subscription.canceled_at = SUBSCRIPTION_CANCELED, now
    db.session.commit()
    return subscription


def refresh(member_id: int, now: datetime | None = None) -> bool:
    """Apply every renewal (or the end of a canceled plan) whose time has come.

    Called lazily before any use of the plan (any page may call it, several at once),
    and by `flask renew-subscriptions`. Only a plan that looks due takes the lock, and
    it is looked at again under the lock, so overlapping calls renew once.
    Returns True when something changed.
    """
    now = now or utcnow()
    if not _is_due(subscription_of(member_id), now):
        return False
    subscription = lock(member_id)
    changed = _is_due(subscription, now)
    if changed:
        _apply_renewals(member_id, subscription, now)
    db.session.commit()
    return changed


def renew_all(now: datetime | None = None) -> int:
    """Renew every subscription that is due. Returns how many changed."""
    now = now or utcnow()
    due = db.session.scalars(
        db.select(Subscription.member_id).where(
            Subscription.renews_at <= now, Subscription.status != SUBSCRIPTION_ENDED
        )
    ).all()
    return sum(refresh(member_id, now) for member_id in due)


def spend(member_id: int, ref_id: int | None, now: datetime | None = None) -> CreditEntry:
    """Record one credit spent (the caller holds `lock` and has checked the balance)."""
    return _move(member_id, -1, SPEND, ref_id, now)


def refund(member_id: int, ref_id: int, now: datetime | None = None) -> CreditEntry:
    """Give back the credit of InMail `ref_id` (the caller holds `lock`); the ledger's
    unique index refuses a second refund of the same InMail."""
    return _move(member_id, 1, REFUND, ref_id, now)


def _move(member_id: int, delta: int, reason: str, ref_id, now) -> CreditEntry:
    entry = CreditEntry(
        member_id=member_id, delta=delta, reason=reason, ref_id=ref_id, created_at=now or utcnow()
    )
    db.session.add(entry)
    db.session.flush()
    return entry


@dataclass(frozen=True)
class Account:
    plan: str
    subscription: Subscription | None
    credits: int
    ledger: list[CreditEntry]


def account(member_id: int, now: datetime | None = None) -> Account:
    """What the Premium page shows: plan, renewal, credits and their history."""
    refresh(member_id, now)
    member = db.session.get(Member, member_id)
    ledger = list(
        db.session.scalars(
            db.select(CreditEntry)
            .where(CreditEntry.member_id == member_id)
            .order_by(CreditEntry.id.desc())
            .limit(50)
        )
    )
    return Account(member.plan, subscription_of(member_id), balance(member_id), ledger)
