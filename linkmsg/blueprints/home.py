"""The front page: a welcome for visitors, a starting point for members."""

from flask import Blueprint
from flask_login import current_user

from ..services import accounts, messaging, network
from ..web import render

bp = Blueprint("home", __name__)


RECENT_THREADS = 3


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return render("home/index.html", missing=None)
    recent, _ = messaging.inbox(current_user.id, limit=RECENT_THREADS)
    return render(
        "home/index.html",
        missing=accounts.describe_missing(current_user),
        recent=recent,
        invitations=network.network_counts(current_user.id)["received"],
    )
