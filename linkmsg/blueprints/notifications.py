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
    groups, next_before = notifications.page(
        current_user.id,
        before_id=parse_id(request.args.get("before")),
        limit=current_app.config["NOTIFICATIONS_PER_PAGE"],
    )
    # Shown unread this once, then read: the page renders before the update lands.
    unread_ids = {n.id for g in groups for n, _ in g.items if n.read_at is None}
    response = render(
        "notifications/index.html",
        "notifications/_list.html",
        groups=groups,
        unread_ids=unread_ids,
        next_before=next_before,
        # What this page shows is read once it has been sent: the badge says so already.
        **({"unread_notifications": 0} if unread_ids else {}),
    )
    if unread_ids:
        notifications.mark_all_read(current_user.id, up_to_id=max(unread_ids))
    return response
