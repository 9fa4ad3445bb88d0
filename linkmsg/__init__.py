"""LinkMsg: a professional network's private messaging. `create_app` builds the app."""

from __future__ import annotations

import importlib
import os
import secrets
from pathlib import Path

from flask import Flask, abort, current_app, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from werkzeug.middleware.proxy_fix import ProxyFix

from . import cli, compiled, cookies, list_pane, message_html, pieces, reads, realtime, templating
from .config import Config
from .extensions import csrf, db, limiter, login_manager, migrate, redis_client_options
from .services.errors import DomainError
from .web import SESSION_SECRET_KEY, IdConverter, current_session_id, domain_error_response, is_htmx

try:
    import psycopg
except ImportError:  # SQLite-only installs
    psycopg = None

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A kept piece of a page (linkmsg/pieces.py) is at most this long: a header or a reply
# box draws to 3-6 KB, more only with very long names and many labels.
PIECE_MOST_CHARACTERS = 16384

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def create_app(config: dict | type | None = None) -> Flask:
    """Build a LinkMsg app. `config` is a Config subclass or a dict of overrides."""
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    os.makedirs(app.instance_path, exist_ok=True)
    if not os.environ.get("SECRET_KEY") and not app.config.get("TESTING"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            app.instance_path, "linkmsg.sqlite3"
        )
    app.config["SQLALCHEMY_DATABASE_URI"] = _normalize_db_url(app.config["SQLALCHEMY_DATABASE_URI"])
    ping = False
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": app.config["DB_POOL_SIZE"],
            "max_overflow": app.config["DB_MAX_OVERFLOW"],
            "pool_timeout": app.config["DB_POOL_TIMEOUT"],
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        }
        # On PostgreSQL the pool's ping is reads._alive: a round trip only when the
        # server has said something to an idle connection (it is going away).
        ping = app.config["SQLALCHEMY_ENGINE_OPTIONS"].pop("pool_pre_ping", False)
    # Compiled statements found by their key object's identity first (linkmsg/compiled.py).
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **options,
        "execution_options": {
            "compiled_cache": compiled.IdentityCache(),
            **options.get("execution_options", {}),
        },
    }
    upload = app.config["UPLOAD_FOLDER"]
    if not os.path.isabs(upload):
        app.config["UPLOAD_FOLDER"] = os.path.join(app.instance_path, upload)

    if app.config["TRUSTED_PROXIES"]:
        # Behind N proxies, the client is the address the nearest proxy saw: without
        # this every client is the proxy, and one guesser rate-limits the whole site.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    if not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config.get("REDIS_URL") or "memory://"
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://", "redis+unix://")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", redis_client_options(app.config))
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        with app.app_context():
            sa_event.listen(db.engine, "connect", _without_jit)
            reads.init_engine(db.engine, prepare=app.config["DB_PREPARED_STATEMENTS"], ping=ping)
    limiter.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to continue."
    login_manager.login_message_category = "info"

    app.url_map.converters["id"] = IdConverter
    templating.init_app(app)
    list_pane.init_app(app)
    cookies.init_app(app)
    message_html.init_app(app)
    pieces.init_app(
        app,
        {
            "messages": (app.config["MESSAGE_HTML_ENTRIES"], message_html.MOST_CHARACTERS),
            "pieces": (app.config["PIECE_HTML_ENTRIES"], PIECE_MOST_CHARACTERS),
            # The top navigation of the members seen last (3-4 KB each).
            "nav": (app.config["NAV_HTML_ENTRIES"], PIECE_MOST_CHARACTERS),
        },
    )
    realtime.init_app(app)
    _register_blueprints(app)
    _register_handlers(app)
    cli.register(app)
    if app.config.get("MAIL_WORKER_THREAD"):
        from . import mail

        mail.start_thread(app)
    return app


