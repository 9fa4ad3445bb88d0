"""What an event looks like on a member's open pages: HTML made of out-of-band swaps.

One event carries every piece of the page it changes — the message appended to an open
thread, the thread's row at the top of the inbox, the navigation badges, a sentence for
screen readers — each rendered from the same partial the full pages use. A piece whose
target is not on the page is ignored by htmx.
"""

from __future__ import annotations

from flask import current_app, g
from flask import render_template as _render_template

from .extensions import db
from .forms import MessageForm
from .models import THREAD_INMAIL, Event, InMail, Member, Message
from .services import events, messaging, notifications
from .services.errors import NotFound
from .templating import nav_counts


def render_template(template: str, **context) -> str:
    """Render a live piece. It is rendered in the request of whoever caused the event, so
    `csrf_token()` must not put *their* token into another member's page: forms in live
    pieces carry an empty token field, and htmx sends the page's own token as a header."""
    g.rendering_live = True  # the page counts of the request's own member are not needed
    try:
        return _render_template(template, csrf_token=_no_token, live=True, **context)
    finally:
        g.rendering_live = False


def _no_token() -> str:
    return ""


def render(event: Event) -> str:
    member = db.session.get(Member, event.member_id)
    if member is None:
        return ""
    renderer = _RENDERERS.get(event.kind)
    return renderer(member, event) if renderer else ""


def _counts(member: Member) -> dict:
    counts = nav_counts(member)
    return {
        "unread_threads": counts.get("unread", 0),
        "unread_notifications": counts.get("notifications", 0),
    }


def _message(member: Member, event: Event) -> str:
    payload = event.payload
    message = db.session.get(Message, payload["message_id"])
    try:
        view = messaging.get_thread_for(member.id, payload["thread_id"])
    except NotFound:
        return _badges(member)
    row = messaging.inbox_row(member.id, view.thread.id)
    sender = member if message.sender_id == member.id else view.other
    return render_template(
        "live/_message_event.html",
        me=member,
        view=view,
        message=message,
        row=row,
        sender=sender,
        **(_inmail_answered(member, view) if message.sender_id != member.id else {}),
        **_counts(member),
    )


def _inmail_declined(member: Member, event: Event) -> str:
    try:
        view = messaging.get_thread_for(member.id, event.payload["thread_id"])
    except NotFound:
        return _badges(member)
    return render_template(
        "live/_inmail_answered.html",
        me=member,
        view=view,
        **_inmail_answered(member, view),
        **_counts(member),
    )


def _inmail_answered(member: Member, view) -> dict:
    """An answer to the member's InMail: its status and the reply box change on the page."""
    if view.thread.kind != THREAD_INMAIL:
        return {}
    answered = db.session.scalar(
        db.select(Message)
        .join(InMail, InMail.message_id == Message.id)
        .where(InMail.thread_id == view.thread.id, InMail.sender_id == member.id)
        .order_by(InMail.id.desc())
        .limit(1)
    )
    return {
        "answered": answered,
        "permission": messaging.reply_permission(view, member),
        # No CSRF field: a live piece is rendered in another member's request; htmx sends
        # the page's own token as a header, which CSRFProtect checks for the form.
        "form": MessageForm(formdata=None, meta={"csrf": False}),
    }


def _read(member: Member, event: Event) -> str:
    try:
        view = messaging.get_thread_for(member.id, event.payload["thread_id"])
    except NotFound:
        return _badges(member)
    row = messaging.inbox_row(member.id, view.thread.id)
    return render_template("live/_read_event.html", me=member, row=row, **_counts(member))


def _notification(member: Member, event: Event) -> str:
    # The line the notifications page shows for it: alone, or the group it joined.
    found = notifications.group_of(
        member.id,
        event.payload["notification_id"],
        limit=current_app.config["NOTIFICATIONS_PER_PAGE"],
    )
    if found is None:
        return _badges(member)
    return render_template(
        "live/_notification_event.html",
        me=member,
        group=found,
        unread_ids={n.id for n, _ in found.items if n.read_at is None},
        **_counts(member),
    )


def _badges(member: Member) -> str:
    return render_template("live/_badges.html", me=member, **_counts(member))


_RENDERERS = {
    events.MESSAGE: _message,
    events.READ: _read,
    events.NOTIFICATION: _notification,
    events.INMAIL_ANSWERED: _inmail_declined,
}
