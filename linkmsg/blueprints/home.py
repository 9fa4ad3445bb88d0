"""The front page: a welcome for visitors, a starting point for members."""

from flask import Blueprint
from flask_login import current_user

from ..services import accounts
from ..web import render

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    missing = accounts.describe_missing(current_user) if current_user.is_authenticated else None
    return render("home/index.html", missing=missing)
