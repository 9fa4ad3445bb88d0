"""Block and unblock from the pages, and every effect of a block (SPEC section 6)."""

from linkmsg.extensions import db
from linkmsg.models import Invitation, Member
from linkmsg.services import degrees, messaging, network

from .factories import by_testid, connect, texts


def test_block_from_a_profile_hides_everything_both_ways(app, browser, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        connect(ann, bob)
        thread_id = messaging.start(
            db.session.get(Member, bob.id), db.session.get(Member, ann.id), "hi"
        ).thread_id
    browser.login(ann)
    profile = browser.get(f"/in/{bob.handle}")
    confirm = browser.get(by_testid(profile, "block-link")[0]["href"])
    assert by_testid(confirm, "confirm-block")
    response = browser.post(f"/block/{bob.handle}")
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash")[0].startswith("You blocked Bob Stone.")
    assert [row["data-handle"] for row in by_testid(page, "member-row")] == [bob.handle]
    assert browser.get(f"/messaging/t/{thread_id}").status_code == 404
    locked = browser.get(f"/in/{bob.handle}")
    assert texts(locked, "message-locked-reason")[0].startswith("You blocked Bob Stone.")
    assert browser.post(f"/network/invite/{bob.handle}").status_code == 403

    browser.logout()
    browser.login(bob)
    assert browser.get(f"/in/{ann.handle}").status_code == 404
    assert "Ann Lee" not in browser.get("/search?q=ann").get_data(as_text=True)
    assert browser.get(f"/messaging/t/{thread_id}").status_code == 404
    assert by_testid(browser.get("/messaging"), "thread-row") == []
    assert browser.post(f"/network/invite/{ann.handle}").status_code == 404
    assert browser.get(f"/messaging/new/{ann.handle}").status_code == 404
    assert browser.get(f"/inmail/new/{ann.handle}").status_code in (303, 404)
    with app.app_context():
        assert not degrees.are_connected(ann.id, bob.id)


def test_blocking_withdraws_pending_invitations(app, browser, member_factory):
    ann, bob = member_factory(name="Ann"), member_factory(name="Bob")
    with app.app_context():
        network.invite(bob.id, ann.id)
    browser.login(ann)
    browser.post(f"/block/{bob.handle}")
    with app.app_context():
        assert db.session.scalar(db.select(Invitation.status)) == "withdrawn"
    assert by_testid(browser.get("/network"), "received-invitations") == []


def test_unblock_from_settings(app, browser, member_factory):
    ann, bob = member_factory(name="Ann"), member_factory(name="Bob")
    browser.login(ann)
    browser.post(f"/block/{bob.handle}")
    settings = browser.get("/settings")
    blocked = browser.get(by_testid(settings, "blocked-link")[0]["href"])
    assert [row["data-handle"] for row in by_testid(blocked, "member-row")] == [bob.handle]
    response = browser.post(f"/unblock/{bob.handle}")
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == ["You unblocked Bob."]
    assert texts(page, "empty") == ["You haven't blocked anyone."]
    # The connection the block ended does not come back; an invitation is possible again.
    assert by_testid(browser.get(f"/in/{bob.handle}"), "connect-control")[0]["data-state"] == "none"


def test_block_and_unblock_need_csrf_and_cannot_reach_strangers(app, browser, member_factory):
    ann, bob, cat = (
        member_factory(name="Ann"),
        member_factory(name="Bob"),
        member_factory(name="Cat"),
    )
    browser.login(ann)
    assert browser.post(f"/block/{bob.handle}", csrf=False).status_code == 400
    assert by_testid(browser.get("/settings/blocked"), "member-row") == []
    assert browser.post(f"/unblock/{cat.handle}").status_code == 404
    assert browser.post("/block/nobody-here").status_code == 404
    assert browser.post(f"/block/{ann.handle}").status_code == 422