def _without_jit(connection, _record) -> None:
    """Short statements only: PostgreSQL's JIT compiles a plan whose estimate crosses
    jit_above_cost (an empty table's guess can) for ~50 ms, where the statement itself
    runs in 2. Set on each new connection, whatever options its URL carries (and through a
    pooler that refuses startup options)."""
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    connection.commit()


def _instance_secret(instance_path: str) -> str:
    """A key kept in instance/ so that sessions survive restarts and are shared by the
    workers of one host when SECRET_KEY is not set."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path) as handle:
            key = handle.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker wrote it first
        with open(path) as handle:
            return handle.read().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _normalize_db_url(url: str) -> str:
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# One module per area in linkmsg/blueprints, each declaring `bp`.
BLUEPRINTS = (
    "admin",
    "auth",
    "groups",
    "health",
    "home",
    "inmail",
    "messaging",
    "network",
    "notifications",
    "organise",
    "premium",
    "profiles",
    "reporting",
    "settings",
)


def _register_blueprints(app: Flask) -> None:
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(f"{__name__}.blueprints.{name}").bp)


# GETs that render no page (no navigation), and the pages that list the member's labels.
# Requests that are not the member doing something: they neither mark the member active
# nor count as using the session. An event stream reopens after every restart or outage,
# for every open page at once (bench/streams.py), and would write for each.
NOT_ACTIVITY = frozenset({"static", "stream.stream", "health.healthz", "health.ping"})
NOT_PAGES = NOT_ACTIVITY | {"messaging.download", "messaging.thumbnail"}
LABELLED_PAGES = frozenset({"messaging.inbox", "messaging.thread"})


def _strings_in(value) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for pair in value.items() for item in pair for text in _strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


def _register_handlers(app: Flask) -> None:
    from .services import presence, sessions

    @login_manager.user_loader
    def load_user(member_id: str):
        if templating.database_unavailable():
            return None  # the 503 page renders for nobody rather than ask the database
        # The cookie names a member and a login; the login must still be live. A page
        # (not an htmx fragment, a form post, a file or an event stream) gets its
        # navigation counts in the same round trip, and a Messaging page the member's
        # labels.
        reading = request.method == "GET"
        nav = reading and not is_htmx() and request.endpoint not in NOT_PAGES
        # A thread's older messages, swapped in, show no labels.
        older = request.endpoint == "messaging.thread" and is_htmx() and "before" in request.args
        labels = reading and request.endpoint in LABELLED_PAGES and not older
        # The state of the Messaging list, for a page that shows it (a thread chosen in
        # the list with htmx comes without it).
        listed = labels and not (request.endpoint == "messaging.thread" and is_htmx())
        values: dict = {}
        member = sessions.load_member(
            member_id,
            current_session_id(),
            session.get(SESSION_SECRET_KEY),
            query=(
                templating.page_query(nav=nav, labels=labels, listed=listed)
                if nav or labels
                else None
            ),
            also=values,
            touch=request.endpoint not in NOT_ACTIVITY,
        )
        if member is not None:
            templating.keep_page_values(member.id, values)
        return member

    def upload_limit():
        """The body limit of this request's upload view, for a logged-in member; else None."""
        limit = getattr(app.view_functions.get(request.endpoint), "upload_limit", None)
        return limit(app.config) if limit is not None and current_user.is_authenticated else None

    def limit_request_body():
        """Anonymous requests and every view but an upload read at most MAX_FORM_BYTES:
        a large body is refused from its Content-Length (or cut off while streaming)
        before any of it is parsed."""
        request.max_content_length = upload_limit() or app.config["MAX_FORM_BYTES"]

    # First of all hooks: CSRF protection and the NUL check below parse the form.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_request_body)

    @app.before_request
    def refuse_nul_bytes():
        # No field of ours takes control bytes; PostgreSQL refuses NUL in text outright.
        if request.endpoint == "static":
            return None
        values = [value for _, value in request.args.items(multi=True)]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            values += [value for _, value in request.form.items(multi=True)]
        elif request.is_json:  # (Flask-WTF reads a JSON body as the form)
            values += _strings_in(request.get_json(silent=True))
        if any("\x00" in value for value in values):
            abort(400)
        return None

    @app.before_request
    def record_presence():
        # (A write for each reopening stream would mark every member with a tab open
        # "Active now".)
        if request.endpoint not in NOT_ACTIVITY and current_user.is_authenticated:
            presence.touch_active(current_user._get_current_object())

    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError):
        _rollback()
        return domain_error_response(error)

    @app.errorhandler(sa_exc.DBAPIError)
    def handle_database_error(error: sa_exc.DBAPIError):
        if not database_is_unreachable(error):
            raise error  # a query of ours is wrong: Flask's 500, logged with its traceback
        return _database_unavailable(error)

    @app.errorhandler(sa_exc.TimeoutError)
    def handle_pool_exhausted(error: sa_exc.TimeoutError):
        # Every connection of the pool busy for DB_POOL_TIMEOUT (a reconnect storm, a
        # burst past what the database can answer): not a bug of the request.
        return _database_unavailable(error, DATABASE_BUSY)

    if psycopg is not None:  # raised directly when a connection is made outside SQLAlchemy
        app.register_error_handler(psycopg.OperationalError, _database_unavailable)

    @app.errorhandler(CSRFError)
    def handle_csrf(error: CSRFError):
        return _error_page(400, "This form has expired. Reload the page and try again.")

    for status, message in (
        (400, "The request could not be understood."),
        (403, "You do not have access to this page."),
        (404, "This page does not exist, or you do not have access to it."),
        (405, "This action is not allowed here."),
        (500, "Something went wrong on our side. Please try again."),
    ):
        app.register_error_handler(status, _make_error_handler(status, message))

    @app.errorhandler(413)
    def too_large(error):
        if upload_limit() is not None:
            return _error_page(413, "That upload is too large. Nothing was sent.")
        return _error_page(413, "That is more than this form accepts. Nothing was saved.")

    @app.errorhandler(429)
    def too_many(error):
        return _error_page(429, _try_again_sentence())

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.vary.add("HX-Request")
        return response


