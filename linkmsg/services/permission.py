"""Whether one member may write to another: the answer every way of writing gives
(messages, InMail, replies), and the refusals they all share.

Each way of writing adds its own rule on top (`messaging.can_message`,
`inmail.check`, `inmail.reply_permission`) and hands it to `threads.post`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Member
from ..text import join_and
from . import accounts, blocks
from .errors import Forbidden


@dataclass(frozen=True)
class Permission:
    """Whether `sender` may message `recipient`; when not, the reason and the way forward."""

    allowed: bool
    reason: str = ""
    # What the member can do about it: connect | inmail | profile | unblock | None
    remedy: str | None = None


ALLOWED = Permission(True)


class MessagingRefused(Forbidden):
    """The messaging rule says no; the message names the reason and the way forward."""

    def __init__(self, permission: Permission, recipient: Member | None = None):
        super().__init__(permission.reason)
        self.permission = permission
        self.recipient = recipient  # for the page to offer the way forward


def basic_refusal(
    sender: Member, recipient: Member, verb: str = "message", *, blockers: set[int] | None = None
) -> Permission | None:
    """The refusals every way of writing shares (messages, InMail, replies): self,
    suspension, a block either way, the writer's own incomplete profile. `blockers`,
    which of the two blocked the other, is read when the caller has not read it."""
    if sender.id == recipient.id:
        return Permission(False, "You can't message yourself.")
    if recipient.suspended_at is not None or sender.suspended_at is not None:
        return Permission(False, "This member can't be messaged.")
    if blockers is None:
        blockers = blocks.blockers_between(sender.id, recipient.id)
    if sender.id in blockers:
        return Permission(
            False, f"You blocked {recipient.name}. Unblock them in Settings to message.", "unblock"
        )
    if recipient.id in blockers:
        return Permission(False, f"You can't message {recipient.name}.")
    missing = accounts.missing_profile_fields(sender)
    if missing:
        return Permission(
            False,
            f"Add your {join_and(missing)} to your profile to {verb} {recipient.name}.",
            "profile",
        )
    return None


def require(permission: Permission, recipient: Member | None = None) -> None:
    """Raises MessagingRefused with the reason when the permission says no."""
    if not permission.allowed:
        raise MessagingRefused(permission, recipient)
