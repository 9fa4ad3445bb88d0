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
    # PostgreSQL connections per process (SQLAlchemy's defaults). Every open stream shares
    # them: a stream holds one only to open (replay) and at its keep-alive checks. In a
    # reconnect storm of thousands of streams a request that waits longer than
    # DB_POOL_TIMEOUT seconds fails (bench/streams.py). Size workers x (size + overflow)
    # below PostgreSQL's max_connections (100 by default), with room for other clients.
    DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 10)
    DB_POOL_TIMEOUT = _env_float("DB_POOL_TIMEOUT", 30.0)
    # psycopg prepares a statement on its sixth run on a connection, and reads keep them
    # (linkmsg/reads.py). Off behind a pooler that moves a session's statements between
    # server connections (PgBouncer in transaction mode before 1.21).
    DB_PREPARED_STATEMENTS = _env_bool("DB_PREPARED_STATEMENTS", True)
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
    # Pixels an image may decode to for its thumbnail (about 4 bytes and 15 ns each:
    # 16 million is ~70 MB and ~0.3 s); a JPEG decodes at up to 1/8 scale, so it may be
    # up to 4 times as large. Larger images are refused.
    MAX_IMAGE_PIXELS = _env_int("MAX_IMAGE_PIXELS", 16_000_000)
    # A whole request may carry the largest allowed set of attachments plus the form.
    MAX_CONTENT_LENGTH = _env_int(
        "MAX_CONTENT_LENGTH", MAX_ATTACHMENTS_PER_MESSAGE * MAX_ATTACHMENT_BYTES + 1024 * 1024
    )

    # Every other request body (forms, anonymous requests): enough for the longest form.
    MAX_FORM_BYTES = _env_int("MAX_FORM_BYTES", 64 * 1024)

    MESSAGE_MAX_CHARS = 8000
    INVITATION_NOTE_MAX_CHARS = 300
    INVITATIONS_PER_WEEK = _env_int("INVITATIONS_PER_WEEK", 100)
    ACTIVE_WRITE_INTERVAL_SECONDS = 60
    CONNECTIONS_PER_PAGE = 20
    SEARCH_RESULTS_PER_PAGE = 20
    NOTIFICATIONS_PER_PAGE = 30
    # Messaging lists kept rendered per process (linkmsg/list_pane.py); 0 keeps none.
    # A list is about 20-40 KB.
    LIST_PANE_ENTRIES = _env_int("LIST_PANE_ENTRIES", 1000)
    # Messages' HTML kept per process (linkmsg/message_html.py); 0 keeps none. A message
    # is about 1-2 KB; one drawn longer than 4,096 characters is not kept.
    MESSAGE_HTML_ENTRIES = _env_int("MESSAGE_HTML_ENTRIES", 2000)
    # Other pieces of pages kept rendered per process (linkmsg/pieces.py): a one-to-one
    # conversation's header and its reply box, a member search's rows; 1-5 KB each; 0
    # keeps none.
    PIECE_HTML_ENTRIES = _env_int("PIECE_HTML_ENTRIES", 2000)
    # The member's top navigation kept drawn per process (its own store: every page of
    # every member draws it), 3-4 KB each; 0 keeps none.
    NAV_HTML_ENTRIES = _env_int("NAV_HTML_ENTRIES", 2000)
    # Draw every kept message and piece again and compare (the test suite's setting).
    KEPT_HTML_VERIFY = False
    # Session cookies whose checked contents are kept per process (linkmsg/cookies.py), a
    # few hundred bytes each; 0 keeps none.
    SESSION_COOKIES_KEPT = _env_int("SESSION_COOKIES_KEPT", 10000)

    # Live events: keep-alive comment interval, retention of replayable events.
    SSE_KEEPALIVE_SECONDS = _env_int("SSE_KEEPALIVE_SECONDS", 15)
    SSE_RETRY_MS = 3000
    # Stream opens per process that may use the database at once (`stream.opening_gate`);
    # the others wait, up to STREAM_OPEN_WAIT_SECONDS, then get a 503 and retry.
    STREAM_OPENS_AT_ONCE = _env_int("STREAM_OPENS_AT_ONCE", 4)
    STREAM_OPEN_WAIT_SECONDS = _env_float("STREAM_OPEN_WAIT_SECONDS", 120.0)
    EVENT_RETENTION_DAYS = _env_int("EVENT_RETENTION_DAYS", 30)
    SSE_QUEUE_SIZE = 1000
    # Open streams a member may hold in one process; past it the oldest closes.
    SSE_STREAMS_PER_MEMBER = _env_int("SSE_STREAMS_PER_MEMBER", 10)
    EVENT_CHANNEL_PREFIX = os.environ.get("EVENT_CHANNEL_PREFIX", "linkmsg:")

    # What a 503 (the database unreachable) tells clients to wait before trying again.
    RETRY_AFTER_SECONDS = 30

    # Email notifications: only to members away this long, at most one per thread per
    # quiet period. PUBLIC_URL makes the links in emails absolute.
    EMAIL_WHEN_AWAY_SECONDS = _env_int("EMAIL_WHEN_AWAY_SECONDS", 5 * 60)
    EMAIL_QUIET_PERIOD_SECONDS = _env_int("EMAIL_QUIET_PERIOD_SECONDS", 15 * 60)
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")
    MAIL_WORKER_INTERVAL_SECONDS = 2
    # A worker's claim on the email it is sending; past it, a worker that died is taken
    # over. Far longer than one SMTP exchange (10 s timeout).
    MAIL_CLAIM_SECONDS = _env_int("MAIL_CLAIM_SECONDS", 300)
    # Run the mail worker as a thread of the web process (what `make run` does).
    MAIL_WORKER_THREAD = _env_bool("MAIL_WORKER_THREAD", False)

    # Anti-spam limits (Flask-Limiter; Redis storage when REDIS_URL is set).
    MESSAGE_RATE_LIMIT = os.environ.get("MESSAGE_RATE_LIMIT", "20 per minute")
    NEW_THREAD_RATE_LIMIT = os.environ.get("NEW_THREAD_RATE_LIMIT", "50 per day")
    # Archive, mute, mark unread and labels, all together: each toggle is a live event
    # that every open page of the member renders and replays.
    ORGANISE_RATE_LIMIT = os.environ.get("ORGANISE_RATE_LIMIT", "30 per minute;300 per hour")
    # A new profile picture is decoded and resized: a few a day is plenty.
    AVATAR_RATE_LIMIT = os.environ.get("AVATAR_RATE_LIMIT", "10 per hour")
    # Each export reads the thread and every attachment in it.
    EXPORT_RATE_LIMIT = os.environ.get("EXPORT_RATE_LIMIT", "10 per hour")
    # Login attempts (linkmsg.services.throttle): tight per account and client, loose per
    # account, moderate per address; a browser the owner logged in with before only
    # counts against the first.
    LOGIN_ACCOUNT_CLIENT_RATE_LIMIT = os.environ.get(
        "LOGIN_ACCOUNT_CLIENT_RATE_LIMIT", "10 per 15 minutes"
    )
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "100 per hour")
    LOGIN_ADDRESS_RATE_LIMIT = os.environ.get("LOGIN_ADDRESS_RATE_LIMIT", "100 per 15 minutes")
    # Sign-ups per address, and "forgot password" emails per address and per email.
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "10 per hour")
    PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "5 per hour")
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True  # if the limit store is down, let members through
    # ... and count in this process meanwhile: one request pays REDIS_SOCKET_TIMEOUT to
    # find Redis gone, the next ones do not wait for it (it is retried now and then).
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Two sites sharing one Redis must not share their members' counters.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "linkmsg")

    # Werkzeug's scrypt: memory-hard, salted.
    PASSWORD_HASH_METHOD = "scrypt"

    # How many proxies stand in front of the app; their X-Forwarded-For/-Proto/-Host are
    # believed (Werkzeug's ProxyFix). 0: the connection's address is the client.
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)

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
    # Every kept message and piece is drawn again and compared, on every page of every test.
    KEPT_HTML_VERIFY = True
