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
from .errors import Conflict, NotFound

MONTHLY_ALLOWANCE = 15
ROLLOVER_CAP = 45
PERIOD = timedelta(days=30)

ALLOWANCE = "allowance"
SPEND = "inmail"
REFUND = "refund"


def balance(member_id: int) -> int:
    """Credits left: the sum of the member's ledger."""
    return db.session.scalar(
        db.select(db.func.coalesce(db.func.sum(CreditEntry.delta), 0)).where(
            CreditEntry.member_id == member_id
        )
    )


def subscription_of(member_id: int) -> Subscription | None:
    return db.session.scalar(db.select(Subscription).where(Subscription.member_id == member_id))


def _grant(member_id: int, now: datetime) -> None:
    grant = min(MONTHLY_ALLOWANCE, ROLLOVER_CAP - balance(member_id))
    if grant > 0:
        db.session.add(
            CreditEntry(member_id=member_id, delta=grant, reason=ALLOWANCE, created_at=now)
        )
        db.session.flush()


def start_premium(member_id: int, now: datetime | None = None) -> Subscription:
    """Upgrade: Premium now, renewing every 30 days, with this month's credits.

    Raises Conflict when the member already has an active plan. Restarting a canceled
    plan before it ends keeps its period (no second allowance).
    """
    now = now or utcnow()
    refresh(member_id, now)
    member = db.session.get(Member, member_id)
    subscription = subscription_of(member_id)
    if subscription is not None and subscription.status == SUBSCRIPTION_ACTIVE:
        raise Conflict("You already have Premium.")
    if subscription is not None and subscription.status == SUBSCRIPTION_CANCELED:
        subscription.status, subscription.canceled_at = SUBSCRIPTION_ACTIVE, None
    else:
        if subscription is None:
            subscription = Subscription(member_id=member_id, started_at=now, renews_at=now + PERIOD)
            db.session.add(subscription)
        else:
            subscription.status, subscription.started_at = SUBSCRIPTION_ACTIVE, now
            subscription.renews_at, subscription.canceled_at = now + PERIOD, None
        db.session.flush()
        _grant(member_id, now)
    member.plan = PLAN_PREMIUM
    db.session.commit()
    return subscription


def cancel_premium(member_id: int, now: datetime | None = None) -> Subscription:
    """Cancel: Premium lasts until the end of the paid period, then ends.

    Raises NotFound when there is no active plan.
    """
    now = now or utcnow()
    refresh(member_id, now)
    subscription = subscription_of(member_id)
    if subscription is None or subscription.status != SUBSCRIPTION_ACTIVE:
        raise NotFound("You don't have an active Premium plan.")
    subscription.status, subscription.canceled_at = SUBSCRIPTION_CANCELED, now
    db.session.commit()
    return subscription


def refresh(member_id: int, now: datetime | None = None) -> bool:
    """Apply every renewal (or the end of a canceled plan) whose time has come.

    Called lazily before any use of the plan, and by `flask renew-subscriptions`.
    Returns True when something changed.
    """
    now = now or utcnow()
    subscription = subscription_of(member_id)
    if (
        subscription is None
        or subscription.renews_at > now
        or subscription.status == SUBSCRIPTION_ENDED
    ):
        return False
    member = db.session.get(Member, member_id)
    if subscription.status == SUBSCRIPTION_CANCELED:
        subscription.status = SUBSCRIPTION_ENDED
        member.plan = PLAN_FREE
    else:
        while subscription.renews_at <= now:
            _grant(member_id, subscription.renews_at)
            subscription.renews_at += PERIOD
    db.session.commit()
    return True


def renew_all(now: datetime | None = None) -> int:
    """Renew every subscription that is due. Returns how many changed."""
    now = now or utcnow()
    due = db.session.scalars(
        db.select(Subscription.member_id).where(
            Subscription.renews_at <= now, Subscription.status != SUBSCRIPTION_ENDED
        )
    ).all()
    return sum(refresh(member_id, now) for member_id in due)


def lock(member_id: int) -> None:
    """Serialise this member's credit movements until the transaction ends (a write to
    their subscription row: a row lock on PostgreSQL, the write lock on SQLite), so a
    balance read after it is the truth."""
    db.session.execute(
        db.update(Subscription)
        .where(Subscription.member_id == member_id)
        .values(version=Subscription.version + 1)
    )


def spend(member_id: int, ref_id: int | None, now: datetime | None = None) -> CreditEntry:
    """Record one credit spent (the caller holds `lock` and has checked the balance)."""
    entry = CreditEntry(
        member_id=member_id, delta=-1, reason=SPEND, ref_id=ref_id, created_at=now or utcnow()
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def refund(member_id: int, ref_id: int, now: datetime | None = None) -> CreditEntry:
    entry = CreditEntry(
        member_id=member_id, delta=1, reason=REFUND, ref_id=ref_id, created_at=now or utcnow()
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
