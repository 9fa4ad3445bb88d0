"""Passwords: the strength rule, hashing, changing one, and resetting a forgotten one.

The rule is NIST's: at least 8 characters, any characters, no composition rules, and
nothing common or guessable — judged by zxcvbn (Dropbox's estimator, with its lists of
common passwords, names, words and keyboard patterns), fed the member's own name and
email so that a password built from them counts as guessable too.

A reset link's token is an HMAC, under SECRET_KEY, of the reset row's id and random
nonce and of the member's current password hash. The database keeps no token, so a
copy of it opens nothing; the link works once (the row is marked used) and dies with
any password change (the hash it was made from is gone).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from ..extensions import db
from ..models import Member, PasswordReset, utcnow
from . import outbox, sessions
from .errors import NotFound, ValidationFailed

PASSWORD_MIN = 8
PASSWORD_MAX = 256
# zxcvbn scores 0-4; 3 means "safely unguessable" (about 10^8 guesses or more).
MIN_SCORE = 3
# zxcvbn refuses longer input; a longer password is at least as strong as its start.
ESTIMATE_CHARS = 72
SITE_WORDS = ("linkmsg", "link", "msg", "message", "messaging", "inmail")
RESET_VALID_FOR = timedelta(hours=1)


def hash_password(password: str) -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    return _off_the_loop(generate_password_hash, password, method)


def matches(password_hash: str, password: str) -> bool:
    return _off_the_loop(check_password_hash, password_hash, password or "")


@functools.cache
def _dummy_hash(method: str) -> str:
    return _off_the_loop(generate_password_hash, secrets.token_hex(16), method)


def _off_the_loop(work, *args):
    """Run a password hash where it does not stop the server.

    A hash costs ~80 ms of CPU on purpose. Served by gevent workers, that would be 80 ms
    in which no other greenlet of the worker runs — every open event stream and page
    waits. scrypt and PBKDF2 run in OpenSSL with the GIL released, so under gevent the
    hash goes to the hub's thread pool and the greenlets go on meanwhile. Elsewhere
    (threads, the CLI, tests) it simply runs here.
    """
    if _gevent_patched():
        import gevent

        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return monkey.is_module_patched("threading")


def matches_nobody(password: str) -> None:
    """Check a password against a hash nobody has: an unknown email costs as much time
    as a wrong password, so the timing does not tell which emails have accounts."""
    matches(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)


def _personal_words(email: str, name: str) -> list[str]:
    local = (email or "").split("@")[0]
    words = [email, local, name, *re.split(r"[\W_]+", email or ""), *(name or "").split()]
    words += [re.sub(r"[\W_]+", "", local), "".join((name or "").split())]
    return [w.lower() for w in words if len(w) >= 2] + list(SITE_WORDS)


def _little_besides(password: str, words: list[str]) -> bool:
    """True when the password is the member's own words with a few characters around
    them (`dana.w@example`): zxcvbn scores the punctuation as brute force and is fooled."""
    rest = password.lower()
    for word in sorted(words, key=len, reverse=True):
        if len(word) >= 3:
            rest = rest.replace(word, "")
    return sum(ch.isalnum() for ch in rest) < 4


def check_strength(password: str, *, email: str = "", name: str = "", field: str) -> None:
    """Refuse a password that is too short, too long, common or guessable.

    Raises ValidationFailed (on `field`) with the reason a member can act on.
    """
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise ValidationFailed(
            f"Choose a password of at least {PASSWORD_MIN} characters.", field=field
        )
    if len(password) > PASSWORD_MAX:
        raise ValidationFailed(
            f"Your password can be at most {PASSWORD_MAX} characters.", field=field
        )
    words = _personal_words(email, name)
    estimate = zxcvbn(password[:ESTIMATE_CHARS], user_inputs=words)
    personal = any(
        match.get("dictionary_name") == "user_inputs" for match in estimate.get("sequence", [])
    )
    if estimate["score"] >= MIN_SCORE and not (personal and _little_besides(password, words)):
        return
    if personal:
        reason = "It is built from your name, your email address or the site's name."
    else:
        reason = estimate["feedback"]["warning"] or "It would be guessed quickly."
    tip = "A few unrelated words together make a strong password that is easy to remember."
    raise ValidationFailed(f"This password is too easy to guess. {reason} {tip}", field=field)


def change(member_id: int, current: str, new: str, *, keep_session: int | None) -> list[int]:
    """Change a member's password, ending every other session of theirs.

    Raises ValidationFailed on `current_password` when the current password is wrong,
    and on `new_password` when the new one breaks the rule. Returns the sessions ended.
    """
    member = db.session.get(Member, member_id)
    if not matches(member.password_hash, current):
        raise ValidationFailed("That is not your current password.", field="current_password")
    check_strength(new, email=member.email, name=member.name, field="new_password")
    # Conditional on the hash just checked: of two changes racing from the same current
    # password, one wins and the other is told, rather than the last silently winning.
    changed = db.session.execute(
        db.update(Member)
        .where(Member.id == member_id, Member.password_hash == member.password_hash)
        .values(password_hash=hash_password(new))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise ValidationFailed(
            "Your password was just changed in another session. Reload and try again.",
            field="current_password",
        )
    ended = sessions.end_all(member_id, keep=keep_session)
    db.session.commit()
    db.session.expire(member)
    return ended


def end_other_sessions(member_id: int, keep_session: int | None) -> list[int]:
    """'Log out of all other sessions'. Returns the sessions ended."""
    ended = sessions.end_all(member_id, keep=keep_session)
    db.session.commit()
    return ended


# ------------------------------------------------------------------ forgotten passwords


def request_reset(email: str) -> None:
    """Email a reset link to the member with this address, if there is one.

    Says nothing either way: the caller answers the same whether or not the address has
    an account. The email goes through the outbox at once, without the away rules.
    """
    email = (email or "").strip().lower()
    member = db.session.scalar(db.select(Member).where(Member.email == email))
    if member is None or member.suspended_at is not None:
        return
    reset = PasswordReset(member_id=member.id, nonce=secrets.token_hex(16))
    db.session.add(reset)
    db.session.flush()
    outbox.queue_password_reset(member.id, reset.id)
    db.session.commit()


def _signature(reset: PasswordReset, member: Member) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    text = f"password-reset\0{reset.id}\0{reset.nonce}\0{member.password_hash}".encode()
    digest = hmac.new(key, text, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_for(reset: PasswordReset) -> str:
    """The token of a reset's link (for the email)."""
    return f"{reset.id}-{_signature(reset, db.session.get(Member, reset.member_id))}"


