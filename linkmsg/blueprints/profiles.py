"""Profiles: `/in/<handle>` and `/profile/edit`."""

from flask import Blueprint, abort, current_app, request, send_file, url_for
from flask_login import current_user, login_required

from ..extensions import limiter
from ..forms import ProfileForm
from ..services import accounts, directory, profiles
from ..services.attachments import AVATAR_MAX_BYTES, Upload
from ..services.errors import ValidationFailed
from ..storage import get_storage
from ..web import done, render, takes_uploads

bp = Blueprint("profiles", __name__)

# Only a request that brings a new picture counts: editing the words costs nothing.
avatar_limit = limiter.limit(
    lambda: current_app.config["AVATAR_RATE_LIMIT"],
    scope="avatar",
    methods=["POST"],
    exempt_when=lambda: not _avatar_upload(),
)


@bp.route("/in/<handle>")
def show(handle: str):
    viewer = current_user if current_user.is_authenticated else None
    context = profiles.page(viewer, handle)
    if not context["is_self"] and viewer is not None:
        context["next_url"] = request.path
    return render("profiles/show.html", **context)


@bp.route("/profile/edit", methods=["GET", "POST"])
@takes_uploads(lambda config: AVATAR_MAX_BYTES + config["MAX_FORM_BYTES"])
@login_required
@avatar_limit
def edit():
    form = ProfileForm(obj=current_user)
    status = 200
    if form.validate_on_submit():
        try:
            accounts.update_profile(
                current_user.id,
                accounts.ProfileInput(
                    name=form.name.data or "",
                    headline=form.headline.data or "",
                    location=form.location.data or "",
                    about=form.about.data or "",
                    avatar=_avatar_upload(),
                    remove_avatar=bool(form.remove_avatar.data),
                ),
            )
        except ValidationFailed as error:
            form[error.field or "name"].errors.append(error.message)
            status = error.status_code
        else:
            return done(
                "Your profile is saved.", url_for("profiles.show", handle=current_user.handle)
            )
    if form.errors and status == 200:
        status = 422
    return render(
        "profiles/edit.html",
        form=form,
        missing=accounts.describe_missing(current_user),
        status=status,
    )


def _avatar_upload():
    upload = request.files.get("avatar")
    return Upload(upload.filename, upload.stream) if upload and upload.filename else None


@bp.route("/in/<handle>/avatar")
def avatar(handle: str):
    """A member's picture, to whoever may see their profile."""
    viewer = current_user if current_user.is_authenticated else None
    member = directory.get_visible_member(viewer.id if viewer else None, handle)
    if not member.avatar_key:
        abort(404)
    storage = get_storage()
    response = send_file(
        storage.local_path(member.avatar_key), mimetype="image/webp", conditional=True, max_age=300
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
