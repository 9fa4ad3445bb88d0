"""`/settings`: active status, email and InMail preferences, password and sessions."""

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user, login_required

from ..extensions import limiter
from ..forms import ChangePasswordForm, EmptyForm, SettingsForm
from ..services import blocking, directory, passwords, sessions
from ..services.errors import ValidationFailed
from ..web import current_session_id, done, render

bp = Blueprint("settings", __name__)


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def index():
    form = SettingsForm(obj=current_user)
    if form.validate_on_submit():
        directory.update_settings(
            current_user.id,
            show_active=form.show_active.data,
            email_notifications=form.email_notifications.data,
            accepts_inmail=form.accepts_inmail.data,
        )
        return done("Your settings are saved.", url_for("settings.index"))
    return render("settings/index.html", form=form, status=400 if form.errors else 200)


def _password_page(form: ChangePasswordForm, status: int = 200):
    return render(
        "settings/password.html",
        form=form,
        end_form=EmptyForm(),
        sessions=sessions.live(current_user.id),
        current_session=current_session_id(),
        describe=sessions.describe,
        status=status,
    )


@bp.route("/settings/password", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_CLIENT_RATE_LIMIT"],
    methods=["POST"],
    scope="change-password",
)
def password():
    """Change the password (current + new); every other session ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            passwords.change(
                current_user.id,
                form.current_password.data,
                form.new_password.data,
                keep_session=current_session_id(),
            )
        except ValidationFailed as error:
            form[error.field].errors.append(error.message)
        else:
            return done(
                "Your password is changed. Every other session is logged out.",
                url_for("settings.password"),
            )
    return _password_page(form, 422 if form.errors else 200)


@bp.route("/settings/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    ended = passwords.end_other_sessions(current_user.id, current_session_id())
    count = len(ended)
    message = (
        f"Logged out of {count} other session{'s' if count != 1 else ''}."
        if count
        else "There were no other sessions to log out of."
    )
    return done(message, url_for("settings.password"), "info")


@bp.route("/settings/blocked")
@login_required
def blocked():
    return render(
        "settings/blocked.html", members=blocking.blocked_members(current_user.id), form=EmptyForm()
    )


@bp.route("/block/<handle>", methods=["GET", "POST"])
@login_required
def block(handle: str):
    """Block a member: a confirmation page, then the POST (from a profile or a thread)."""
    member = directory.get_visible_member(current_user.id, handle)
    if request.method == "GET":
        return render("settings/block.html", member=member, form=EmptyForm())
    blocking.block(current_user.id, member.id)
    return done(
        f"You blocked {member.name}. Neither of you can message or invite the other.",
        url_for("settings.blocked"),
    )


@bp.route("/unblock/<handle>", methods=["POST"])
@login_required
def unblock(handle: str):
    member = blocking.blocked_member(current_user.id, handle)
    blocking.unblock(current_user.id, member.id)
    return done(f"You unblocked {member.name}.", url_for("settings.blocked"), "info")
