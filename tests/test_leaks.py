"""Rules that must hold past a block or a suspension, and a message that shows nothing.

Each test first does what an abuser would (a notification replayed after a block, an
invitation accepted from a suspended member by POST, a message of zero-width characters)
and then checks what the member sees.
"""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Connection, Member, Message, utcnow
from linkmsg.services import (
    billing,
    blocking,
    events,
    network,
    notifications,
    profile_views,
    sessions,
)

from .factories import Browser, by_testid, connect, make_member, soup, texts
from .live import EventStream, LiveServer


def suspend(app, member) -> None:
    with app.app_context():
        db.session.get(Member, member.id).suspended_at = utcnow()
        sessions.end_all(member.id)
        db.session.commit()


def message_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Message))


# ---------------------------------------------------------------- replayed notifications


@pytest.fixture
def served(app_factory):
    app = app_factory(SSE_KEEPALIVE_SECONDS=1)
    with LiveServer(app) as server:
        yield app, server


def replayed_events(app, server, member, after: int):
    """Every event the member's stream replays after event `after`."""
    browser = Browser(app)
    browser.login(member)
    cookie = browser.client.get_cookie("session").value
    stream = EventStream(server.port, cookie=cookie, path=f"/stream?last_event_id={after}")
    try:
        assert stream.status == 200
        return stream.events(100, timeout=2)
    finally:
        stream.close()


def viewed_by_julia(app):
    """Bob (Premium, so his notifications name who viewed him) viewed by Julia Quist;
    also the id of Bob's last event before it."""
    with app.app_context():
        bob, julia = make_member("Bob Stone"), make_member("Julia Quist")
        billing.start_premium(bob.id)
        before = events.latest_seq(bob.id)
        profile_views.record_view(julia.id, bob.id)  # "Julia Quist viewed your profile"
        return bob, julia, before


@pytest.mark.parametrize("who_blocks", ["nobody", "viewer", "viewed"])
def test_replay_leaves_out_a_notification_from_a_member_blocked_since(served, who_blocks):
    app, server = served
    bob, julia, before = viewed_by_julia(app)
    with app.app_context():
        if who_blocks == "viewed":
            blocking.block(bob.id, julia.id)
        elif who_blocks == "viewer":
            blocking.block(julia.id, bob.id)

    replayed = replayed_events(app, server, bob, before)
    assert replayed
    assert 'id="notification-badge-slot"' in replayed[0].data  # the badges still come
    named = [event for event in replayed if f"/in/{julia.handle}" in event.data]
    browser = Browser(app)
    browser.login(bob)
    listed = texts(browser.get("/notifications"), "notification")
    if who_blocks == "nobody":
        assert named and "Julia Quist" in named[0].data
        assert listed and "Julia Quist viewed your profile." in listed[0]
    else:
        assert not named and not [event for event in replayed if "Julia" in event.data]
        assert not listed


def test_replay_and_notifications_leave_out_a_suspended_member(served):
    app, server = served
    bob, julia, before = viewed_by_julia(app)
    suspend(app, julia)

    [event] = replayed_events(app, server, bob, before)
    assert "Julia" not in event.data
    browser = Browser(app)
    browser.login(bob)
    page = browser.get("/notifications")
    assert not by_testid(page, "notification")
    assert not by_testid(page, "notification-badge")


def test_a_notification_still_shows_when_nothing_hides_its_actor(ctx):
    bob, julia = make_member("Bob Stone"), make_member("Julia Quist")
    billing.start_premium(bob.id)  # Premium: told who viewed him
    profile_views.record_view(julia.id, bob.id)
    db.session.commit()
    [line] = notifications.page(bob.id)[0]
    shown = notifications.group_of(bob.id, line.notification.id)
    assert shown.ids == line.ids and shown.actor.name == "Julia Quist"
    # Nobody else sees it, whatever its id.
    assert notifications.group_of(julia.id, line.notification.id) is None


