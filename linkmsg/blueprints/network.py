"""My Network: invitations, connections, member search, who viewed your profile."""

from datetime import datetime

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..forms import InviteForm
from ..models import Member
from ..services import degrees, directory, messaging, network, profile_views
from ..services.errors import DomainError, ValidationFailed
from ..web import done, is_htmx, parse_id, render, safe_next

bp = Blueprint("network", __name__)


def _cursor():
    """The (name, id) keyset cursor of a paged member list, from ?after_name=&after_id=."""
    name, member_id = request.args.get("after_name"), parse_id(request.args.get("after_id"))
    return (name[:200], member_id) if name is not None and member_id is not None else None


def _here() -> str:
    """Where a form on this page should send a member back to after a plain POST."""
    return request.full_path.rstrip("?")


def _control(member: Member, *, notice: str | None = None, status: int = 200, **oob):
    """The Connect control of one member, re-rendered for htmx after an action, with the
    out-of-band pieces in `oob` (oob_counts, oob_profile, oob_connections)."""
    rel = network.relationship(current_user.id, member.id)
    return render(
        "network/_connect.html",
        member=member,
        rel=rel,
        notice=notice,
        next_url=safe_next(request.form.get("next"), url_for("network.index")),
        status=status,
        **oob,
    )


def _after_action(member: Member, message: str, category: str = "success"):
    if is_htmx():
        counts = network.network_counts(current_user.id)
        connections = None
        if degrees.are_connected(current_user.id, member.id):
            # A new connection: My Network's list gains them.
            connections = network.connections_page(
                current_user.id, limit=current_app.config["CONNECTIONS_PER_PAGE"]
            )
        return _control(
            member,
            notice=message,
            oob_counts=counts,
            oob_profile=messaging.profile_relation(current_user, member),
            oob_connections=connections,
        )
    return done(message, safe_next(request.form.get("next"), url_for("network.index")), category)


@bp.route("/network")
@login_required
def index():
    connections, cursor = network.connections_page(
        current_user.id, after=_cursor(), limit=current_app.config["CONNECTIONS_PER_PAGE"]
    )
    return render(
        "network/index.html",
        received=network.received_invitations(current_user.id),
        sent=network.sent_invitations(current_user.id),
        connections=connections,
        counts=network.network_counts(current_user.id),
        cursor=cursor,
        next_url=_here(),
    )


@bp.route("/network/invite/<handle>", methods=["GET", "POST"])
@login_required
def invite(handle: str):
    member = directory.get_visible_member(current_user.id, handle)
    form = InviteForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render(
                "network/invite.html", member=member, form=form, status=422 if form.errors else 400
            )
        try:
            result = network.invite(current_user.id, member.id, form.note.data or "")
        except ValidationFailed as error:
            form.note.errors.append(error.message)
            return render("network/invite.html", member=member, form=form, status=error.status_code)
        except DomainError as error:
            if is_htmx():
                return _control(member, notice=error.message, status=error.status_code)
            raise
        if result.connected:
            return _after_action(member, f"You and {member.name} are now connected.")
        return _after_action(member, f"Invitation sent to {member.name}.")
    return render("network/invite.html", member=member, form=form)


# action -> (service call, whose side the other member is on, what the member reads)
_INVITATION_ACTIONS = {
    "accept": (network.accept, "sender_id", "You and {name} are now connected.", "success"),
    "ignore": (network.ignore, "sender_id", "Invitation from {name} ignored.", "info"),
    "withdraw": (network.withdraw, "recipient_id", "Invitation to {name} withdrawn.", "info"),
}


@bp.route(
    "/network/invitations/<id:invitation_id>/<any(accept, ignore, withdraw):action>",
    methods=["POST"],
)
@login_required
def answer(invitation_id: int, action: str):
    call, side, message, category = _INVITATION_ACTIONS[action]
    invitation = call(current_user.id, invitation_id)
    member = db.session.get(Member, getattr(invitation, side))
    return _after_action(member, message.format(name=member.name), category)


@bp.route("/network/connections/<handle>/remove", methods=["POST"])
@login_required
def remove(handle: str):
    member = directory.get_visible_member(current_user.id, handle)
    network.remove_connection(current_user.id, member.id)
    return _after_action(member, f"You are no longer connected with {member.name}.", "info")


@bp.route("/search")
@login_required
def search():
    q = (request.args.get("q") or "").strip()[:200]
    found = network.search(
        current_user.id, q, after=_cursor(), limit=current_app.config["SEARCH_RESULTS_PER_PAGE"]
    )
    return render(
        "network/search.html",
        "network/_results.html",
        q=q,
        members=found.members,
        cursor=found.cursor,
        degrees=found.degrees,
        rels=found.rels,
        next_url=_here(),
    )


@bp.route("/profile/views")
@login_required
def viewers():
    after = None
    seen, member_id = request.args.get("after_seen"), parse_id(request.args.get("after_id"))
    if seen and member_id is not None:
        try:
            after = (datetime.fromisoformat(seen[:40]), member_id)
        except ValueError:
            after = None  # a mangled cursor starts from the top
    return render("network/viewers.html", result=profile_views.viewers(current_user, after=after))
