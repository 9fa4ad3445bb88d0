"""Messaging: the inbox, a thread, the compose form. Every rule is in services.messaging."""

from flask import Blueprint, abort, current_app, request, send_file, url_for
from flask_login import current_user, login_required

from .. import list_pane
from ..extensions import limiter
from ..forms import MessageForm
from ..services import (
    attachments,
    conversation,
    degrees,
    directory,
    groups,
    messaging,
    organise,
    presence,
    threads,
)
from ..services.errors import ValidationFailed
from ..services.permission import ALLOWED, MessagingRefused
from ..storage import get_storage
from ..templating import NAV_COUNTERS, page_value
from ..web import is_htmx, parse_id, render, see_other, takes_uploads

bp = Blueprint("messaging", __name__)

NAV_COUNTERS["unread"] = lambda member: messaging.unread_thread_count_query(member.id)

FILTERS = ("all", "unread", "inmail", "archived")

# Every way of sending shares one per-member budget of messages a minute.
message_limit = limiter.shared_limit(
    lambda: current_app.config["MESSAGE_RATE_LIMIT"], scope="messages", methods=["POST"]
)
# New conversations per day (NEW_THREAD_RATE_LIMIT) are counted by the messaging service,
# in the transaction that starts one: a count here and an insert there would let
# overlapping requests through together.


def uploads() -> list[attachments.Upload]:
    return [
        attachments.Upload(f.filename, f.stream)
        for f in request.files.getlist("files")
        if f and f.filename
    ]


def _field(form, error):
    """The form field a validation error belongs next to."""
    return form.files if error.field == "files" else form.body


def _int_arg(name: str) -> int | None:
    return parse_id(request.args.get(name))


@bp.route("/messaging")
@login_required
def inbox():
    selected = request.args.get("filter", "all")
    if selected not in FILTERS:
        selected = "all"
    label = None
    if request.args.get("label"):
        # Only the member's own labels exist for them: anyone else's name is a 404.
        label = organise.label_named(current_user.id, request.args["label"])
        selected = "label"
    return render(
        "messaging/inbox.html",
        "messaging/_thread_list.html",
        **_thread_list(selected, label, _int_arg("before")),
    )


def _thread_list(
    selected: str = "all",
    label=None,
    before: int | None = None,
    labels=None,
    open_thread_id: int | None = None,
) -> dict:
    """The Messaging list (the left pane of every Messaging page): one filter, one page.
    `labels`: the member's labels, when the page has loaded them already."""
    here = request.full_path.rstrip("?")
    return {
        "thread_rows": list_pane.thread_rows(
            current_user.id,
            selected=selected,
            label=label,
            before=before,
            here=here,
            open_thread_id=open_thread_id,
        ),
        "selected": selected,
        "filters": FILTERS,
        "label": label,
        "labels": member_labels() if labels is None else labels,
        "here": here,
    }


def member_labels() -> list:
    """The member's labels: read with the member for a Messaging page, else asked now."""
    found = page_value(current_user.id, "labels")
    return organise.labels(current_user.id) if found is None else found


def _page(view, page=None, **where) -> dict:
    """A page of the thread's messages as the member may read them (`page` when it was
    read with the view), and in a group who they are from (`cast`)."""
    if page is None:
        page = messaging.messages(
            view.thread.id, kind=view.thread.kind, reader_id=current_user.id, **where
        )
    cast = None
    if view.is_group:  # read with the messages; asked here only if it was not
        cast = page.cast or groups.cast(current_user.id, page.messages)
    return {"page": page, "cast": cast}


def thread_context(view, *, before=None, after=None, at=None, page=None, form=None, **extra):
    permission = messaging.reply_permission(view, current_user)
    facts = view.facts_for(current_user.id)
    if facts is None:
        labels, thread_labels = organise.labels_for_thread(current_user.id, view.thread.id)
    else:
        labels = member_labels()
        thread_labels = [label for label in labels if label.id in facts.label_ids]
    degree = messaging.thread_degree(view, current_user, permission)
    group = groups.header(view, current_user.id) if view.is_group else None
    return {
        "view": view,
        "open_thread_id": view.thread.id,
        "other": view.other,
        "group": group,
        "title": group.name if group else view.other.name,
        **_page(view, page, before=before, after=after, at=at),
        **extra,
        "highlight": at,
        "labels": labels,
        "thread_labels": thread_labels,
        "permission": permission,
        # None: a new form, drawn only when its kept reply box is not (_reply.html).
        "form": form,
        "degree": degrees.degree_label(degree),
        "active": presence.active_status(view.other, current_user) if view.other else None,
    }


