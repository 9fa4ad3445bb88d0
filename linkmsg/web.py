"""What every view shares: page-or-fragment rendering, safe redirects, the domain-error map."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Response,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from werkzeug.routing import IntegerConverter

from .services.errors import DomainError, RateLimited

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL

# Where the signed session cookie keeps the login's `member_session` row and its secret
# (linkmsg.services.sessions); an event stream reads SESSION_ID_KEY to know its login.
SESSION_ID_KEY = "sid"
SESSION_SECRET_KEY = "sid_secret"


def current_session_id() -> int | None:
    """The id of this request's login session, if any."""
    value = session.get(SESSION_ID_KEY)
    return value if isinstance(value, int) else None


def parse_id(value: str | None) -> int | None:
    """A row id from a query or form value, or None: ASCII digits within range only."""
    value = (value or "").strip()
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


class IdConverter(IntegerConverter):
    """`<id:name>` in routes: an integer that fits an id column (else 404, never a 500)."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, max=MAX_ID)


def takes_uploads(limit=lambda config: config["MAX_CONTENT_LENGTH"]):
    """Mark a view that accepts files. Only such a view, and only for a logged-in member,
    reads a request body larger than MAX_FORM_BYTES; `limit(config)` bounds it there.
    Place it right under the route decorator."""

    def mark(view):
        view.upload_limit = limit
        return view

    return mark


def is_htmx() -> bool:
    """A fragment is wanted: an htmx request that is not a boosted whole-page navigation.

    A boosted link inside an element that names an `hx-target` (a thread chosen in the
    Messaging list, aimed at the conversation pane) asks for that part of the page only:
    htmx sends the target's id, and the link still pushes its address.
    """
    if request.headers.get("HX-Request") != "true":
        return False
    return request.headers.get("HX-Boosted") != "true" or bool(request.headers.get("HX-Target"))


def render(page: str, fragment: str | None = None, /, *, status: int = 200, **context) -> Response:
    """Render the fragment for htmx requests and the full page otherwise.

    The page includes the same fragment, so both carry one copy of the markup.
    """
    template = fragment if fragment and is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    if fragment:
        # Which one a request gets also depends on these (see is_htmx).
        response.vary.update(("HX-Boosted", "HX-Target"))
    if request.headers.get("HX-Boosted") == "true" and request.method == "GET" and status == 200:
        # A boosted navigation records its own address: a live update may replace the
        # link that was clicked before htmx gets to push it.
        response.headers["HX-Push-Url"] = request.full_path.rstrip("?")
    return response


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path on this site, else `default` (no open redirects)."""
    if not target:
        return default
    target = target.strip().replace("\\", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def see_other(location: str) -> Response:
    """POST -> redirect -> GET. htmx follows a 303 with a GET as a browser does."""
    return redirect(location, code=303)


def done(message: str, location: str, category: str = "success") -> Response:
    flash(message, category)
    return see_other(location)


def domain_error_response(error: DomainError) -> Response:
    """The one place a domain error becomes a page or fragment with its status."""
    response = render(
        "errors/domain.html",
        "errors/_domain.html",
        status=error.status_code,
        error=error,
    )
    if isinstance(error, RateLimited) and error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
