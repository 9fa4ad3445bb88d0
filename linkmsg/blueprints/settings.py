"""`/settings`: active status, email and InMail preferences."""

from flask import Blueprint, url_for
from flask_login import current_user, login_required

from ..forms import SettingsForm
from ..services import network
from ..web import done, render

bp = Blueprint("settings", __name__)


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def index():
    form = SettingsForm(obj=current_user)
    if form.validate_on_submit():
        network.update_settings(
            current_user.id,
            show_active=form.show_active.data,
            email_notifications=form.email_notifications.data,
            accepts_inmail=form.accepts_inmail.data,
        )
        return done("Your settings are saved.", url_for("settings.index"))
    return render("settings/index.html", form=form, status=400 if form.errors else 200)
