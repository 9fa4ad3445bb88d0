"""`/premium`: start and cancel Premium; credits and their history."""

from flask import Blueprint, url_for
from flask_login import current_user, login_required

from ..forms import EmptyForm
from ..services import billing
from ..web import done, render

bp = Blueprint("premium", __name__)


@bp.route("/premium")
@login_required
def index():
    return render(
        "premium/index.html",
        account=billing.account(current_user.id),
        form=EmptyForm(),
        allowance=billing.MONTHLY_ALLOWANCE,
        cap=billing.ROLLOVER_CAP,
    )


@bp.route("/premium/start", methods=["POST"])
@login_required
def start():
    billing.start_premium(current_user.id)
    return done(
        f"Welcome to Premium! You have {billing.balance(current_user.id)} InMail credits.",
        url_for("premium.index"),
    )


@bp.route("/premium/cancel", methods=["POST"])
@login_required
def cancel():
    subscription = billing.cancel_premium(current_user.id)
    return done(
        f"Premium is canceled. It stays on until {subscription.renews_at:%b %-d, %Y}.",
        url_for("premium.index"),
        "info",
    )
