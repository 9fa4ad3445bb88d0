"""Reporting (any member) and the moderators' queue at `/admin/reports`."""

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..forms import EmptyForm
from ..models import REPORT_REASONS, Message
from ..services import network, safety
from ..services.errors import ValidationFailed
from ..web import done, render

bp = Blueprint("admin", __name__)


def _report_page(member, message=None, *, error=None, status=200):
    return render(
        "admin/report.html",
        member=member,
        message=message,
        reasons=REPORT_REASONS,
        error=error,
        form=EmptyForm(),
        values=request.form,
        status=status,
    )


@bp.route("/report/<handle>", methods=["GET", "POST"])
@login_required
def report_member(handle: str):
    member = network.get_visible_member(current_user.id, handle)
    return _report(member, None)


@bp.route("/report/message/<id:message_id>", methods=["GET", "POST"])
@login_required
def report_message(message_id: int):
    from ..services.messaging import get_thread_for

    message = db.session.get(Message, message_id)
    if message is None:
        abort(404)
    view = get_thread_for(current_user.id, message.thread_id)
    if message.sender_id != view.other.id:
        abort(404)
    return _report(view.other, message)


def _report(member, message):
    if request.method == "GET":
        return _report_page(member, message)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        safety.report(
            current_user.id,
            member.id,
            request.form.get("reason", ""),
            request.form.get("details", ""),
            message_id=message.id if message else None,
            also_block=request.form.get("block") == "y",
        )
    except ValidationFailed as error:
        return _report_page(member, message, error=error, status=error.status_code)
    blocked = " and blocked them" if request.form.get("block") == "y" else ""
    if blocked:
        target = url_for("settings.blocked")  # the thread and the profile are hidden now
    elif message:
        # Back where they were, at the message they reported.
        target = url_for(
            "messaging.thread", thread_id=message.thread_id, _anchor=f"message-{message.id}"
        )
    else:
        target = url_for("profiles.show", handle=member.handle)
    return done(
        f"Thank you. You reported {member.name}{blocked}; a moderator will review it.", target
    )


def _require_admin():
    if not current_user.is_admin:
        abort(404)  # the queue's existence is nobody else's business


@bp.route("/admin/reports")
@login_required
def reports():
    _require_admin()
    rows = [
        (item, reporter, reported, message, safety.context_of(message) if message else [])
        for item, reporter, reported, message in safety.open_reports()
    ]
    return render("admin/reports.html", rows=rows, reasons=REPORT_REASONS, form=EmptyForm())


@bp.route("/admin/reports/<id:report_id>/<any(dismiss, suspend):action>", methods=["POST"])
@login_required
def resolve(report_id: int, action: str):
    _require_admin()
    if not EmptyForm().validate_on_submit():
        abort(400)
    safety.resolve(current_user.id, report_id, action)
    message = (
        "Report dismissed."
        if action == "dismiss"
        else "Member suspended; their sessions have ended."
    )
    return done(message, url_for("admin.reports"), "info")
