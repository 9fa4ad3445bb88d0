"""Tables, indexes and constraints. Rules that span rows live in `linkmsg.services`."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every timestamp is stored as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


PLAN_FREE = "free"
PLAN_PREMIUM = "premium"
ROLE_MEMBER = "member"
ROLE_ADMIN = "admin"


class Member(UserMixin, db.Model):
    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint("plan IN ('free', 'premium')", name="plan_known"),
        CheckConstraint("role IN ('member', 'admin')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    headline: Mapped[str] = mapped_column(String(220), default="")
    location: Mapped[str] = mapped_column(String(100), default="")
    about: Mapped[str] = mapped_column(Text, default="")
    avatar_key: Mapped[str | None] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(String(16), default=PLAN_FREE)
    role: Mapped[str] = mapped_column(String(16), default=ROLE_MEMBER)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime)
    show_active: Mapped[bool] = mapped_column(default=True)
    accepts_inmail: Mapped[bool] = mapped_column(default=True)
    email_notifications: Mapped[bool] = mapped_column(default=True)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Part of the login cookie: changing it ends every open session of the member.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login: suspended members cannot be logged in
        return self.suspended_at is None

    @property
    def is_premium(self) -> bool:
        return self.plan == PLAN_PREMIUM

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.split() if p[:1].isalnum()]
        letters = "".join(p[0] for p in parts[:1] + parts[1:][-1:])
        return (letters or self.handle[:1]).upper()

    @property
    def avatar_hue(self) -> int:
        # A stable colour per member, spread around the wheel.
        return (self.id or 0) * 137 % 360

    def __repr__(self) -> str:
        return f"<Member {self.handle}>"
