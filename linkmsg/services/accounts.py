"""Accounts and profiles: registration, authentication, handles, the full-profile rule."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Member
from ..storage import get_storage
from ..text import join_and, normalise_newlines
from . import attachments
from .errors import AccountSuspended, EmailTaken, InvalidCredentials, ValidationFailed
from .passwords import check_strength, hash_password, matches, matches_nobody

NAME_MAX = 100
HEADLINE_MAX = 220
LOCATION_MAX = 100
ABOUT_MAX = 2600

# The three fields SPEC section 1 requires before a member may message or be messaged.
FULL_PROFILE_FIELDS = (("name", "name"), ("headline", "headline"), ("location", "location"))

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def _clean_line(value: str | None) -> str:
    """One line of text: trimmed, inner runs of whitespace collapsed, controls removed."""
    value = "".join(ch for ch in (value or "") if unicodedata.category(ch)[0] != "C" or ch == " ")
    return " ".join(value.split())


def _clean_text(value: str | None) -> str:
    """Free text: trimmed, newlines kept, other control characters removed."""
    value = normalise_newlines(value)
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return value.strip()


def _require_length(value: str, field: str, label: str, maximum: int, *, required: bool) -> None:
    if required and not value:
        raise ValidationFailed(f"Enter your {label}.", field=field)
    if len(value) > maximum:
        raise ValidationFailed(f"Your {label} can be at most {maximum:,} characters.", field=field)


def slugify(name: str) -> str:
    """A URL-safe base for a handle: ASCII letters, digits and single hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:40].strip("-") or "member"


def _handle_taken(handle: str) -> bool:
    return db.session.scalar(db.select(Member.id).where(Member.handle == handle)) is not None


def _unique_handle(name: str) -> str:
    base = slugify(name)
    if not _handle_taken(base):
        return base
    for _ in range(20):
        candidate = f"{base}-{secrets.token_hex(3)}"
        if not _handle_taken(candidate):
            return candidate
    return f"{base}-{secrets.token_hex(8)}"


def register(email: str, password: str, name: str) -> Member:
    """Create a member with a unique handle and a hashed password.

    Raises ValidationFailed for bad input (a guessable password included) and EmailTaken
    when the email is in use.
    """
    email = normalize_email(email)
    name = _clean_line(name)
    if not email or len(email) > 254 or not _EMAIL_RE.match(email):
        raise ValidationFailed("Enter a valid email address.", field="email")
    check_strength(password, email=email, name=name, field="password")
    _require_length(name, "name", "name", NAME_MAX, required=True)
    # Hashed before the email is looked up: a taken address costs the same time as a
    # free one, so the answer's timing does not tell which addresses have accounts.
    password_hash = hash_password(password)
    if db.session.scalar(db.select(Member.id).where(Member.email == email)) is not None:
        raise EmailTaken()

    # Two sign-ups can race for the same email or handle: the unique constraints decide,
    # and a lost handle race simply tries another suffix.
    for _ in range(3):
        member = Member(
            email=email,
            password_hash=password_hash,
            name=name,
            handle=_unique_handle(name),
        )
        db.session.add(member)
        try:
            db.session.commit()
            return member
        except IntegrityError:
            db.session.rollback()
            if db.session.scalar(db.select(Member.id).where(Member.email == email)) is not None:
                raise EmailTaken() from None
    raise ValidationFailed("Could not create the account; please try again.")


def authenticate(email: str, password: str) -> Member:
    """Return the member with this email and password.

    Raises InvalidCredentials whether the email is unknown or the password wrong, and
    AccountSuspended for the right password of a suspended member.
    """
    member = db.session.scalar(db.select(Member).where(Member.email == normalize_email(email)))
    if member is None:
        matches_nobody(password)
        raise InvalidCredentials()
    if not matches(member.password_hash, password):
        raise InvalidCredentials()
    if member.suspended_at is not None:
        raise AccountSuspended()
    return member


def get_member(member_id: int) -> Member | None:
    return db.session.get(Member, member_id)


@dataclass(frozen=True)
class ProfileInput:
    name: str
    headline: str
    location: str
    about: str
    avatar: object | None = None  # an attachments.Upload with a new picture
    remove_avatar: bool = False


def update_profile(member_id: int, data: ProfileInput) -> Member:
    """Save the profile fields (and picture) of a member.

    Raises ValidationFailed (with the field) when a value is missing or too long, or the
    picture is not one; nothing is saved then.
    """
    name = _clean_line(data.name)
    headline = _clean_line(data.headline)
    location = _clean_line(data.location)
    about = _clean_text(data.about)
    _require_length(name, "name", "name", NAME_MAX, required=True)
    _require_length(headline, "headline", "headline", HEADLINE_MAX, required=False)
    _require_length(location, "location", "location", LOCATION_MAX, required=False)
    _require_length(about, "about", "about section", ABOUT_MAX, required=False)
    member = db.session.get(Member, member_id)
    old_avatar = member.avatar_key
    if data.avatar is not None:
        member.avatar_key = attachments.store_avatar(data.avatar)  # raises before anything is saved
    elif data.remove_avatar:
        member.avatar_key = None
    member.name, member.headline, member.location, member.about = name, headline, location, about
    db.session.commit()
    if old_avatar and old_avatar != member.avatar_key:
        get_storage().delete(old_avatar)
    return member


def missing_profile_fields(member: Member) -> list[str]:
    """The fields a member must still fill in for a full profile, in form order."""
    return [
        label for attr, label in FULL_PROFILE_FIELDS if not (getattr(member, attr) or "").strip()
    ]


def has_full_profile(member: Member) -> bool:
    return not missing_profile_fields(member)


def describe_missing(member: Member) -> str | None:
    """The sentence that tells a member what to fill in, or None for a full profile."""
    missing = missing_profile_fields(member)
    if not missing:
        return None
    fields = join_and(missing)
    return (
        f"Add your {fields} to complete your profile; only members with a full profile can message."
    )
