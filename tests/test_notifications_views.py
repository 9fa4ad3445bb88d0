"""`/notifications` and the unread count in the navigation."""

from linkmsg.services import blocking, network, profile_views

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
    assert len(by_testid(fragment, "notification")) == 2
    older = browser.get(by_testid(fragment, "next-page")[0]["href"])
    assert len(by_testid(older, "notification")) == 1


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
