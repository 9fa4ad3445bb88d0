"""What a conversation's pieces are kept drawn by (`{% keep %}`, linkmsg/pieces.py):
each of its messages, a one-to-one conversation's header and its reply box.

**Messages.** A conversation page draws each of its messages with
`messaging/_message.html`: about 0.06 ms a message on the bench machine, 1.8 ms of the
7.6 ms a page of 30 older messages cost (bench/README.md). A message never changes once
written, and everything else its HTML is drawn from is in hand when it is drawn, so the
key is all of it:

- the message itself: its id, kind, body, time and files (never changed by the app, but
  in the key all the same, so that a kept piece can never disagree with the row);
- where it sits: whether it starts a run, the day separator before it and that day's
  label ("Today" turns into "Yesterday" at midnight);
- who it is from as the reader sees them: whether it is the reader's own, the sender's
  id, name, handle and picture, whether the reader blocked them (in a group it shows
  collapsed);
- whether it is the one a search result opened (highlighted), and whether it is swapped
  in out of band (the tag adds the mount point the links are built for).

A kept piece is only ever used for a message the page's own statement returned, so the
cache decides nothing about who may read what. System lines and InMail are drawn every
time: a system line names the people it is about, and an InMail shows its answer. The
most recently used `MESSAGE_HTML_ENTRIES` pieces are kept (0 keeps none), each of at most
MOST_CHARACTERS: about 2 KB a message, 64 MB at the very worst (2,000 pieces of 4,096
characters of four-byte text, with their bodies in the keys).

**The header and the reply box** are keyed below (`thread_header_key`, `reply_key`), in
the store of `PIECE_HTML_ENTRIES`.
"""

from __future__ import annotations

from flask import current_app
from jinja2 import pass_context

from .forms import MessageForm, new_idempotency_key

# A message drawn longer than this is drawn every time: the store is bounded by count, and
# a message of 8,000 characters of links draws to some 100,000 characters of HTML.
MOST_CHARACTERS = 4096


def init_app(app) -> None:
    app.jinja_env.globals["message_key"] = message_key
    app.jinja_env.globals["thread_header_key"] = thread_header_key
    app.jinja_env.globals["reply_key"] = reply_key
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
    app.jinja_env.globals["new_message_form"] = lambda: MessageForm(formdata=None)


@pass_context
def message_key(context, placed) -> tuple | None:
    """Everything `_message.html` draws a placed message (`conversation.Placed`) from,
    or None when it is drawn from more (a system line, an InMail)."""
    message = placed.message
    if message.is_system or message.inmail is not None:
        return None
    me, cast, view = context.get("me"), context.get("cast"), context.get("view")
    if me is None or view is None:
        return None
    mine = message.sender_id == me.id
    sender = me if mine else (cast.sender(message) if cast else view.other)
    if sender is None:
        return None
    highlight = context.get("highlight")
    return (
        message.id,
        message.kind,
        message.sender_id,
        message.body,
        message.created_at,
        tuple(
            (file.id, file.name, file.size, file.content_type, file.thumb_key)
            for file in message.attachments
        ),
        placed.starts_group,
        placed.day,
        placed.day_label,
        mine,
        sender.id,
        sender.name,
        sender.handle,
        sender.avatar_key,
        bool(cast and cast.collapsed(message)),
        highlight is not None and highlight == message.id,
        bool(context.get("oob")),
    )


def _pairs(labels) -> tuple:
    return tuple((label.id, label.name) for label in labels or ())


@pass_context
def thread_header_key(context) -> tuple | None:
    """Everything a one-to-one conversation's header (`_thread_header.html`, with its
    tools and menu) is drawn from: the thread and the reader's side of it, the other
    member as shown, their degree and active status, the reader's labels and which of
    them the thread has. A group's header is drawn every time."""
    view, other = context.get("view"), context.get("other")
    if view is None or other is None or view.is_group or view.membership is None:
        return None
    return (
        view.thread.id,
        bool(view.membership.archived),
        bool(view.membership.muted),
        other.id,
        other.handle,
        other.name,
        other.headline,
        other.avatar_key,
        str(context.get("degree")),
        context.get("active"),
        _pairs(context.get("thread_labels")),
        _pairs(context.get("labels")),
    )


@pass_context
def reply_key(context) -> tuple | None:
    """Everything the reply box (`_reply.html`) is drawn from, for a new form (`form`
    none, or nothing typed and no errors): the thread, whether the reader may still
    write and why not, whether it is swapped in out of band, and whether the form has
    a token field. The form's own idempotency key is a slot, filled for each page; a
    form that comes back with what was typed is drawn every time."""
    view, permission, form = context.get("view"), context.get("permission"), context.get("form")
    if view is None or permission is None:
        return None
    if form is None:  # a new form, drawn with the app's settings
        csrf = bool(current_app.config.get("WTF_CSRF_ENABLED", True))
    elif form.body.data or form.body.errors or form.files.errors:
        return None
    else:
        csrf = bool(form.meta.csrf)
    return (view.thread.id, permission.allowed, permission.reason, bool(context.get("oob")), csrf)
