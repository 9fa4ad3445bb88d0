"""`/notifications`: what happened in the member's network; read when seen."""

from flask import Blueprint, current_app, request
from flask_login import current_user, login_required

from ..services import notifications
from ..templating import NAV_COUNTERS
from ..web import parse_id, render

bp = Blueprint("notifications", __name__)

NAV_COUNTERS["notifications"] = lambda member: notifications.unread_count_query(member.id)


@bp.route("/notifications")
@login_required
def index():
    seen = notifications.see_page(
        current_user.id,
        before_id=parse_id(request.args.get("before")),
        limit=current_app.config["NOTIFICATIONS_PER_PAGE"],
    )
    return render(
        "notifications/index.html",
        "notifications/_list.html",
        groups=seen.groups,
        unread_ids=seen.unread_ids,
        next_before=seen.next_before,
    )
