"""What every template sees: avatars, the navigation and its counts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import (
    Flask,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
    session,
    url_for,
)
from flask.globals import _cv_app, _cv_request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2 import pass_context
from markupsafe import Markup, escape

from .lru import Store
from .models import utcnow
from .text import short_duration


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    icon: str
    badge: str | None = None


# In order of the top bar; an area appears once its blueprint is registered.
NAV = (
    NavItem("messaging.inbox", "Messaging", "messaging", badge="unread"),
    NavItem("network.index", "My Network", "network"),
    NavItem("notifications.index", "Notifications", "notifications", badge="notifications"),
)

# Areas that contribute a count to the navigation register a callable here:
# name -> function(member) -> a SELECT of one number. A page fetches them all, and the
# newest live event id, in one round trip.
NAV_COUNTERS: dict[str, callable] = {}


def nav_counts(member) -> dict[str, int]:
    """The member's navigation counts and newest live event id, in one round trip
    (through a statement built once)."""
    from .extensions import db

    names, one, _ = _nav_statements()
    return _counts(names, db.session.execute(one, {"nav_member_id": member.id}).one())


def members_with_counts(member_ids) -> list[tuple]:
    """The members (every member a live event goes to), each with their navigation
    counts and newest live event id, in one statement: [(member, counts)]."""
    from .extensions import db

    names, _, many = _nav_statements()
    rows = db.session.execute(many, {"nav_member_ids": sorted(set(member_ids))}).all()
    return [(member, _counts(names, values)) for member, *values in rows]


def _counts(names, values) -> dict[str, int]:
    counts = dict(zip(names, (value or 0 for value in values[:-1]), strict=True))
    counts["_last_event_id"] = values[-1] or 0
    return counts


_NAV_STATEMENTS: dict[tuple, tuple] = {}


def _nav_statements():
    """The counters' SELECT built once per set of counters (building it costs more than
    running it): for one member as a bound parameter, and for many, one row each (the
    member and their counters, correlated to a list of members)."""
    from types import SimpleNamespace

    from sqlalchemy import Integer, bindparam
    from sqlalchemy.orm import aliased

    from .extensions import db
    from .models import Member
    from .services import events

    names = tuple(NAV_COUNTERS)
    built = _NAV_STATEMENTS.get(names)
    if built is None:

        def columns(member_id):
            member = SimpleNamespace(id=member_id)
            found = [NAV_COUNTERS[name](member).scalar_subquery() for name in names]
            found.append(events.latest_seq_query(member.id).scalar_subquery())
            return found

        one = db.select(*columns(bindparam("nav_member_id", type_=Integer)))
        who = aliased(Member, name="nav_member")
        many = db.select(who, *columns(who.id)).where(
            who.id.in_(bindparam("nav_member_ids", expanding=True))
        )
        built = _NAV_STATEMENTS[names] = (names, one, many)
    return built


# ---------------------------------------------------------------- read with the member
#
# The session's member, the navigation counts and (on Messaging pages) the member's
# labels come in one round trip: the user loader asks `sessions.load_member` for them
# with `page_query`, and keeps them here for the request. Anything this request writes
# afterwards (a thread opened and read) drops them: what renders then asks again.

PAGE_MEMBER = "member_id"  # the bound parameter `sessions.load_query` gives its columns
_PAGE_QUERIES: dict[tuple, object] = {}


def page_query(*, nav: bool, labels: bool, listed: bool = False):
    """The session loader's statement with the navigation counts (`nav`) and the
    member's labels (`labels`) and the state of their Messaging list (`listed`, a page
    that shows it) as further columns, built once per kind of page."""
    from types import SimpleNamespace

    from sqlalchemy import Integer, bindparam

    from .services import events, messaging, organise, sessions

    key = (tuple(NAV_COUNTERS), nav, labels, listed)
    query = _PAGE_QUERIES.get(key)
    if query is None:
        member = SimpleNamespace(id=bindparam(PAGE_MEMBER, type_=Integer))
        also = {}
        if nav:
            for name in NAV_COUNTERS:
                also[f"nav_{name}"] = NAV_COUNTERS[name](member).scalar_subquery()
            also["nav__last_event_id"] = events.latest_seq_query(member.id).scalar_subquery()
        if labels:
            also["labels"] = organise.labels_query(member.id)
        if listed:
            also["list_state"] = messaging.list_state(member.id)
        query = _PAGE_QUERIES[key] = sessions.load_query(also)
    return query


def keep_page_values(member_id: int, values: dict) -> None:
    """What the user loader read with the member, for the rest of this request."""
    nav = {name[4:]: value or 0 for name, value in values.items() if name.startswith("nav_")}
    g.page_values = {"member_id": member_id, "nav": nav or None}
    if "labels" in values:
        from .services import organise

        g.page_values["labels"] = organise.labels_from(member_id, values["labels"])
    if "list_state" in values:
        g.page_values["list_state"] = values["list_state"]


def page_value(member_id: int, name: str):
    """A value the user loader read with this member, None when it did not (or this
    request has written since)."""
    values = g.get("page_values") if has_request_context() else None
    if not values or values["member_id"] != member_id:
        return None
    return values.get(name)


def forget_page_values(*_args) -> None:
    if has_request_context():
        g.pop("page_values", None)


# Tables whose writes change nothing read with the member (their counts, labels, the
# state of their list): a profile view they record (a notification it sends goes to the
# member viewed, in a write of its own) and their session's last use.
_NEUTRAL_WRITES = frozenset({"profile_view", "member_session"})


def _forget_on_write(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) not in _NEUTRAL_WRITES:
            forget_page_values()


def _watch_writes() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "do_orm_execute", _forget_on_write):
        event.listen(Session, "do_orm_execute", _forget_on_write)
        event.listen(Session, "after_flush", forget_page_values)


class _Count:
    """A navigation count, asked of the database the first time a template shows one
    (a fragment for htmx shows none: it asks nothing)."""

    def __init__(self, counts, name: str):
        self._counts, self._name = counts, name

    def __int__(self) -> int:
        return self._counts().get(self._name, 0)

    __index__ = __int__

    def __bool__(self) -> bool:
        return bool(int(self))

    def __str__(self) -> str:
        return str(int(self))

    __html__ = __str__

    def __eq__(self, other) -> bool:
        return int(self) == other

    def __hash__(self) -> int:
        return hash(int(self))


def mark_database_unavailable() -> None:
    """This request found the database unreachable: what renders now must not query it."""
    g.database_unavailable = True


def database_unavailable() -> bool:
    return g.get("database_unavailable", False)


def timeago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    seconds = int(((now or utcnow()) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 7 * 86400:
        return f"{short_duration(seconds)} ago"
    return moment.strftime("%b %-d, %Y")


def timeago_turns(moment: datetime | None, now: datetime) -> datetime:
    """When `timeago(moment)`, as it reads at `now`, first reads otherwise: the next
    minute, hour or day of its age, or never once it shows a date (`datetime.max`)."""
    if moment is None:
        return datetime.max
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return moment + timedelta(seconds=60)
    if seconds < 3600:
        step = 60
    elif seconds < 86400:
        step = 3600
    elif seconds < 7 * 86400:
        step = 86400
    else:
        return datetime.max
    return moment + timedelta(seconds=(seconds // step + 1) * step)


def avatar(member, size: int = 48) -> Markup:
    """An uploaded avatar, or initials drawn in SVG on a colour of the member's own, for
    templates (`member` a `models.Drawn`). Written here rather than as a macro: a page
    draws one per row and per run of messages, and a macro call cost ten times this.
    Every value is escaped; the HTML is kept for the rest of the request by everything it
    is drawn from (a live event to a group of 50 draws the same few faces again and
    again)."""
    size = int(size)
    key = (member.id, member.name, member.handle, member.avatar_key, size)
    drawn = g.setdefault("avatars", {}) if has_app_context() else {}
    if key not in drawn:
        name = escape(member.name)
        if member.avatar_key:
            src = escape(url_for("profiles.avatar", handle=member.handle))
            drawn[key] = Markup(
                f'<img class="avatar" src="{src}" width="{size}" height="{size}" alt="{name}"'
                ' data-testid="avatar">'
            )
        else:
            drawn[key] = Markup(
                f'<svg class="avatar" width="{size}" height="{size}" viewBox="0 0 48 48"'
                f' role="img" aria-label="{name}" data-testid="avatar"><circle cx="24"'
                f' cy="24" r="24" fill="hsl({int(member.avatar_hue)} 45% 40%)"/><text x="24"'
                ' y="24" dy=".35em" text-anchor="middle" font-size="18"'
                ' font-family="system-ui, sans-serif" fill="#fff">'
                f"{escape(member.initials)}</text></svg>"
            )
    return drawn[key]


_KEPT_URLS: dict[tuple, str] = {}
KEPT_URLS_MAX = 20_000  # then forgotten all at once (a URL per page of a long list...)


def kept_url_for(endpoint: str, **values) -> str:
    """Flask's `url_for` for templates, each URL built once per process: a page asks for
    forty or so, each through werkzeug's router and Flask's defaults. A URL depends on
    its endpoint, its values and where the app is mounted, nothing else (the app
    registers no `url_defaults`; tests/test_kept_urls.py checks). One that asks for more
    (`_external`, `_scheme`, a blueprint-relative endpoint) is built each time."""
    # The request's context itself, not through `request` (a proxy): a page asks this
    # forty times.
    ctx = _cv_request.get(None)
    if (
        ctx is None
        or endpoint.startswith(".")
        or any(name.startswith("_") and name != "_anchor" for name in values)
    ):
        return url_for(endpoint, **values)
    key = (ctx.request.script_root, endpoint, *sorted(values.items()))
    try:
        return _KEPT_URLS[key]
    except KeyError:
        pass
    except TypeError:  # a value that is not hashable
        return url_for(endpoint, **values)
    if len(_KEPT_URLS) >= KEPT_URLS_MAX:
        _KEPT_URLS.clear()
    built = _KEPT_URLS[key] = url_for(endpoint, **values)
    return built


def csrf_token() -> str:
    """Flask-WTF's `csrf_token()` for templates: the request's token once made (Flask-WTF
    keeps it on `g`), else made by Flask-WTF. A page has twenty-odd forms, and each ask
    of Flask-WTF's own read the config, `g` and the session through a dozen proxies."""
    ctx = _cv_app.get(None)
    token = getattr(ctx.g, "csrf_token", None) if ctx is not None else None
    return token if token is not None else _signed_csrf_token(ctx)


