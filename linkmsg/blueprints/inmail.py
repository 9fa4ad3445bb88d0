"""InMail: compose to a member outside your network, decline one, see your stats."""

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user, login_required

from ..forms import InMailForm
from ..services import billing, directory, inmail
from ..services.errors import ValidationFailed
from ..web import done, render, see_other, takes_uploads
from .messaging import message_limit, uploads

bp = Blueprint("inmail", __name__)


def _refused_to_premium(error: inmail.InMailRefused):
    """Free members are sent to /premium with the reason."""
    flash(error.message, "info")
    return see_other(url_for("premium.index"))


@bp.route("/inmail/new/<handle>", methods=["GET", "POST"])
@takes_uploads()
@login_required
@message_limit
def new(handle: str):
    recipient = directory.get_visible_member(current_user.id, handle)
    try:
        inmail.check(current_user, recipient)
    except inmail.InMailRefused as error:
        if error.remedy == "premium":
            return _refused_to_premium(error)
        raise
    template = request.args.get("template")
    form = InMailForm()
    status = 200
    if request.method == "GET":
        form.subject.data, form.body.data = inmail.prefill(template, current_user, recipient)
    elif form.validate_on_submit():
        try:
            sent = inmail.send(
                current_user,
                recipient,
                form.subject.data,
                form.body.data,
                template=request.form.get("template"),
                idempotency_key=form.idempotency_key.data,
                uploads=uploads(),
            )
        except ValidationFailed as error:
            for problem in error.each():
                field = problem.field if problem.field in ("subject", "files") else "body"
                form[field].errors.append(problem.message)
            status = error.status_code
        else:
            return done(
                f"InMail sent to {recipient.name}.",
                url_for("messaging.thread", thread_id=sent.thread_id),
            )
    else:
        abort(400)
    return render(
        "inmail/new.html",
        recipient=recipient,
        form=form,
        template=template if template in inmail.TEMPLATES else "",
        templates=inmail.config_templates(),
        credits=billing.balance(current_user.id),
        status=status,
    )


@bp.route("/inmail/<id:inmail_id>/decline", methods=["POST"])
@login_required
def decline(inmail_id: int):
    item = inmail.decline(current_user.id, inmail_id)
    return done(
        "InMail declined. The sender is told, politely.",
        url_for("messaging.thread", thread_id=item.thread_id),
        "info",
    )


@bp.route("/inmail/stats")
@login_required
def stats():
    try:
        stats = inmail.premium_stats(current_user.id)
    except inmail.InMailRefused as refused:
        return done(refused.message, url_for("premium.index"), "info")
    return render(
        "inmail/stats.html",
        stats=stats,
        credits=billing.balance(current_user.id),
    )
