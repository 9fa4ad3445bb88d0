"""Profiles: `/in/<handle>` and `/profile/edit`."""

from flask import Blueprint, abort, url_for
from flask_login import current_user, login_required

from ..forms import ProfileForm
from ..services import accounts
from ..services.errors import ValidationFailed
from ..web import done, render

bp = Blueprint("profiles", __name__)


@bp.route("/in/<handle>")
def show(handle: str):
    member = accounts.get_by_handle(handle)
    if member is None or member.suspended_at is not None:
        abort(404)
    is_self = current_user.is_authenticated and current_user.id == member.id
    missing = accounts.describe_missing(member) if is_self else None
    return render("profiles/show.html", member=member, is_self=is_self, missing=missing)


@bp.route("/profile/edit", methods=["GET", "POST"])
@login_required
def edit():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        try:
            accounts.update_profile(
                current_user.id,
                accounts.ProfileInput(
                    name=form.name.data or "",
                    headline=form.headline.data or "",
                    location=form.location.data or "",
                    about=form.about.data or "",
                ),
            )
        except ValidationFailed as error:
            form[error.field or "name"].errors.append(error.message)
        else:
            return done(
                "Your profile is saved.", url_for("profiles.show", handle=current_user.handle)
            )
    status = 422 if form.errors else 200
    return render(
        "profiles/edit.html",
        form=form,
        missing=accounts.describe_missing(current_user),
        status=status,
    )
