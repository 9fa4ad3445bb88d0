"""What an event looks like on a member's open pages: HTML made of out-of-band swaps.

One event carries every piece of the page it changes — the message appended to an open
thread, the thread's row at the top of the inbox, the navigation badges, a sentence for
screen readers — each rendered from the same partial the full pages use. A piece whose
target is not on the page is ignored by htmx.
"""

from __future__ import annotations

from flask import current_app

from .extensions import db
from .forms import MessageForm
from .models import THREAD_INMAIL, Event, Member, Message
from .services import events, groups, inmail, messaging, notifications, threads
from .services.errors import NotFound
from .templating import nav_counts


def render_for(member: Member, template: str, **context) -> str:
    """Render a live piece as `member`'s page shows it.

    Live pieces are rendered in the request of whoever caused the event (the trade-off
    is stated in `realtime/__init__.py`), so nothing of that request may reach them: the
    template is rendered without the request's context processors and sees `member` as
    `me`, that member's own navigation counts, and an empty CSRF token (htmx sends the
    page's own token as a header, which CSRFProtect accepts for the page's forms).
    """
    counts = nav_counts(member)
    return current_app.jinja_env.get_template(template).render(
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
    member = db.session.get(Member, event.member_id)
    if member is None:
        return ""
    renderer = _RENDERERS.get(event.kind)
    return renderer(member, event) if renderer else ""


def _message(member: Member, event: Event) -> str:
    payload = event.payload
    message = db.session.get(Message, payload["message_id"])
    try:
        view = threads.get_thread_for(member.id, payload["thread_id"])
    except NotFound:
        return _badges(member)
    row = messaging.inbox_row(member.id, view.thread.id)
    # In a group, who sent it (and whether the member blocked them) is looked up.
    cast = groups.cast(member.id, [message]) if view.is_group else None
    sender = member if message.sender_id == member.id else view.other
    if cast is not None and message.sender_id != member.id:
        sender = cast.sender(message)
    return render_for(
        member,
        "live/_message_event.html",
        view=view,
        message=message,
        row=row,
        sender=sender,
        cast=cast,
        **(_inmail_status(member, view) if message.sender_id != member.id else {}),
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
    return render_for(member, "live/_badges.html")


_RENDERERS = {
    events.MESSAGE: _message,
    events.THREAD_CHANGED: _read,
    events.NOTIFICATION: _notification,
    events.INMAIL_ANSWERED: _inmail_answered,
}
