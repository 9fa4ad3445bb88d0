"""Register, log in, log out."""

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..forms import EmptyForm, LoginForm, RegisterForm
from ..services import accounts
from ..services.errors import InvalidCredentials, ValidationFailed
from ..web import render, safe_next, see_other

bp = Blueprint("auth", __name__)


def _start_session(member) -> None:
    # A fresh cookie at login: nothing from the anonymous session carries over.
    session.clear()
    login_user(member)


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            member = accounts.register(form.email.data, form.password.data, form.name.data)
        except ValidationFailed as error:
            form[error.field or "email"].errors.append(error.message)
        else:
            _start_session(member)
            flash(
                f"Welcome to LinkMsg, {member.name}! Complete your profile to start messaging.",
                "success",
            )
            return see_other(url_for("profiles.edit"))
    status = 422 if form.errors else 200
    return render("auth/register.html", form=form, status=status)


def _login_account() -> str:
    return "login:" + accounts.normalize_email(request.form.get("email", ""))


# Failed attempts only count: per account (guessing one password) and per address
# (trying many accounts).
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    key_func=_login_account,
    methods=["POST"],
    scope="login-account",
    deduct_when=lambda response: response.status_code == 401,
)
@limiter.limit(
    lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"],
    key_func=lambda: f"login-addr:{request.remote_addr}",
    methods=["POST"],
    scope="login-address",
    deduct_when=lambda response: response.status_code == 401,
)
def login():
    next_url = safe_next(request.values.get("next"), url_for("home.index"))
    if current_user.is_authenticated:
        return redirect(next_url)
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            member = accounts.authenticate(form.email.data, form.password.data)
        except InvalidCredentials as exc:
            error = exc.message
        else:
            if member.suspended_at is not None:
                error = "This account is suspended."
            else:
                _start_session(member)
                return see_other(next_url)
    status = 401 if error else (422 if form.errors else 200)
    return render("auth/login.html", form=form, error=error, next_url=next_url, status=status)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = EmptyForm()
    if not form.validate_on_submit():
        return see_other(url_for("home.index"))
    logout_user()
    session.clear()
    flash("You have logged out.", "info")
    return see_other(url_for("auth.login"))