# Form tokens signed lately, by the session's own token and the key they were signed with.
# Flask-WTF signs the session's token once per page (with the time, compressed, then an
# HMAC): about 0.03 ms of every page, for a value that checks the same for the rest of
# the session (WTF_CSRF_TIME_LIMIT is None). One signed in the last `_SIGNED_REUSE`
# seconds is used again; with a time limit, one signed within a tenth of it.
_SIGNED = Store(10_000)
_SIGNED_REUSE = 3600


def _signed_csrf_token(ctx) -> str:
    config = current_app.config
    if ctx is None or config.get("WTF_CSRF_FIELD_NAME", "csrf_token") != "csrf_token":
        return generate_csrf()
    limit = config.get("WTF_CSRF_TIME_LIMIT")
    reuse = _SIGNED_REUSE if limit is None else min(_SIGNED_REUSE, limit / 10)
    key = (session.get("csrf_token"), config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key)
    kept = _SIGNED.get(key) if isinstance(key[0], str) else None
    if kept is not None and 0 <= time.time() - kept[1] < reuse:
        ctx.g.csrf_token = kept[0]  # where Flask-WTF keeps the request's token
        return kept[0]
    token = generate_csrf()
    key = (session.get("csrf_token"), key[1])  # made just now for a new session
    if isinstance(key[0], str):
        _SIGNED.put(key, (token, time.time()))
    return token