def pending_reset(reset_id: int) -> PasswordReset | None:
    """The reset if its link may still be used: not used, not expired, member not suspended."""
    reset = db.session.get(PasswordReset, reset_id)
    if reset is None or reset.used_at is not None:
        return None
    if utcnow() - reset.created_at > RESET_VALID_FOR:
        return None
    member = db.session.get(Member, reset.member_id)
    if member is None or member.suspended_at is not None:
        return None
    return reset


def reset_for_token(token: str) -> PasswordReset:
    """The pending reset a link's token names.

    Raises NotFound for a token that is wrong, used, expired or outdated.
    """
    reset_id, _, signature = (token or "").partition("-")
    wellformed = reset_id.isascii() and reset_id.isdigit() and len(reset_id) < 10
    reset = pending_reset(int(reset_id)) if wellformed else None
    if reset is None or not hmac.compare_digest(
        signature.encode(), _signature(reset, db.session.get(Member, reset.member_id)).encode()
    ):
        raise NotFound(
            "This password reset link has expired or was already used. Ask for a new one below."
        )
    return reset


def reset(token: str, new: str) -> Member:
    """Set a new password from a reset link and end every session of the member.

    Raises NotFound for a link that cannot be used (see `reset_for_token`) and
    ValidationFailed on `password` for a password that breaks the rule.
    """
    row = reset_for_token(token)
    member = db.session.get(Member, row.member_id)
    check_strength(new, email=member.email, name=member.name, field="password")
    # Marked used under a condition: two submissions of one link change the password once.
    claimed = db.session.execute(
        db.update(PasswordReset)
        .where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise NotFound("This password reset link was already used. Ask for a new one below.")
    member.password_hash = hash_password(new)
    sessions.end_all(member.id)
    db.session.commit()
    return member