def test_a_free_member_is_told_of_a_profile_view_but_not_by_whom(ctx):
    bob, julia = make_member("Bob Stone"), make_member("Julia Quist")
    profile_views.record_view(julia.id, bob.id)
    db.session.commit()
    [line] = notifications.page(bob.id)[0]
    assert line.notification.kind == notifications.PROFILE_VIEWED and line.actor is None
    assert notifications.group_of(bob.id, line.notification.id).actors == []
    billing.start_premium(bob.id)
    assert notifications.group_of(bob.id, line.notification.id).actor.name == "Julia Quist"


# ---------------------------------------------------------------- invitations


def test_an_invitation_from_a_member_suspended_since_cannot_be_accepted(app, browser):
    with app.app_context():
        ann, sam = make_member("Ann Lee"), make_member("Sam Spam")
        invitation_id = network.invite(sam.id, ann.id).invitation.id
    suspend(app, sam)
    browser.login(ann)
    assert not by_testid(browser.get("/network"), "accept-button")

    response = browser.post(f"/network/invitations/{invitation_id}/accept", {"next": "/network"})
    assert response.status_code == 404
    assert texts(response, "refusal") == ["This invitation is no longer pending."]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0


# ---------------------------------------------------------------- invisible messages

INVISIBLE = [
    "\u200b",
    "\u200b\u200c\u200d",
    "\u2060\ufeff",
    " \u200b \n\u200d\t",
    "\u200e\u200f\u202a\u202c",  # bidirectional marks and embeddings
    "\u3164\u115f",  # Hangul fillers
    "\u2800",  # braille blank
    "\u00ad\u034f",  # soft hyphen, combining grapheme joiner
]


@pytest.fixture
def friends(app):
    with app.app_context():
        ann, bob = make_member("Ann Lee"), make_member("Bob Stone")
        connect(ann, bob)
    return ann, bob


@pytest.mark.parametrize("body", INVISIBLE)
def test_a_first_message_that_shows_nothing_is_refused_as_empty(app, browser, friends, body):
    ann, bob = friends
    browser.login(ann)
    compose = browser.get(f"/messaging/new/{bob.handle}")
    key = soup(compose).find("input", attrs={"name": "idempotency_key"})["value"]
    response = browser.post(f"/messaging/new/{bob.handle}", {"body": body, "idempotency_key": key})
    assert response.status_code == 422
    assert texts(response, "form-error") == ["Write a message or attach a file before sending."]
    assert message_count(app) == 0


@pytest.mark.parametrize("body", INVISIBLE[:3])
def test_a_reply_that_shows_nothing_is_refused_and_a_real_one_goes(app, browser, friends, body):
    ann, bob = friends
    browser.login(ann)
    first = browser.post(
        f"/messaging/new/{bob.handle}", {"body": "Hello", "idempotency_key": "first-key-0001"}
    )
    thread = first.headers["Location"].split("#")[0]
    response = browser.post(thread, {"body": body, "idempotency_key": "reply-key-0001"})
    assert response.status_code == 422
    assert texts(response, "form-error") == ["Write a message or attach a file before sending."]
    assert message_count(app) == 1
    # Visible text around a zero-width joiner (an emoji sequence, say) is a message.
    ok = browser.post(thread, {"body": "\U0001f469\u200d\U0001f4bb", "idempotency_key": "k" * 14})
    assert ok.status_code == 303
    assert message_count(app) == 2


def test_an_inmail_that_shows_nothing_is_refused(app, browser):
    with app.app_context():
        sam, rae = make_member("Sam Sender"), make_member("Rae Recipient")
        billing.start_premium(sam.id)
    browser.login(sam)
    form = soup(browser.get(f"/inmail/new/{rae.handle}"))
    key = form.find("input", attrs={"name": "idempotency_key"})
    data = {"subject": "Hello", "body": "\u200b\u2060", "template": ""}
    if key is not None:
        data["idempotency_key"] = key["value"]
    response = browser.post(f"/inmail/new/{rae.handle}", data)
    assert response.status_code == 422
    assert texts(response, "form-error") == ["Write your InMail before sending."]
    data.update(subject="\u200b", body="A real question")
    response = browser.post(f"/inmail/new/{rae.handle}", data)
    assert texts(response, "form-error") == ["Give your InMail a subject."]
    assert message_count(app) == 0
