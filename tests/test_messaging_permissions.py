"""The permission matrix: degree x plan x block direction x profile completeness.

Each combination is checked twice, as a member meets it: the profile's Message slot
(`message-button` or `message-locked` with its reason) and a POST to
/messaging/new/<handle> that bypasses the UI (sent, or refused with nothing saved).
"""

import itertools

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member, Message, Thread
from linkmsg.services import blocking

from .factories import by_testid, connect, make_member, soup, texts

DEGREES = ["1st", "2nd", "3rd", "out"]
PLANS = ["free", "premium"]
BLOCKS = ["none", "sender_blocked", "recipient_blocked"]
PROFILES = ["both_full", "sender_incomplete", "recipient_incomplete"]


def expected(degree, plan, block, profiles):
    """(profile status, message slot, reason or None, POST status) straight from SPEC §3/§6."""
    if block == "recipient_blocked":
        return 404, None, None, 404
    if block == "sender_blocked":
        return 200, "locked", "You blocked Rae Recipient. Unblock them in Settings to message.", 403
    if profiles == "sender_incomplete":
        return (
            200,
            "locked",
            "Add your headline and location to your profile to message Rae Recipient.",
            403,
        )
    if degree != "1st":
        inmail = "send them an InMail" if plan == "premium" else "send an InMail with Premium"
        return (200, "locked", f"Connect with Rae Recipient to message them, or {inmail}.", 403)
    if profiles == "recipient_incomplete":
        return (
            200,
            "locked",
            "Rae Recipient hasn't completed their profile yet, so they can't receive messages.",
            403,
        )
    return 200, "button", None, 303


@pytest.mark.parametrize(
    ("degree", "plan", "block", "profiles"),
    list(itertools.product(DEGREES, PLANS, BLOCKS, PROFILES)),
)
def test_permission_matrix(app, browser, degree, plan, block, profiles):
    with app.app_context():
        sender = make_member("Sam Sender", plan=plan, full=profiles != "sender_incomplete")
        recipient = make_member("Rae Recipient", full=profiles != "recipient_incomplete")
        path = {"1st": [], "2nd": ["X"], "3rd": ["X", "Y"], "out": None}[degree]
        if path is not None:
            chain = [sender] + [make_member(f"Middle {name}") for name in path] + [recipient]
            for a, b in zip(chain, chain[1:], strict=False):
                connect(a, b)
        else:
            make_member("Stranger")
        if block == "sender_blocked":
            blocking.block(sender.id, recipient.id)
        elif block == "recipient_blocked":
            blocking.block(recipient.id, sender.id)

    profile_status, slot, reason, post_status = expected(degree, plan, block, profiles)
    browser.login(sender)
    page = browser.get(f"/in/{recipient.handle}")
    assert page.status_code == profile_status
    if slot == "button":
        assert by_testid(page, "message-button")
        assert not by_testid(page, "message-locked")
    elif slot == "locked":
        assert not by_testid(page, "message-button")
        assert by_testid(page, "message-locked")
        assert texts(page, "message-locked-reason")[0].startswith(reason)

    key = soup(browser.get("/messaging")).find(
        "meta", attrs={"name": "csrf-token"}
    )  # any page works
    assert key is not None
    response = browser.post(
        f"/messaging/new/{recipient.handle}",
        {"body": "Hello Rae", "idempotency_key": "matrix-key-0001"},
    )
    assert response.status_code == post_status
    with app.app_context():
        messages = db.session.scalar(db.select(db.func.count()).select_from(Message))
        threads = db.session.scalar(db.select(db.func.count()).select_from(Thread))
        assert db.session.get(Member, sender.id) is not None
    if post_status == 303:
        assert (messages, threads) == (1, 1)
    else:
        assert (messages, threads) == (0, 0)
        if post_status == 403:
            assert texts(response, "form-error") == [reason]
