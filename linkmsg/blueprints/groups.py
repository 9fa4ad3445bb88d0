"""Group conversations: the New message page, and a group's Add people, Rename, Leave
and Remove. Every rule is in services.groups (and services.messaging for sending)."""

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from ..forms import GroupMessageForm, GroupNameForm
from ..services import groups, messaging, threads
from ..services.errors import ValidationFailed
from ..services.permission import MessagingRefused
from ..text import join_and
from ..web import done, parse_id, render, see_other, takes_uploads
from .messaging import message_limit, thread_context, thread_page, uploads

bp = Blueprint("groups", __name__)


def _picked() -> list[int]:
    """The people ticked in a picker (`member`), from the form or the filter's query."""
    ids = (parse_id(value) for value in request.values.getlist("member"))
    return [member_id for member_id in ids if member_id is not None]


def _query() -> str:
    return (request.values.get("q") or "").strip()[:100]


def _picker(thread_id: int | None = None) -> dict:
    return {
        "q": _query(),
        "options": groups.options(current_user, _query(), _picked(), thread_id=thread_id),
    }


@bp.route("/messaging/new", methods=["GET", "POST"])
@takes_uploads()
@login_required
@message_limit
def new():
    """Pick people and write the first message: one person is the one-to-one thread,
    two or more a group. The filter (GET ?q=) keeps what was picked and written."""
    if request.method == "GET":
        form = GroupMessageForm(formdata=request.args if request.args else None)
        return _new_page(form)
    form = GroupMessageForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        sent = messaging.start_picked(
            current_user,
            _picked(),
            form.name.data,
            form.body.data,
            idempotency_key=form.idempotency_key.data,
            uploads=uploads(),
        )
    except ValidationFailed as error:
        return _new_page(form, error, error.status_code)
    except MessagingRefused as error:
        return _new_page(form, error, error.status_code)
    return see_other(
        url_for("messaging.thread", thread_id=sent.thread_id, _anchor=f"message-{sent.message.id}")
    )


def _new_page(form, error=None, status=200):
    """The page, or with an error next to its field (the picks' refusals above the list)."""
    field = getattr(error, "field", "recipients")
    if error is not None and field in ("body", "files", "name"):
        getattr(form, field).errors.append(error.message)
    return render(
        "messaging/new_group.html",
        "messaging/_recipient_options.html",
        form=form,
        picker_error=(
            error.message if error is not None and field not in ("body", "files", "name") else None
        ),
        status=status,
        **_picker(),
    )


@bp.route("/messaging/t/<id:thread_id>/people", methods=["GET", "POST"])
@login_required
def people(thread_id: int):
    """Add people: the adder's own connections who are not in the group."""
    view = groups.require_member(current_user, thread_id)
    if request.method == "POST":
        try:
            added = groups.add(current_user, thread_id, _picked())
        except ValidationFailed as error:
            return _people_page(view, error.message, error.status_code)
        names = join_and([member.name for member in added])
        return done(f"Added {names}.", url_for("messaging.thread", thread_id=thread_id))
    return _people_page(view)


def _people_page(view, error=None, status=200):
    return render(
        "messaging/people.html",
        "messaging/_recipient_options.html",
        view=view,
        title=groups.title(view, current_user.id),
        picker_error=error,
        status=status,
        **_picker(view.thread.id),
    )


@bp.route("/messaging/t/<id:thread_id>/rename", methods=["POST"])
@login_required
def rename(thread_id: int):
    form = GroupNameForm()
    try:
        name = groups.rename(current_user, thread_id, form.name.data)
    except ValidationFailed as error:
        view = threads.get_thread_for(current_user.id, thread_id)
        context = thread_context(view, rename_error=error.message, rename_value=form.name.data)
        return thread_page(context, error.status_code)
    message = f"Renamed the group “{name}”." if name else "The group is named after its members."
    return done(message, url_for("messaging.thread", thread_id=thread_id))


@bp.route("/messaging/t/<id:thread_id>/leave", methods=["POST"])
@login_required
def leave(thread_id: int):
    groups.leave(current_user, thread_id)
    return done(
        "You left the conversation. You can still read what you saw.",
        url_for("messaging.thread", thread_id=thread_id),
        "info",
    )


@bp.route("/messaging/t/<id:thread_id>/people/<id:member_id>/remove", methods=["POST"])
@login_required
def remove(thread_id: int, member_id: int):
    removed = groups.remove(current_user, thread_id, member_id)
    return done(f"Removed {removed.name}.", url_for("messaging.thread", thread_id=thread_id))