def _make_error_handler(status: int, message: str):
    def handler(error):
        return _error_page(status, message)

    return handler


def _try_again_sentence() -> str:
    """'Try again in 40 seconds', from the limit that was hit."""
    import time

    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current else 60
    if wait < 90:
        when = f"{wait} seconds"
    elif wait < 5400:
        when = f"{round(wait / 60)} minutes"
    else:
        when = f"{round(wait / 3600)} hours"
    return f"You're doing that too often. Nothing was sent; try again in {when}."


def _rollback() -> None:
    """Leave any failed transaction behind, so the error page itself can query."""
    try:
        db.session.rollback()
    except Exception:  # the connection itself may be gone; the page still renders
        pass


def database_is_unreachable(error: sa_exc.DBAPIError) -> bool:
    """An outage (no server, a dropped connection, a locked SQLite file), not a bad query."""
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError) or bool(
        error.connection_invalidated
    )


DATABASE_UNAVAILABLE = "LinkMsg can't reach its database right now. Please try again in a minute."
DATABASE_BUSY = "LinkMsg is very busy right now. Nothing was changed; please try again in a moment."


def _database_unavailable(error: Exception, message: str = DATABASE_UNAVAILABLE):
    """503 with Retry-After, on a page that asks the database nothing (not even who is
    logged in: the session's member is loaded from it)."""
    current_app.logger.warning("database unavailable: %s: %s", type(error).__name__, error)
    _rollback()
    templating.mark_database_unavailable()
    body, status = _error_page(503, message)
    return body, status, {"Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])}


def _error_page(status: int, message: str):
    _rollback()
    template = "errors/_http.html" if is_htmx() else "errors/http.html"
    body = render_template(template, status=status, message=message, path=request.path)
    return body, status