@pass_context
def action_form(
    context,
    action: str,
    testid: str,
    text=None,
    hidden: dict | None = None,
    button_class: str = "linklike",
    form_class: str | None = None,
    htmx: bool = False,
    hx_target: str | None = None,
    caller=None,
) -> Markup:
    """A button that POSTs, with its hidden fields. With `htmx`, htmx posts it and the
    answer is made of out-of-band pieces only (each finds its own target when it
    arrives, whatever a live update changed meanwhile; the form is its own target
    whatever a list around it aims its links at, so that app.js sees its swap); with
    `hx_target`, htmx swaps the answer in place of that element. The button says `text`,
    or what a {% call %} block gives (markup).

    Written here rather than as a macro (a search page draws twenty, and a macro
    imported `with context` is built again for every row). The form token is the one of
    the template's own context: live pieces render with an empty one and kept lists with
    a marker (`live.render_for`, `list_pane`). Every value is escaped."""
    action = escape(action)
    opening = f'<form method="post" action="{action}"'
    if form_class:
        opening += f' class="{escape(form_class)}"'
    if htmx:
        opening += f' hx-post="{action}" hx-target="this" hx-swap="none" data-oob-only'
    elif hx_target:
        opening += f' hx-post="{action}" hx-target="{escape(hx_target)}" hx-swap="outerHTML"'
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in (hidden or {}).items()
    )
    label = caller() if caller is not None else escape(text)
    return Markup(
        f'{opening}>\n  <input type="hidden" name="csrf_token"'
        f' value="{escape(context.resolve("csrf_token")())}">\n  {fields}\n'
        f'  <button type="submit" class="{escape(button_class)}"'
        f' data-testid="{escape(testid)}">{label}</button>\n</form>'
    )


_ICONS: dict[str, Markup] = {}


def icon(name: str) -> Markup:
    """The SVG of `partials/icons/<name>.svg`, read once per process. The icons are
    static (no template code), and an include of each copied the page's whole context; a
    page draws eight or so."""
    found = _ICONS.get(name)
    if found is None:
        if not name.replace("-", "").isalnum():
            raise ValueError(f"not an icon name: {name!r}")
        env = current_app.jinja_env
        source = env.loader.get_source(env, f"partials/icons/{name}.svg")[0]
        # As an include renders it: Jinja drops one trailing newline.
        found = _ICONS[name] = Markup(source.removesuffix("\n"))
    return found


