"""`/notifications` and the unread count in the navigation."""

from bs4 import BeautifulSoup

from linkmsg import live
from linkmsg.extensions import db
from linkmsg.models import Event
from linkmsg.services import blocking, events, network, profile_views

from .factories import by_testid, connect, is_fragment, texts


def badge(response):
    found = by_testid(response, "notification-badge")
    return int(found[0].get_text()) if found else 0


def test_invitation_received_accepted_and_profile_view_are_notified(app, browser, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        invitation = network.invite(ann.id, bob.id).invitation.id
    browser.login(bob)
    browser.get(f"/in/{ann.handle}")  # Bob views Ann's profile
    home = browser.get("/")
    assert badge(home) == 1
    page = browser.get("/notifications")
    items = by_testid(page, "notification")
    assert [i["data-kind"] for i in items] == ["invitation_received"]
    assert items[0]["data-unread"] == "1"
    assert "Ann Lee invited you to connect." in items[0].get_text(" ", strip=True)
    # Seen once, then read: the badge is gone and the item no longer marked unread.
    assert badge(browser.get("/")) == 0
    assert by_testid(browser.get("/notifications"), "notification")[0]["data-unread"] == "0"

    browser.post(f"/network/invitations/{invitation}/accept")
    browser.logout()
    browser.login(ann)
    assert badge(browser.get("/")) == 2
    page = browser.get("/notifications")
    kinds = [i["data-kind"] for i in by_testid(page, "notification")]
    assert kinds == ["invitation_accepted", "profile_viewed"]
    text = " ".join(texts(page, "notification"))
    assert "Bob Stone accepted your invitation." in text
    # Ann is a free member: who viewed her is on the viewers page (the last 5), not here.
    assert "Someone viewed your profile." in text and "Bob Stone viewed" not in text


def test_notifications_are_private(app, browser, member_factory):
    ann, bob, eve = (member_factory(name=n) for n in ("Ann", "Bob", "Eve"))
    with app.app_context():
        connect(ann, bob)
    browser.login(eve)
    page = browser.get("/notifications")
    assert by_testid(page, "notification") == []
    assert "No notifications yet" in texts(page, "empty")[0]


def test_notifications_need_login(browser):
    response = browser.get("/notifications")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_notifications_fragment_for_htmx_and_older_pages(app, browser, member_factory):
    me = member_factory(name="Me")
    viewers = [member_factory(name=f"Viewer {i}") for i in range(3)]
    with app.app_context():
        for viewer in viewers:
            profile_views.record_view(viewer.id, me.id)
    app.config["NOTIFICATIONS_PER_PAGE"] = 2
    browser.login(me)
    fragment = browser.get("/notifications", htmx=True)
    assert is_fragment(fragment)
    # Pages count notifications; the two views of the first page read as one line.
    assert [n["data-count"] for n in by_testid(fragment, "notification")] == ["2"]
    older = browser.get(by_testid(fragment, "next-page")[0]["href"])
    assert [n["data-count"] for n in by_testid(older, "notification")] == ["1"]


def test_premium_members_see_who_viewed_them_in_notifications(app, browser, member_factory):
    ann = member_factory(name="Ann Lee", plan="premium")
    bob = member_factory(name="Bob Stone")
    with app.app_context():
        profile_views.record_view(bob.id, ann.id)
    browser.login(ann)
    assert (
        "Bob Stone viewed your profile." in texts(browser.get("/notifications"), "notification")[0]
    )


def test_a_blocked_members_notifications_disappear(app, browser, member_factory):

    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        network.invite(bob.id, ann.id)
        profile_views.record_view(bob.id, ann.id)
        blocking.block(bob.id, ann.id)
        profile_views.record_view(bob.id, ann.id)  # after the block: not recorded
    browser.login(ann)
    page = browser.get("/notifications")
    assert by_testid(page, "notification") == []
    assert "Bob Stone" not in page.get_data(as_text=True)
    assert badge(browser.get("/")) == 0


def sentence(line) -> str:
    """A notification's words, without its avatars' initials."""
    return " ".join(line.find("p").get_text(" ").split())


def test_seven_profile_views_read_as_one_line_with_avatars(app, browser, member_factory):
    ava = member_factory(name="Ava Chen", plan="premium")
    viewers = [member_factory(name=f"Viewer {n}") for n in range(6)] + [
        member_factory(name="Zoe Park")
    ]
    with app.app_context():
        for viewer in viewers:
            profile_views.record_view(viewer.id, ava.id)
    browser.login(ava)
    page = browser.get("/notifications")
    [line] = by_testid(page, "notification")
    assert line["data-count"] == "7" and line["data-unread"] == "1"
    assert sentence(line).startswith("Zoe Park and 6 others viewed your profile.")
    avatars = line.select('[data-testid="notification-avatars"] [data-testid="avatar"]')
    assert [a["aria-label"] for a in avatars] == ["Zoe Park", "Viewer 5", "Viewer 4"]
    # Read as a whole: the badge is gone.
    assert by_testid(browser.get("/notifications"), "notification")[0]["data-unread"] == "0"


def test_two_viewers_are_named_and_a_free_member_sees_a_count(app, browser, member_factory):
    ann = member_factory(name="Ann Lee", plan="premium")
    ben = member_factory(name="Ben Ode")
    cy, dee = member_factory(name="Cy Moss"), member_factory(name="Dee Roy")
    with app.app_context():
        for viewed in (ann, ben):
            for viewer in (cy, dee):
                profile_views.record_view(viewer.id, viewed.id)
    browser.login(ann)
    [line] = by_testid(browser.get("/notifications"), "notification")
    assert sentence(line).startswith("Dee Roy and Cy Moss viewed your profile.")
    browser.logout()
    browser.login(ben)
    page = browser.get("/notifications")
    assert sentence(by_testid(page, "notification")[0]).startswith("2 people viewed your profile.")
    assert by_testid(page, "notification-avatars") == []  # who they are is Premium's


def test_other_notifications_break_a_group_of_views(app, browser, member_factory):
    ann = member_factory(name="Ann Lee", plan="premium")
    cy, dee, eve = (member_factory(name=n) for n in ("Cy Moss", "Dee Roy", "Eve Yu"))
    with app.app_context():
        profile_views.record_view(cy.id, ann.id)
        network.invite(eve.id, ann.id)
        profile_views.record_view(dee.id, ann.id)
        profile_views.record_view(eve.id, ann.id)
    browser.login(ann)
    page = browser.get("/notifications")
    lines = by_testid(page, "notification")
    assert [(n["data-kind"], n["data-count"]) for n in lines] == [
        ("profile_viewed", "2"),
        ("invitation_received", "1"),
        ("profile_viewed", "1"),
    ]


def test_an_accepted_invitation_no_longer_offers_to_see_it(app, browser, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        invitation = network.invite(ann.id, bob.id).invitation.id
    browser.login(bob)
    [line] = by_testid(browser.get("/notifications"), "notification")
    assert "See invitation" in line.get_text(" ", strip=True)
    browser.post(f"/network/invitations/{invitation}/accept")
    [line] = by_testid(browser.get("/notifications"), "notification")
    text = sentence(line)
    assert "Ann Lee invited you to connect. You accepted." in text
    assert "See invitation" not in text


def live_piece(app, member_id) -> BeautifulSoup:
    """The newest live event of a member, as the stream would send it."""
    with app.test_request_context():
        seq = events.latest_seq(member_id)
        event = db.session.scalar(
            db.select(Event).where(Event.member_id == member_id, Event.seq == seq)
        )
        return BeautifulSoup(live.render(event), "html.parser")


def test_a_live_view_grows_the_newest_line_in_place(app, member_factory):
    ann = member_factory(name="Ann Lee", plan="premium")
    cy, dee = member_factory(name="Cy Moss"), member_factory(name="Dee Roy")
    with app.app_context():
        profile_views.record_view(cy.id, ann.id)
    first = live_piece(app, ann.id)
    [alone] = first.select('[data-testid="notification"]')
    # A line of its own goes on top of the list.
    assert alone.parent.name == "ul" and alone.parent["hx-swap-oob"] == (
        "afterbegin:#notification-items"
    )
    with app.app_context():
        profile_views.record_view(dee.id, ann.id)
    second = live_piece(app, ann.id)
    [grown] = second.select('[data-testid="notification"]')
    # The same line, now for two, replaces the first where it is.
    assert grown["id"] == alone["id"] and grown["hx-swap-oob"] == "outerHTML"
    assert grown["data-count"] == "2"
    assert sentence(grown).startswith("Dee Roy and Cy Moss viewed your profile.")
    announced = second.select_one("#live-announcer").get_text(" ", strip=True)
    assert announced.startswith("Dee Roy and Cy Moss viewed your profile.")
