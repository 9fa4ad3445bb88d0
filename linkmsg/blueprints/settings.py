"""`/settings`: active status, email and InMail preferences."""

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from ..forms import EmptyForm, SettingsForm
from ..services import network, safety
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


@bp.route("/settings/blocked")
@login_required
def blocked():
    return render(
        "settings/blocked.html", members=safety.blocked_members(current_user.id), form=EmptyForm()
    )


@bp.route("/block/<handle>", methods=["GET", "POST"])
@login_required
def block(handle: str):
    """Block a member: a confirmation page, then the POST (from a profile or a thread)."""
    member = network.get_visible_member(current_user.id, handle)
    if request.method == "GET":
        return render("settings/block.html", member=member, form=EmptyForm())
    if not EmptyForm().validate_on_submit():
        abort(400)
    safety.block(current_user.id, member.id)
    return done(
        f"You blocked {member.name}. Neither of you can message or invite the other.",
        url_for("settings.blocked"),
    )


@bp.route("/unblock/<handle>", methods=["POST"])
@login_required
def unblock(handle: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    member = safety.blocked_member(current_user.id, handle)
    safety.unblock(current_user.id, member.id)
    return done(f"You unblocked {member.name}.", url_for("settings.blocked"), "info")