_STAND_IN = 987654321  # an id no URL holds otherwise


def id_url(endpoint: str, anchor: str | None = None, **value: int) -> str:
    """`url_for(endpoint, name=id, _anchor=anchor)` for URLs of one id (`thread_id=...`,
    `message_id=...`) on a page of many rows or messages: built once per process and
    mount point with a stand-in id, then each id put in its place (werkzeug's build and
    Flask's defaults were a third of a thread row's render, at four URLs a row). An id
    converter writes an id as its digits, so the URLs are the same."""
    ((name, number),) = value.items()
    ctx = _cv_request.get(None)
    key = (ctx.request.script_root if ctx is not None else None, endpoint, name, anchor)
    parts = _ID_URLS.get(key)
    if parts is None:
        stand_in = url_for(endpoint, _anchor=anchor, **{name: _STAND_IN})
        parts = stand_in.split(str(_STAND_IN))
        if ctx is not None:  # outside a request the URL depends on SERVER_NAME and more
            _ID_URLS[key] = parts
    if len(parts) != 2:
        return url_for(endpoint, _anchor=anchor, **value)
    return f"{parts[0]}{int(number)}{parts[1]}"


_ID_URLS: dict[tuple, list[str]] = {}


def init_app(app: Flask) -> None:
    _watch_writes()
    from .services import conversation
    from .services.attachments import ACCEPT, human_size, label
    from .services.billing import reason_label
    from .services.degrees import degree_label
    from .text import linkify

    app.jinja_env.filters["filesize"] = human_size
    app.jinja_env.globals["file_label"] = label
    app.jinja_env.globals["accept_files"] = ACCEPT
    app.jinja_env.globals["laid_out"] = conversation.laid_out
    app.jinja_env.globals["place_appended"] = conversation.place_appended

    app.jinja_env.filters["ledger_reason"] = reason_label
    app.jinja_env.filters["timeago"] = timeago
    app.jinja_env.filters["linkify"] = linkify
    app.jinja_env.globals["network_label"] = degree_label
    # The same for every page and every member, live pieces included (`live.render_for`
    # renders without the context processor below).
    app.jinja_env.globals["avatar"] = avatar
    app.jinja_env.globals["id_url"] = id_url
    app.jinja_env.globals["url_for"] = kept_url_for
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["action_form"] = action_form
    app.jinja_env.globals["icon"] = icon
    app.jinja_env.globals["endpoints"] = app.view_functions

    @app.context_processor
    def inject():
        def nav_items():
            items = []
            for item in NAV:
                if item.endpoint not in current_app.view_functions:
                    continue
                url = kept_url_for(item.endpoint)
                items.append(
                    {
                        "url": url,
                        "label": item.label,
                        "icon": item.icon,
                        "badge": item.badge,
                        "active": request.path.startswith(url),
                    }
                )
            return items

        # Emails render outside any request: nobody is logged in there. Live pieces do
        # not come through here: `live.render_for` names their member and counts.
        # The page saying the database is unreachable may not ask it who is logged in.
        degraded = has_request_context() and database_unavailable()
        user = (
            current_user._get_current_object() if has_request_context() and not degraded else None
        )
        signed_in = user is not None and user.is_authenticated
        found = []

        def counts() -> dict[str, int]:
            if not found:
                kept = page_value(user.id, "nav") if signed_in else None
                found.append(kept or (nav_counts(user) if signed_in else {}))
            return found[0]

        def count(name: str) -> _Count:
            return _Count(counts, name)

        def live_last_event_id() -> int:
            return counts().get("_last_event_id", 0)

        def nav_key(oob=False) -> tuple:
            """Everything the member's top navigation (`_nav_member.html`, kept drawn) is
            drawn from: the member as shown (name, handle, picture, whether an admin),
            which entry is the current page's, the two counts and whether the badges are
            swapped in out of band. The entries and their addresses are the app's own."""
            counted = counts()
            return (
                user.id,
                user.name,
                user.handle,
                user.avatar_key,
                bool(user.is_admin),
                tuple(item["active"] for item in nav_items()),
                counted.get("unread", 0),
                counted.get("notifications", 0),
                bool(oob),
            )

        return {
            # Flask-WTF's context processor gives every page its own `csrf_token`, which
            # would hide the app's (the global: see `csrf_token`, `pieces.csrf_token`).
            "csrf_token": current_app.jinja_env.globals["csrf_token"],
            "nav_items": nav_items,
            "me": user,
            "signed_in": signed_in,
            "degraded": degraded,
            "unread_threads": count("unread"),
            "unread_notifications": count("notifications"),
            "live_last_event_id": live_last_event_id,
            "nav_key": nav_key,
        }
