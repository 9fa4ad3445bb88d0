"""A message's HTML, kept per process and used again when the message is shown again.

A conversation page draws each of its messages with `messaging/_message.html`: about
0.06 ms a message on the bench machine, 1.8 ms of the 7.6 ms a page of 30 older messages
cost (bench/README.md). A message never changes once written, and everything else its
HTML is drawn from is in hand when it is drawn, so the key is all of it:

- the message itself: its id, kind, body, time and files (never changed by the app, but
  in the key all the same, so that a kept piece can never disagree with the row);
- where it sits: whether it starts a run, the day separator before it and that day's
  label ("Today" turns into "Yesterday" at midnight);
- who it is from as the reader sees them: whether it is the reader's own, the sender's
  id, name, handle and picture, whether the reader blocked them (in a group it shows
  collapsed);
- whether it is the one a search result opened (highlighted), whether it is swapped in
  out of band, and the mount point the links are built for.

A kept piece is only ever used for a message the page's own statement returned, so the
cache decides nothing about who may read what. System lines and InMail are drawn every
time: a system line names the people it is about, and an InMail's answer form carries the
page's form token. The most recently used `MESSAGE_HTML_ENTRIES` pieces are kept (0 keeps
none), each of at most MOST_CHARACTERS: about 2 KB a message, 64 MB at the very worst
(2,000 pieces of 4,096 characters of four-byte text, with their bodies in the keys).
"""

from __future__ import annotations

from flask import current_app, request
from jinja2 import pass_context
from markupsafe import Markup

from .forms import MessageForm, new_idempotency_key
from .lru import Store

EXTENSION = "linkmsg.message_html"


# A message drawn longer than this is drawn every time: the store is bounded by count, and
# a message of 8,000 characters of links draws to some 100,000 characters of HTML.
MOST_CHARACTERS = 4096


class MessageStore(Store):
    """The kept pieces of a process; with `verify`, every piece found is drawn again
    and compared (the test suite runs so: an input `_message.html` gained and `_key` was
    not given fails whichever test draws that message twice)."""

    def __init__(self, size: int, verify: bool = False):
        super().__init__(size)
        self.verify = verify


def init_app(app) -> None:
    size = int(app.config.get("MESSAGE_HTML_ENTRIES", 0))
    verify = bool(app.config.get("KEPT_HTML_VERIFY"))
    app.extensions[EXTENSION] = MessageStore(size, verify) if size > 0 else None
    app.jinja_env.globals["kept_message"] = kept_message
    app.jinja_env.globals["thread_header_key"] = thread_header_key
    app.jinja_env.globals["reply_key"] = reply_key
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
    app.jinja_env.globals["new_message_form"] = lambda: MessageForm(formdata=None)


def store() -> MessageStore | None:
    return current_app.extensions.get(EXTENSION)


def _key(context, placed) -> tuple | None:
    """Everything `_message.html` draws this message from, or None when it is drawn
    from more (a system line, an InMail) or differs in ways not listed here."""
    message = placed.message
    if message.is_system or message.inmail is not None:
        return None
    me, cast, view = context.get("me"), context.get("cast"), context.get("view")
    if me is None or view is None:
        return None
    # A page drawn with URLs of its own keeps nothing and uses nothing kept. (No form
    # token is in a kept piece: only an InMail's answer form has one.)
    if context.get("url_for") is not context.environment.globals.get("url_for"):
        return None
    mine = message.sender_id == me.id
    sender = me if mine else (cast.sender(message) if cast else view.other)
    if sender is None:
        return None
    highlight = context.get("highlight")
    return (
        request.script_root,
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


class _Found:
    """What `kept_message` found for one message: its kept HTML, or None and a way to
    keep the HTML the template draws for it."""

    __slots__ = ("html", "key", "store", "kept")

    def __init__(self, html, key, store, kept=None):
        self.html, self.key, self.store, self.kept = html, key, store, kept

    def keep(self, html) -> Markup:
        html = Markup(html)
        if self.kept is not None and self.kept != html:
            raise AssertionError(f"a kept message differs from its drawing: {self.key!r}")
        if self.key is not None and len(html) <= MOST_CHARACTERS:
            self.store.put(self.key, html)
        return html


@pass_context
def kept_message(context, placed) -> _Found:
    """For one placed message of a page (`conversation.Placed`): its kept HTML, if any."""
    kept = store()
    key = _key(context, placed) if kept is not None else None
    html = kept.get(key) if key is not None else None
    if html is None:
        return _Found(None, key, kept)
    kept.used += 1
    if kept.verify:
        return _Found(None, key, kept, html)
    return _Found(html, key, kept)


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
