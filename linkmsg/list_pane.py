"""The Messaging list's rows, kept rendered per member and per state of their list.

Every Messaging page shows the list beside the conversation, and reading its rows and
rendering them was about half of what a thread page cost (bench/README.md). Between two
pages the list rarely changes, so the rendered rows are kept (per process, the
`LIST_PANE_ENTRIES` most recently used; 0 keeps none) and used again while it has not.

**When it has not changed.** The key is the member, which list (filter or label, page)
and `messaging.list_state`: one value that changes with anything the rows are read from
(the member's sides of their threads, their labels on threads, blocks either way,
anyone's name or avatar). A page reads the state with the member, in the session
loader's statement, so a kept list costs no statement at all. Rows are kept under the
state read *in their own statement*, so what is kept is exactly that state's list even
when something commits between the two reads; equal states give equal lists, so an
older state coming back (a thread archived, then moved back) finds the right rows.
What the state leaves out changes with time alone: the times rows show ("5 minutes
ago"). Kept rows say when the first of them next turns (the next minute, hour or day of
its age), and are rendered again from then on.

**What differs between two pages that show the same rows** — the form token, the page's
own address (the rows' forms come back to it) and the open conversation (marked in the
list) — is rendered as markers, and filled in for each page.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template, request
from markupsafe import Markup, escape

from . import templating
from .lru import Store
from .services import messaging, organise
from .templating import page_value

EXTENSION = "linkmsg.list_pane"
# A marker: NUL and a secret of the process's own. Requests carrying NUL are refused
# and PostgreSQL refuses it in text, but SQLite would keep one that got in some other
# way; the secret never leaves the process (every marker is filled before a page
# goes out), so no text a member wrote can read as a marker.
_SECRET = secrets.token_hex(8)
_MARK = f"\x00list-{_SECRET}:{{}}\x00"
_MARKS = re.compile(f"\x00list-{_SECRET}:(here|csrf|open)(?::([0-9]+))?\x00")
HERE = _MARK.format("here")
CSRF = _MARK.format("csrf")
_OPEN = Markup(' aria-current="page"')


class _OpenMark:
    """`open_thread_id` of rows rendered to keep: each row says where it would be open."""


OPEN = _OpenMark()


def opened(thread_id: int, open_thread_id) -> Markup:
    """A row's link: marked as the page's open conversation (for templates)."""
    if open_thread_id is OPEN:
        return Markup(_MARK.format(f"open:{int(thread_id)}"))
    return _OPEN if open_thread_id == thread_id else Markup("")


@dataclass(frozen=True)
class Kept:
    """Rows rendered with markers: the text between them and the markers, alternately
    (`re.split` of the markers, each marker as its name and number), and when the first
    of the rows' times turns (`templating.timeago_turns`)."""

    parts: tuple
    until: datetime

    def current(self) -> bool:
        return templating.utcnow() < self.until

    def fill(self, here: str, open_thread_id: int | None) -> Markup:
        here, token = str(escape(here)), str(escape(templating.csrf_token()))
        is_open = str(open_thread_id) if open_thread_id is not None else None
        parts = self.parts
        out = [parts[0]]
        for at in range(1, len(parts), 3):
            name, number = parts[at], parts[at + 1]
            if name == "csrf":
                out.append(token)
            elif name == "here":
                out.append(here)
            elif number == is_open:
                out.append(_OPEN)
            out.append(parts[at + 2])
        return Markup("".join(out))


def init_app(app) -> None:
    size = int(app.config.get("LIST_PANE_ENTRIES", 0))
    app.extensions[EXTENSION] = Store(size) if size > 0 else None
    app.jinja_env.globals["opened"] = opened


def store() -> Store | None:
    return current_app.extensions.get(EXTENSION)


def thread_rows(
    member_id: int,
    *,
    selected: str,
    label,
    before: int | None,
    here: str,
    open_thread_id: int | None = None,
) -> Markup:
    """The rows of one of the member's lists (`selected` a filter, or `label`), from
    `before` on, for the page at `here` with `open_thread_id` open."""
    shown = f"label:{label.id}" if label else selected
    # The rows' links are built for where the app is mounted.
    key = (request.script_root, member_id, shown, label.name if label else None, before)
    kept_lists = store()
    state = page_value(member_id, "list_state") if kept_lists is not None else None
    if state is not None:
        kept = kept_lists.get((*key, state))
        if kept is not None and kept.current():
            kept_lists.used += 1
            return kept.fill(here, open_thread_id)
    page = messaging.inbox_page(
        member_id,
        unread_only=selected == "unread",
        inmail_only=selected == "inmail",
        archived=selected == "archived",
        label_id=label.id if label else None,
        before=before,
    )
    context = {
        "rows": page.rows,
        "cursor": page.cursor,
        "selected": selected,
        "label": label,
        "shown": shown,
        "archived_count": (
            organise.archived_count(member_id)
            if not page.rows and selected == "all" and before is None
            else 0
        ),
    }
    if kept_lists is None or page.state is None:
        return Markup(
            render_template(
                "messaging/_thread_rows.html", here=here, open_thread_id=open_thread_id, **context
            )
        )
    now = templating.utcnow()
    until = min(
        (templating.timeago_turns(row.last.created_at, now) for row in page.rows),
        default=datetime.max,
    )
    html = render_template(
        "messaging/_thread_rows.html",
        here=HERE,
        open_thread_id=OPEN,
        csrf_token=lambda: CSRF,
        **context,
    )
    kept = Kept(tuple(_MARKS.split(html)), until)
    # A time that turned while rendering: the rows may read either way, keep nothing.
    if kept.current():
        kept_lists.put((*key, page.state), kept)
    return kept.fill(here, open_thread_id)
