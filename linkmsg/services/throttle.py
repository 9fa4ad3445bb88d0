"""Login throttling that slows a guesser down without locking the owner out.

Every attempt is counted before the password is checked, with the rate-limit store's
atomic increment, so parallel guesses cannot slip past the limit between a check and a
count; a successful login gives its count back. Three counters:

- per account and client (tight): one client guessing one account;
- per account (loose): many clients guessing one account;
- per client address (moderate): one address trying many accounts.

A browser that has logged in to the account before (a signed cookie, see
`blueprints.auth`) is its owner's own client: only the first counter applies to it, so
nobody else's failures, from any address, stop the owner logging in there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from ..extensions import limiter
from .errors import RateLimited

log = logging.getLogger(__name__)

# When the shared store (Redis) fails or hangs, count in this process for a while rather
# than let every guess through or make every login wait the store's timeout.
STORE_RETRY_SECONDS = 10.0


@dataclass
class _Fallback:
    """An app's in-process counting, and until when the shared store counts as down."""

    strategy: FixedWindowRateLimiter = field(
        default_factory=lambda: FixedWindowRateLimiter(MemoryStorage())
    )
    store_down_until: float = 0.0


def _fallback() -> _Fallback:
    return current_app.extensions.setdefault("linkmsg.throttle", _Fallback())


def _strategy():
    """The rate limiter to count with now: the shared store, or this process's while the
    store is down or the app-wide limits are switched off (RATELIMIT_ENABLED=False, which
    leaves Flask-Limiter with no store: logins are still throttled)."""
    fallback = _fallback()
    if time.monotonic() < fallback.store_down_until or not limiter.enabled:
        return fallback.strategy
    return limiter.limiter


def _store_failed(error: Exception) -> None:
    log.warning("login throttle store unavailable, counting in this process: %s", error)
    _fallback().store_down_until = time.monotonic() + STORE_RETRY_SECONDS


@dataclass
class Attempt:
    """The counters one attempt was added to, so that a success can give them back."""

    counted: list[tuple] = field(default_factory=list)  # (strategy, item, identifiers)


def _retry_in(seconds: float) -> str:
    seconds = max(1, int(seconds))
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def count_login_attempt(account: str, client: str, address: str, *, known: bool) -> Attempt:
    """Count a login attempt against every limit that applies, before it is checked.

    `client` identifies the browser (a known device's id, else the address). Raises
    RateLimited (with `retry_after`) at the first limit that is exhausted.
    """
    config = current_app.config
    limits = [
        (
            "LOGIN_ACCOUNT_CLIENT_RATE_LIMIT",
            ("login-account-client", account, client),
            "Too many failed attempts to log in to this account from here.",
        )
    ]
    if not known:
        limits += [
            (
                "LOGIN_ACCOUNT_RATE_LIMIT",
                ("login-account", account),
                "Too many failed attempts to log in to this account.",
            ),
            (
                "LOGIN_ADDRESS_RATE_LIMIT",
                ("login-address", address),
                "Too many failed logins from your network.",
            ),
        ]
    attempt = Attempt()
    for setting, keys, sentence in limits:
        item = parse(config[setting])
        identifiers = (config["RATELIMIT_KEY_PREFIX"], *keys)
        strategy = _strategy()
        try:
            allowed = strategy.hit(item, *identifiers)
        except Exception as error:
            _store_failed(error)
            strategy = _fallback().strategy
            allowed = strategy.hit(item, *identifiers)
        attempt.counted.append((strategy, item, identifiers))
        if not allowed:
            reset = strategy.get_window_stats(item, *identifiers).reset_time
            error = RateLimited(
                f"{sentence} Try again in {_retry_in(reset - time.time())}, or reset your password."
            )
            error.retry_after = max(1, int(reset - time.time()))
            raise error
    return attempt


def give_back(attempt: Attempt) -> None:
    """A successful login does not count against anyone's limits."""
    for strategy, item, identifiers in attempt.counted:
        try:
            strategy.storage.incr(item.key_for(*identifiers), item.get_expiry(), -1)
        except Exception as error:
            _store_failed(error)
            return
