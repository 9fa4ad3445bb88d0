"""Register, log in, log out, and a forgotten password."""

import hashlib
import secrets

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import limiter
from ..forms import ForgotPasswordForm, LoginForm, RegisterForm, ResetPasswordForm
from ..services import accounts, passwords, sessions, throttle
from ..services.errors import (
    AccountSuspended,
    InvalidCredentials,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from ..web import (
    SESSION_ID_KEY,
    SESSION_SECRET_KEY,
    current_session_id,
    render,
    safe_next,
    see_other,
)

bp = Blueprint("auth", __name__)

# A signed cookie, sent to /login only, naming the accounts this browser has logged in
# to: for those it is the owner's own client (see services.throttle).
KNOWN_DEVICE_COOKIE = "linkmsg_device"
KNOWN_DEVICE_ACCOUNTS = 10
KNOWN_DEVICE_MAX_AGE = 365 * 24 * 3600


def start_session(member) -> None:
    """Log a member in with a new session: a fresh cookie naming a new login row."""
    session.clear()  # nothing from the anonymous session carries over
    started = sessions.start(member.id, request.user_agent.string)
    session[SESSION_ID_KEY] = started.id
    session[SESSION_SECRET_KEY] = started.secret
    login_user(member)


def _post_limit(setting: str, scope: str, key=None):
    """A Flask-Limiter limit on POSTs, counted before the view runs; per address unless
    `key` says otherwise."""
    return limiter.limit(
        lambda: current_app.config[setting],
        key_func=key or (lambda: f"{scope}:{request.remote_addr}"),
        methods=["POST"],
        scope=scope,
    )


@bp.route("/register", methods=["GET", "POST"])
@_post_limit("REGISTER_RATE_LIMIT", "register-address")
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
            start_session(member)
            flash(
                f"Welcome to LinkMsg, {member.name}! Complete your profile to start messaging.",
                "success",
            )
            return see_other(url_for("profiles.edit"))
    status = 422 if form.errors else 200
    return render("auth/register.html", form=form, status=status)


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="linkmsg-known-device")


def _account_tag(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def _known_device() -> dict | None:
    try:
        device = _device_serializer().loads(request.cookies.get(KNOWN_DEVICE_COOKIE, ""))
    except BadSignature:
        return None
    return device if isinstance(device, dict) and isinstance(device.get("accounts"), list) else None


def _remember_device(response, device: dict | None, email: str) -> None:
    device = device or {"id": secrets.token_urlsafe(12), "accounts": []}
    tag = _account_tag(email)
    tags = [tag] + [t for t in device["accounts"] if t != tag]
    device = {"id": device["id"], "accounts": tags[:KNOWN_DEVICE_ACCOUNTS]}
    response.set_cookie(
        KNOWN_DEVICE_COOKIE,
        _device_serializer().dumps(device),
        max_age=KNOWN_DEVICE_MAX_AGE,
        path=url_for("auth.login"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next"), url_for("home.index"))
    if current_user.is_authenticated:
        return redirect(next_url)
    form = LoginForm()
    error, status, retry_after = None, 200, None
    if form.validate_on_submit():
        email = accounts.normalize_email(form.email.data)
        device = _known_device()
        known = device is not None and _account_tag(email) in device["accounts"]
        address = request.remote_addr or "unknown"
        try:
            # Counted before the password is checked: parallel guesses cannot overtake it.
            attempt = throttle.count_login_attempt(
                "login:" + email,
                f"device:{device['id']}" if known else address,
                address,
                known=known,
            )
            member = accounts.authenticate(email, form.password.data)
        except RateLimited as exc:
            error, status, retry_after = exc.message, 429, exc.retry_after
        except (InvalidCredentials, AccountSuspended) as exc:
            error, status = exc.message, exc.status_code
        else:
            throttle.give_back(attempt)
            start_session(member)
            response = see_other(next_url)
            _remember_device(response, device, email)
            return response
    elif form.errors:
        status = 422
    response = render("auth/login.html", form=form, error=error, next_url=next_url, status=status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    # The login ends for good: a copy of this cookie elsewhere is logged out too.
    sessions.end(current_user.id, current_session_id())
    logout_user()
    session.clear()
    flash("You have logged out.", "info")
    return see_other(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@_post_limit("PASSWORD_RESET_RATE_LIMIT", "reset-address")
@_post_limit(
    "PASSWORD_RESET_RATE_LIMIT",
    "reset-email",
    key=lambda: "reset-email:" + accounts.normalize_email(request.form.get("email", "")),
)
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        passwords.request_reset(form.email.data)
        # The same page whether or not the address has an account.
        return render("auth/forgot_sent.html", email=form.email.data.strip())
    return render("auth/forgot.html", form=form, status=422 if form.errors else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    form = ResetPasswordForm()
    try:
        reset = passwords.reset_for_token(token)
    except NotFound as error:
        return render("auth/reset_expired.html", error=error, status=404)
    if form.validate_on_submit():
        try:
            member = passwords.reset(token, form.password.data)
        except NotFound as error:
            return render("auth/reset_expired.html", error=error, status=404)
        except ValidationFailed as error:
            form.password.errors.append(error.message)
        else:
            if current_user.is_authenticated:  # someone else's login in this browser ends
                sessions.end(current_user.id, current_session_id())
            logout_user()
            start_session(member)
            flash("Your password is changed, and every other session is logged out.", "success")
            return see_other(url_for("home.index"))
    member = accounts.get_member(reset.member_id)
    return render(
        "auth/reset.html", form=form, token=token, member=member, status=422 if form.errors else 200
    )
