"""Every LinkMsg setting, read from the environment with a safe default.

Nothing here does I/O; the factory turns relative paths into instance paths.
"""

import os
import secrets


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Production-shaped defaults; every one can be overridden from the environment."""

    # A random key per process is safe but logs everyone out on restart and breaks
    # several workers: production must set SECRET_KEY.
    SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_hex(32)

    # None means "SQLite file in instance/", resolved by the factory.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # Every Redis client (rate limits, live events) gives up on a Redis that accepts
    # connections but does not answer after this long, so a hung Redis costs a request
    # this much at most and then degrades as an outage does.
    REDIS_SOCKET_TIMEOUT = _env_float("REDIS_SOCKET_TIMEOUT", 1.0)

    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = _env_int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "LinkMsg <no-reply@linkmsg.local>")

    # Relative to the instance folder unless absolute.
    UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER", "uploads")
    MAX_ATTACHMENT_BYTES = _env_int("MAX_ATTACHMENT_BYTES", 100 * 1024 * 1024)
    MAX_ATTACHMENTS_PER_MESSAGE = _env_int("MAX_ATTACHMENTS_PER_MESSAGE", 10)
    # A whole request may carry the largest allowed set of attachments plus the form.
    MAX_CONTENT_LENGTH = _env_int(
        "MAX_CONTENT_LENGTH", MAX_ATTACHMENTS_PER_MESSAGE * MAX_ATTACHMENT_BYTES + 1024 * 1024
    )

    MESSAGE_MAX_CHARS = 8000
    INVITATION_NOTE_MAX_CHARS = 300
    INVITATIONS_PER_WEEK = _env_int("INVITATIONS_PER_WEEK", 100)
    ACTIVE_WRITE_INTERVAL_SECONDS = 60
    CONNECTIONS_PER_PAGE = 20
    SEARCH_RESULTS_PER_PAGE = 20
    NOTIFICATIONS_PER_PAGE = 30

    # Live events: keep-alive comment interval, retention of replayable events.
    SSE_KEEPALIVE_SECONDS = _env_int("SSE_KEEPALIVE_SECONDS", 15)
    SSE_RETRY_MS = 3000
    EVENT_RETENTION_DAYS = _env_int("EVENT_RETENTION_DAYS", 30)
    SSE_QUEUE_SIZE = 1000
    EVENT_CHANNEL_PREFIX = os.environ.get("EVENT_CHANNEL_PREFIX", "linkmsg:")

    # What a 503 (the database unreachable) tells clients to wait before trying again.
    RETRY_AFTER_SECONDS = 30

    # Email notifications: only to members away this long, at most one per thread per
    # quiet period. PUBLIC_URL makes the links in emails absolute.
    EMAIL_WHEN_AWAY_SECONDS = _env_int("EMAIL_WHEN_AWAY_SECONDS", 5 * 60)
    EMAIL_QUIET_PERIOD_SECONDS = _env_int("EMAIL_QUIET_PERIOD_SECONDS", 15 * 60)
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")
    MAIL_WORKER_INTERVAL_SECONDS = 2
    # Run the mail worker as a thread of the web process (what `make run` does).
    MAIL_WORKER_THREAD = _env_bool("MAIL_WORKER_THREAD", False)

    # Anti-spam limits (Flask-Limiter; Redis storage when REDIS_URL is set).
    MESSAGE_RATE_LIMIT = os.environ.get("MESSAGE_RATE_LIMIT", "20 per minute")
    NEW_THREAD_RATE_LIMIT = os.environ.get("NEW_THREAD_RATE_LIMIT", "50 per day")
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "10 per 15 minutes")
    LOGIN_ADDRESS_RATE_LIMIT = os.environ.get("LOGIN_ADDRESS_RATE_LIMIT", "100 per 15 minutes")
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True  # if the limit store is down, let members through
    # ... and count in this process meanwhile: one request pays REDIS_SOCKET_TIMEOUT to
    # find Redis gone, the next ones do not wait for it (it is retried now and then).
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Two sites sharing one Redis must not share their members' counters.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "linkmsg")

    # Werkzeug's scrypt: memory-hard, salted.
    PASSWORD_HASH_METHOD = "scrypt"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    WTF_CSRF_HEADERS = ["X-CSRFToken"]


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_ENGINE_OPTIONS = {}
    # Tests hash hundreds of passwords; a cheap salted hash keeps the suite fast.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
