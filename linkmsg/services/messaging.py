"""Who may message whom. (Threads, messages and read state build on this module.)"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Member
from . import accounts, network, safety


@dataclass(frozen=True)
class Permission:
    """Whether `sender` may message `recipient`; when not, the reason and the way forward."""

    allowed: bool
    reason: str = ""
    # What the member can do about it: connect | inmail | profile | unblock | None
    remedy: str | None = None


ALLOWED = Permission(True)


def can_message(sender: Member, recipient: Member) -> Permission:
    """The messaging rule of SPEC section 3, in the order a member can act on it."""
    if sender.id == recipient.id:
        return Permission(False, "You can't message yourself.")
    if recipient.suspended_at is not None or sender.suspended_at is not None:
        return Permission(False, "This member can't be messaged.")
    if safety.has_blocked(sender.id, recipient.id):
        return Permission(
            False, f"You blocked {recipient.name}. Unblock them in Settings to message.", "unblock"
        )
    if safety.has_blocked(recipient.id, sender.id):
        return Permission(False, f"You can't message {recipient.name}.")
    missing = accounts.missing_profile_fields(sender)
    if missing:
        fields = (
            " and ".join(missing)
            if len(missing) <= 2
            else ", ".join(missing[:-1]) + " and " + missing[-1]
        )
        return Permission(
            False, f"Add your {fields} to your profile to message {recipient.name}.", "profile"
        )
    if not network.are_connected(sender.id, recipient.id):
        return Permission(
            False,
            f"Connect with {recipient.name} to message them, or send an InMail with Premium.",
            "connect",
        )
    if not accounts.has_full_profile(recipient):
        return Permission(
            False,
            f"{recipient.name} hasn't completed their profile yet, so they can't receive messages.",
        )
    return ALLOWED
