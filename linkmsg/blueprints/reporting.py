"""Reporting a member or one of their messages (any member). The moderators' queue is
in `admin`."""

from flask import Blueprint, request, url_for
from flask_login import current_user, login_required

from ..forms import EmptyForm
from ..models import REPORT_REASONS
from ..services import directory, reports
from ..services.errors import ValidationFailed
from ..web import done, render

bp = Blueprint("reporting", __name__)


def _report_page(member, message=None, *, error=None, status=200):
    return render(
        "reporting/report.html",
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
    member = directory.get_visible_member(current_user.id, handle)
    return _report(member, None)


@bp.route("/report/message/<id:message_id>", methods=["GET", "POST"])
@login_required
def report_message(message_id: int):
    message, sender = reports.message_to_report(current_user.id, message_id)
    return _report(sender, message)


def _report(member, message):
    if request.method == "GET":
        return _report_page(member, message)
    also_block = request.form.get("block") == "y"
    try:
        reports.report(
            current_user.id,
            member.id,
            request.form.get("reason", ""),
            request.form.get("details", ""),
            message_id=message.id if message else None,
            also_block=also_block,
        )
    except ValidationFailed as error:
        return _report_page(member, message, error=error, status=error.status_code)
    blocked = " and blocked them" if also_block else ""
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
