"""Organising threads: archive, mute, mark unread, labels, search, export.

Every action is a plain form POST that redirects (no JavaScript needed). From a row of
the Messaging list, htmx posts it and swaps the row in place: the updated row, or
nothing when the row no longer belongs to the list being shown.
"""

from flask import Blueprint, Response, abort, current_app, request, stream_with_context, url_for
from flask_login import current_user, login_required

from ..extensions import limiter
from ..forms import LabelForm
from ..services import export, groups, messaging, organise, search
from ..services.errors import ValidationFailed
from ..web import done, is_htmx, parse_id, render, safe_next

bp = Blueprint("organise", __name__)

# Every organising action of a member shares one budget: each is a live event that their
# open pages render and a reconnecting stream replays.
organise_limit = limiter.shared_limit(
    lambda: current_app.config["ORGANISE_RATE_LIMIT"], scope="organise", methods=["POST"]
)
export_limit = limiter.limit(lambda: current_app.config["EXPORT_RATE_LIMIT"], scope="export")


def _called(view) -> str:
    """The conversation as the member calls it: the other member, or the group's name."""
    return groups.title(view, current_user.id)


def _after(default: str) -> str:
    return safe_next(request.form.get("next"), default)


def _row_response(thread_id: int, announce: str, default: str, undo: dict | None = None):
    """The row for htmx (or nothing, when it left the list); otherwise a redirect.

    `undo` ({"action": url, fields...}) adds an Undo button to the htmx answer: a plain
    form, so undoing reloads the list the member was looking at."""
    if not is_htmx():
        return done(announce, _after(default))
    row = messaging.inbox_row(current_user.id, thread_id)
    shown = request.form.get("list", "all")
    prefix = "thread-row-" if shown in ("all", "unread") else "filed-row-"
    return render(
        "messaging/_row_update.html",
        row=row if messaging.row_in_list(row, shown) else None,
        row_id=f"{prefix}{thread_id}",
        shown=shown,
        announce=announce,
        undo=undo,
    )


@bp.route("/messaging/t/<id:thread_id>/archive", methods=["POST"])
@login_required
@organise_limit
def archive(thread_id: int):
    archived = request.form.get("archived", "1") == "1"
    view = organise.set_archived(current_user.id, thread_id, archived)
    if archived:
        message = (
            f"Your conversation with {_called(view)} is archived. "
            "It comes back when a new message arrives."
        )
        undo = {
            "action": url_for("organise.archive", thread_id=thread_id),
            "archived": "0",
            "next": _after(url_for("messaging.inbox")),
        }
        return _row_response(thread_id, message, url_for("messaging.inbox"), undo)
    message = f"Your conversation with {_called(view)} is back in your inbox."
    return _row_response(thread_id, message, url_for("messaging.thread", thread_id=thread_id))


@bp.route("/messaging/t/<id:thread_id>/mute", methods=["POST"])
@login_required
@organise_limit
def mute(thread_id: int):
    muted = request.form.get("muted", "1") == "1"
    view = organise.set_muted(current_user.id, thread_id, muted)
    message = (
        f"Muted {_called(view)}: no emails and no badge count for this conversation."
        if muted
        else f"Unmuted your conversation with {_called(view)}."
    )
    return _row_response(thread_id, message, url_for("messaging.thread", thread_id=thread_id))


@bp.route("/messaging/t/<id:thread_id>/unread", methods=["POST"])
@login_required
@organise_limit
def unread(thread_id: int):
    view = organise.mark_unread(current_user.id, thread_id)
    # Not back to the thread: showing it would read it again.
    message = f"Your conversation with {_called(view)} is marked unread."
    return _row_response(thread_id, message, url_for("messaging.inbox"))


@bp.route("/messaging/t/<id:thread_id>/labels", methods=["POST"])
@login_required
@organise_limit
def thread_labels(thread_id: int):
    wanted = [parse_id(value) for value in request.form.getlist("label")]
    chosen = organise.set_thread_labels(
        current_user.id, thread_id, [label_id for label_id in wanted if label_id is not None]
    )
    names = ", ".join(label.name for label in chosen)
    message = f"Labels saved: {names}." if names else "Labels removed from this conversation."
    return _row_response(thread_id, message, url_for("messaging.thread", thread_id=thread_id))


@bp.route("/messaging/labels", methods=["GET", "POST"])
@login_required
@organise_limit
def labels():
    form = LabelForm()
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            label = organise.create_label(current_user.id, form.name.data)
        except ValidationFailed as error:
            form.name.errors.append(error.message)
            status = error.status_code
        else:
            return done(f"Label “{label.name}” created.", _after(url_for("organise.labels")))
    return _labels_page(form=form, status=status)


def _labels_page(*, form=None, editing=None, status=200):
    return render(
        "messaging/labels.html",
        labels=organise.labels(current_user.id),
        form=form or LabelForm(formdata=None),
        rename_form=editing or LabelForm(formdata=None),
        editing_id=editing.label_id if editing else None,
        status=status,
    )


@bp.route("/messaging/labels/<id:label_id>", methods=["POST"])
@login_required
@organise_limit
def rename_label(label_id: int):
    form = LabelForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        label = organise.rename_label(current_user.id, label_id, form.name.data)
    except ValidationFailed as error:
        form.name.errors.append(error.message)
        form.label_id = label_id
        return _labels_page(editing=form, status=error.status_code)
    return done(f"Label renamed to “{label.name}”.", url_for("organise.labels"))


@bp.route("/messaging/labels/<id:label_id>/delete", methods=["POST"])
@login_required
@organise_limit
def delete_label(label_id: int):
    name = organise.delete_label(current_user.id, label_id)
    return done(
        f"Label “{name}” deleted. Its conversations are still in Messaging.",
        url_for("organise.labels"),
        "info",
    )


@bp.route("/messaging/search")
@login_required
def search_messages():
    query = (request.args.get("q") or "").strip()[:200]
    hits = search.search(current_user.id, query)
    return render(
        "messaging/search.html",
        "messaging/_search_results.html",
        q=query,
        words=search.words_of(query),
        hits=hits,
    )


@bp.route("/messaging/t/<id:thread_id>/export")
@login_required
@export_limit
def export_thread(thread_id: int):
    archive = export.export_thread(current_user.id, thread_id)
    response = Response(
        stream_with_context(chunk for chunk in archive.chunks if chunk),
        mimetype="application/zip",
    )
    response.headers.set("Content-Disposition", "attachment", filename=archive.filename)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
