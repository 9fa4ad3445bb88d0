"""What an event looks like on a member's open pages: HTML made of out-of-band swaps.

One event carries every piece of the page it changes — the message appended to an open
thread, the thread's row at the top of the inbox, the navigation badges, a sentence for
screen readers — each rendered from the same partial the full pages use. A piece whose
target is not on the page is ignored by htmx.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import current_app, g, url_for
from markupsafe import Markup
from sqlalchemy.orm import joinedload

from .extensions import db
from .forms import MessageForm
from .models import THREAD_INMAIL, Event, Member, Message
from .services import conversation, events, groups, inmail, messaging, notifications, threads
from .services.errors import NotFound
from .templating import members_with_counts, nav_counts


@dataclass
class _Batch:
    """What the events of one commit need, looked up together: a message to a group of
    50 is 50 events, and one at a time each would look up its member, counts, view and
    row on its own (hundreds of statements in the sender's request)."""

    members: dict[int, Member] = field(default_factory=dict)
    counts: dict[int, dict] = field(default_factory=dict)
    views: dict[tuple[int, int], threads.ThreadView] = field(default_factory=dict)
    rows: dict[tuple[int, int], messaging.InboxRow] = field(default_factory=dict)
    placed: dict[int, conversation.Placed] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    # The URLs the pieces link to, built once per batch: the thread row alone builds five
    # per member (werkzeug's build was a sixth of the row's render).
    urls: dict[tuple, str] = field(default_factory=dict)

    casts: dict[int, groups.Cast] = field(default_factory=dict)
    # A group message as it shows in the thread, rendered once per way of seeing it.
    appended: dict[tuple, Markup] = field(default_factory=dict)
    # A group's thread row, by everything it is rendered from (`_row_inputs`).
    row_html: dict[tuple, str] = field(default_factory=dict)
    row_keys: dict[tuple[int, int], tuple] = field(default_factory=dict)  # as `rows`
    # A group message's whole event but the badges, by `event_key`; the badges by counts.
    events: dict[tuple, str] = field(default_factory=dict)
    badges: dict[tuple, str] = field(default_factory=dict)

    def cast(self, member_id: int, message: Message) -> groups.Cast:
        """Who a group message is from, for a member it went to: the same for all of
        them in a batch — a member who blocked the sender is never sent it live."""
        if (message.thread_id, member_id) not in self.views:
            return groups.cast(member_id, [message])
        if message.id not in self.casts:
            self.casts[message.id] = groups.cast(None, [message])
        return self.casts[message.id]

    def appended_html(self, member: Member, message: Message, render) -> Markup:
        """The message as `member`'s open thread appends it: in a batch, the same HTML for
        every member but its sender (a system line names the reader: one each)."""
        if (message.thread_id, member.id) not in self.views:
            return render()
        mine = message.sender_id == member.id
        key = (message.id, member.id if message.is_system else mine)
        if key not in self.appended:
            self.appended[key] = render()
        return self.appended[key]

    def row_key(self, member: Member, row: messaging.InboxRow) -> tuple | None:
        """`_row_inputs` of a group row looked up in the batch (None for any other)."""
        key = (row.membership.thread_id, member.id)
        if key not in self.rows:
            return None
        if key not in self.row_keys:
            self.row_keys[key] = _row_inputs(member, row)
        return self.row_keys[key]

    def event_key(self, member: Member, message: Message, view, row) -> tuple | None:
        """Everything a group message's event reads but the badges: its message (the
        same HTML for all but its sender, `appended_html`), the reader's row, and whether
        they sent it (no read receipt, no announcement) — a system line names its reader.
        None outside a batch, and for InMail (whose status is the member's own)."""
        if row is None or view.thread.kind == THREAD_INMAIL:
            return None
        row_key = self.row_key(member, row)
        if row_key is None or (message.thread_id, member.id) not in self.views:
            return None
        mine = message.sender_id == member.id
        return (message.id, member.id if message.is_system else mine, row_key)

    def url_for(self, endpoint: str, **values) -> str:
        """`flask.url_for`, each URL built once in the batch (the same request, the same
        arguments: the same URL)."""
        try:
            key = (endpoint, *sorted(values.items()))
            hash(key)
        except TypeError:
            return url_for(endpoint, **values)
        if key not in self.urls:
            self.urls[key] = url_for(endpoint, **values)
        return self.urls[key]

    def place_appended(self, message: Message) -> conversation.Placed:
        """Where a new message goes on an open page: the same for every member."""
        if message.id not in self.placed:
            self.placed[message.id] = conversation.place_appended(message)
        return self.placed[message.id]


@contextmanager
def batch(rows: list[Event]):
    """Render the events `rows` inside this block with their lookups done in a few
    statements, whatever their number."""
    try:
        found = _look_up(rows)
    except Exception as error:  # the database went away: each event looks up its own
        current_app.logger.warning("could not look up live events together: %s", error)
        db.session.rollback()
        found = _Batch()
    g.live_batch = found
    try:
        yield
    finally:
        g.pop("live_batch", None)


def _look_up(rows: list[Event]) -> _Batch:
    found = _Batch()
    ids = sorted({row.member_id for row in rows})
    if len(ids) > 1:
        for member, counts in members_with_counts(ids):
            found.members[member.id] = member
            found.counts[member.id] = counts
        by_thread = defaultdict(set)
        message_ids = set()
        for row in rows:
            if row.kind == events.MESSAGE:
                by_thread[row.payload["thread_id"]].add(row.member_id)
                message_ids.add(row.payload["message_id"])
        if message_ids:
            found.messages = {
                message.id: message
                for message in db.session.scalars(
                    db.select(Message)
                    .options(joinedload(Message.inmail))
                    .where(Message.id.in_(sorted(message_ids)))
                )
            }
        for thread_id, member_ids in by_thread.items():
            if len(member_ids) < 2:
                continue
            views = threads.views_for(thread_id, sorted(member_ids))  # groups only
            if views:
                found.views.update(((thread_id, m), view) for m, view in views.items())
                rows_for = messaging.inbox_rows_for(thread_id, sorted(views))
                found.rows.update(((thread_id, m), row) for m, row in rows_for.items())
    return found


def _batched() -> _Batch:
    return g.get("live_batch") or _Batch()


def render_for(member: Member, template: str, **context) -> str:
    """Render a live piece as `member`'s page shows it.

    Live pieces are rendered in the request of whoever caused the event (the trade-off
    is stated in `realtime/__init__.py`), so nothing of that request may reach them: the
    template is rendered without the request's context processors and sees `member` as
    `me`, that member's own navigation counts, and an empty CSRF token (htmx sends the
    page's own token as a header, which CSRFProtect accepts for the page's forms).
    """
    found = _batched()
    counts = found.counts.get(member.id) or nav_counts(member)
    return current_app.jinja_env.get_template(template).render(
        url_for=found.url_for,
        me=member,
        unread_threads=counts.get("unread", 0),
        unread_notifications=counts.get("notifications", 0),
        csrf_token=_no_token,
        **context,
    )


def _no_token() -> str:
    return ""


def _reply_form() -> MessageForm:
    """The reply box's form in a live piece: without a token field (see `render_for`)."""
    return MessageForm(formdata=None, meta={"csrf": False})


def render(event: Event) -> str:
    member = _batched().members.get(event.member_id) or db.session.get(Member, event.member_id)
    if member is None:
        return ""
    renderer = _RENDERERS.get(event.kind)
    return renderer(member, event) if renderer else ""


def _message(member: Member, event: Event) -> str:
    payload = event.payload
    found = _batched()
    message = found.messages.get(payload["message_id"]) or db.session.get(
        Message, payload["message_id"]
    )
    key = (payload["thread_id"], member.id)
    view = found.views.get(key)
    if view is None:
        try:
            view = threads.get_thread_for(member.id, payload["thread_id"])
        except NotFound:
            return _badges(member)
    row = found.rows[key] if key in found.rows else messaging.inbox_row(member.id, view.thread.id)
    # In a batch, members whose pieces read the same get the same HTML (`_Batch.event_key`).
    event_key = found.event_key(member, message, view, row)
    html = found.events.get(event_key) if event_key is not None else None
    if html is None:
        html = _message_html(member, message, view, row)
        if event_key is not None:
            found.events[event_key] = html
    return html + _badges(member)


def _message_html(member: Member, message: Message, view: threads.ThreadView, row) -> str:
    """A new message's pieces but the badges: the message, the row, the announcement."""
    found = _batched()
    # In a group, who sent it (and whether the member blocked them) is looked up.
    cast = found.cast(member.id, message) if view.is_group else None
    sender = member if message.sender_id == member.id else view.other
    if cast is not None and message.sender_id != member.id:
        sender = cast.sender(message)
    context = {"view": view, "message": message, "sender": sender, "cast": cast}
    message_html = found.appended_html(
        member,
        message,
        lambda: Markup(
            render_for(
                member,
                "live/_appended_message.html",
                place_appended=found.place_appended,
                **context,
            )
        ),
    )
    return render_for(
        member,
        "live/_message_event.html",
        row=row,
        message_html=message_html,
        **_rows_html(member, row),
        **context,
        **(_inmail_status(member, view) if message.sender_id != member.id else {}),
    )


def _rows_html(member: Member, row: messaging.InboxRow | None) -> dict:
    """The thread's row for the main list, and its copy for the filed lists (archived,
    a label's list) as an out-of-band swap: rendered once, the copy renamed — the row is
    most of the cost of a live event, paid for each member of a group, unless another
    member's row in the batch reads the same (`_row_inputs`)."""
    if row is None:
        return {}
    found = _batched()
    key = found.row_key(member, row)
    html = found.row_html.get(key) if key is not None else None
    if html is None:
        html = str(render_for(member, "messaging/_thread_row.html", row=row))
        if key is not None:
            found.row_html[key] = html
    thread_id = row.membership.thread_id
    listed = f'id="thread-row-{thread_id}"'
    filed = f'id="filed-row-{thread_id}" hx-swap-oob="outerHTML"'
    return {"row_html": Markup(html), "filed_row_html": Markup(html.replace(listed, filed, 1))}


def _row_inputs(member: Member, row: messaging.InboxRow) -> tuple:
    """Everything `messaging/_thread_row.html` reads, as a live piece renders it (no
    `here`, `shown`, `oob` or open thread; the same moment for the whole batch): two
    members whose rows agree on all of it get the same HTML. A field the row template
    starts to read must be added here; `tests/test_live_row.py` compares every member's
    live row with their own inbox page's."""
    tm, last, group = row.membership, row.last, row.group

    def person(who):
        return None if who is None else (who.id, who.name, who.handle, who.avatar_key)

    return (
        tm.thread_id,
        tm.archived,
        tm.muted,
        row.unread,
        row.kind,
        last,  # a frozen dataclass: every field of the preview
        last.sender_id == member.id,  # "You: "
        tuple((label.id, label.name) for label in row.labels),
        (person(row.other), row.other.headline) if row.other is not None else None,
        None
        if group is None
        else (
            group.name,
            tuple(person(m) for m in group.members),
            person(group.last_sender),
            group.collapsed,
            group.line,
        ),
    )


def _inmail_answered(member: Member, event: Event) -> str:
    try:
        view = threads.get_thread_for(member.id, event.payload["thread_id"])
    except NotFound:
        return _badges(member)
    return render_for(
        member,
        "live/_inmail_answered.html",
        view=view,
        **_inmail_status(member, view),
    )


def _inmail_status(member: Member, view: threads.ThreadView) -> dict:
    """An answer to the member's InMail: its status and the reply box change on the page."""
    if view.thread.kind != THREAD_INMAIL:
        return {}
    return {
        "answered": inmail.latest_sent_message(view.thread.id, member.id),
        "permission": messaging.reply_permission(view, member),
        "form": _reply_form(),
    }


def _read(member: Member, event: Event) -> str:
    try:
        view = threads.get_thread_for(member.id, event.payload["thread_id"])
    except NotFound:
        return _badges(member)
    row = messaging.inbox_row(member.id, view.thread.id)
    return render_for(member, "live/_read_event.html", row=row)


def _notification(member: Member, event: Event) -> str:
    # The line the notifications page shows for it: alone, or the group it joined, by
    # the page's rule (an actor blocked since, or suspended, is not shown).
    found = notifications.group_of(
        member.id,
        event.payload["notification_id"],
        limit=current_app.config["NOTIFICATIONS_PER_PAGE"],
    )
    if found is None:
        return _badges(member)
    return render_for(
        member,
        "live/_notification_event.html",
        group=found,
        unread_ids={n.id for n, _ in found.items if n.read_at is None},
    )


def _badges(member: Member) -> str:
    """Both badges, rendered once per pair of counts in a batch."""
    found = _batched()
    counts = found.counts.get(member.id)
    if counts is None:
        return render_for(member, "live/_badges.html")
    key = (counts.get("unread", 0), counts.get("notifications", 0))
    if key not in found.badges:
        found.badges[key] = render_for(member, "live/_badges.html")
    return found.badges[key]


_RENDERERS = {
    events.MESSAGE: _message,
    events.THREAD_CHANGED: _read,
    events.NOTIFICATION: _notification,
    events.INMAIL_ANSWERED: _inmail_answered,
}