@bp.route("/messaging/t/<id:thread_id>")
@login_required
def thread(thread_id: int):
    before, after, at = _int_arg("before"), _int_arg("after"), _int_arg("at")
    if before is not None and is_htmx():
        # "Load older messages" swapped in place: the older page alone, and the message
        # that headed the page shown (read with it) when it now continues the older
        # page's last run.
        view = threads.get_thread_for(current_user.id, thread_id)
        older = _page(view, before=before, and_before=True)
        page = older["page"]
        return render(
            "messaging/_older.html",
            view=view,
            rejoined=conversation.rejoined(
                thread_id, before, page.messages, read=page.before_message
            ),
            **older,
        )
    # The page decides from what is read with the thread: the blocks, the connection,
    # its labels, its InMails; and as it opens, its newest messages when it is an
    # ordinary thread.
    if before is None and after is None and at is None:
        view, newest = messaging.open_thread(current_user.id, thread_id)
        # Done before loading the rest, so the commit does not expire what it renders.
        messaging.opened(current_user.id, view)
        return thread_page(thread_context(view, page=newest))
    view = threads.get_thread_for(current_user.id, thread_id, facts=True)
    return thread_page(thread_context(view, before=before, after=after, at=at))


def thread_page(context: dict, status: int = 200):
    """The conversation beside the Messaging list; the conversation pane alone for a
    thread chosen in the list with htmx (the list stays as it is)."""
    if not is_htmx():
        context |= _thread_list(labels=context["labels"], open_thread_id=context["open_thread_id"])
    return render(
        "messaging/thread.html", "messaging/_conversation_pane.html", status=status, **context
    )


@bp.route("/messaging/t/<id:thread_id>", methods=["POST"])
@takes_uploads()
@login_required
@message_limit
def reply(thread_id: int):
    view = threads.get_thread_for(current_user.id, thread_id)
    form = MessageForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        sent = messaging.reply(
            current_user,
            thread_id,
            form.body.data,
            idempotency_key=form.idempotency_key.data,
            uploads=uploads(),
            view=view,
        )
    except ValidationFailed as error:
        _field(form, error).errors.append(error.message)
        return _reply_form_error(view, form, error.status_code)
    except MessagingRefused as error:
        # The right to message ended while the page was open: the form gives way to why.
        return _reply_form_error(view, form, error.status_code, error.permission)
    if is_htmx():
        # The new message joins the list; a fresh form (with a new key) replaces the old one.
        return render(
            "messaging/_sent.html",
            message=sent.message if sent.created else None,
            view=view,
            form=None,  # a new one (with a new key) replaces the old one
            permission=ALLOWED,
            me=current_user,
        )
    return see_other(
        url_for("messaging.thread", thread_id=thread_id, _anchor=f"message-{sent.message.id}")
    )


@bp.route("/messaging/t/<id:thread_id>/read", methods=["POST"])
@login_required
def read(thread_id: int):
    """A live message arrived in an open thread: it has been seen."""
    threads.get_thread_for(current_user.id, thread_id)
    up_to = parse_id(request.form.get("up_to"))
    if up_to is None:
        abort(400)
    messaging.mark_read(current_user.id, thread_id, up_to)
    return "", 204


def _reply_form_error(view, form, status: int, permission=ALLOWED):
    if is_htmx():
        response = render(
            "messaging/_reply.html",
            view=view,
            form=form,
            permission=permission,
            status=status,
        )
        response.headers["HX-Retarget"] = "#reply"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return thread_page(thread_context(view, form=form), status)


@bp.route("/messaging/new/<handle>", methods=["GET", "POST"])
@takes_uploads()
@login_required
@message_limit
def new(handle: str):
    recipient = directory.get_visible_member(current_user.id, handle)
    existing = threads.find_thread(current_user.id, recipient.id)
    if existing is not None and request.method == "GET":
        return see_other(url_for("messaging.thread", thread_id=existing.id))
    if request.method == "GET":
        messaging.require_can_message(current_user, recipient)
        return render("messaging/new.html", recipient=recipient, form=MessageForm(formdata=None))
    form = MessageForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        sent = messaging.start(
            current_user,
            recipient,
            form.body.data,
            idempotency_key=form.idempotency_key.data,
            uploads=uploads(),
        )
    except ValidationFailed as error:
        _field(form, error).errors.append(error.message)
        return render(
            "messaging/new.html", recipient=recipient, form=form, status=error.status_code
        )
    return see_other(
        url_for("messaging.thread", thread_id=sent.thread_id, _anchor=f"message-{sent.message.id}")
    )


@bp.route("/messaging/files/<id:attachment_id>")
@login_required
def download(attachment_id: int):
    """A file, for the two members of its thread only (404 for anyone else).

    Images are shown inline; everything else downloads. Range requests and conditional
    GETs are answered by send_file.
    """
    attachment = threads.attachment_for(current_user.id, attachment_id)
    return _send(
        attachment.storage_key, attachment.content_type, attachment, inline=attachment.is_image
    )


@bp.route("/messaging/files/<id:attachment_id>/thumbnail")
@login_required
def thumbnail(attachment_id: int):
    attachment = threads.attachment_for(current_user.id, attachment_id)
    if not attachment.thumb_key:
        abort(404)
    return _send(attachment.thumb_key, "image/webp", attachment, inline=True)


def _send(key: str, content_type: str, attachment, *, inline: bool):
    storage = get_storage()
    path = storage.local_path(key)
    source = path if path is not None else storage.open(key)
    response = send_file(
        source,
        mimetype=content_type,
        as_attachment=not inline,
        download_name=attachment.name,
        conditional=True,
        etag=attachment.sha256 if key == attachment.storage_key else attachment.sha256 + "-thumb",
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
