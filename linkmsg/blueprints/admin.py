"""The moderators' queue at `/admin/reports` (404 for everyone else). Reporting itself
is in `reporting`."""

from flask import Blueprint, url_for
from flask_login import current_user, login_required

from ..forms import EmptyForm
from ..models import REPORT_REASONS
from ..services import reports as moderation
from ..web import done, render

bp = Blueprint("admin", __name__)


@bp.route("/admin/reports")
@login_required
def reports():
    moderation.require_moderator(current_user)
    rows = [
        (item, reporter, reported, message, moderation.context_of(message) if message else [])
        for item, reporter, reported, message in moderation.open_reports()
    ]
    return render("admin/reports.html", rows=rows, reasons=REPORT_REASONS, form=EmptyForm())


@bp.route("/admin/reports/<id:report_id>/<any(dismiss, suspend):action>", methods=["POST"])
@login_required
def resolve(report_id: int, action: str):
    moderation.resolve(current_user.id, report_id, action)
    message = (
        "Report dismissed."
        if action == "dismiss"
        else "Member suspended; their sessions have ended."
    )
    return done(message, url_for("admin.reports"), "info")
