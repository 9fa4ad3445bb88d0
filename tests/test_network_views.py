"""My Network, search, the profile's Connect and Message slots, views, settings — in HTML."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Invitation, Member, utcnow
from linkmsg.services import blocking, degrees, network, profile_views

from .factories import by_testid, connect, get_member, is_fragment, make_member, soup, texts


@pytest.fixture
def pair(app, member_factory):
    return member_factory(name="Ann Lee"), member_factory(name="Bob Stone")


def control(response):
    return by_testid(response, "connect-control")[0]


def test_profile_shows_degree_mutual_count_and_connect(app, browser, member_factory):
    ann, bob, cat = (member_factory(name=n) for n in ("Ann Lee", "Bob Stone", "Cat Diaz"))
    with app.app_context():
        connect(ann, bob)
        connect(bob, cat)
    browser.login(ann)
    page = browser.get(f"/in/{cat.handle}")
    assert texts(page, "degree-badge") == ["2nd"]
    assert texts(page, "mutual-connections") == ["1 mutual connection"]
    assert control(page)["data-state"] == "none"
    assert by_testid(page, "message-locked")
    assert texts(page, "message-locked-reason")[0].startswith(
        "Connect with Cat Diaz to message them, or send an InMail with Premium."
    )
    assert not by_testid(page, "message-button")


def test_connection_profile_shows_the_message_button(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        connect(ann, bob)
    browser.login(ann)
    page = browser.get(f"/in/{bob.handle}")
    assert texts(page, "degree-badge") == ["1st"]
    button = by_testid(page, "message-button")[0]
    assert button["href"] == f"/messaging/new/{bob.handle}"
    assert control(page)["data-state"] == "connected"


def test_incomplete_profile_locks_the_message_button_with_what_to_fill(
    app, browser, member_factory
):
    ann = member_factory(name="Ann", full=False)
    bob = member_factory(name="Bob")
    with app.app_context():
        connect(ann, bob)
    browser.login(ann)
    reason = texts(browser.get(f"/in/{bob.handle}"), "message-locked-reason")[0]
    assert reason.startswith("Add your headline and location to your profile to message Bob.")


def test_recipients_incomplete_profile_locks_the_message_button(app, browser, member_factory):
    ann = member_factory(name="Ann")
    bob = member_factory(name="Bob", full=False)
    with app.app_context():
        connect(ann, bob)
    browser.login(ann)
    reason = texts(browser.get(f"/in/{bob.handle}"), "message-locked-reason")[0]
    assert reason == "Bob hasn't completed their profile yet, so they can't receive messages."


def test_invite_accept_flow_without_javascript(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = browser.post(f"/network/invite/{bob.handle}", {"next": f"/in/{bob.handle}"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/in/{bob.handle}"
    page = browser.get(f"/in/{bob.handle}")
    assert texts(page, "flash") == ["Invitation sent to Bob Stone."]
    assert control(page)["data-state"] == "sent"
    assert texts(page, "pending") == ["Pending"]

    browser.logout()
    browser.login(bob)
    network_page = browser.get("/network")
    received = by_testid(network_page, "received-invitations")[0]
    assert "Ann Lee" in received.get_text()
    accept_form = received.find("form", action=lambda a: a and a.endswith("/accept"))
    response = browser.post(accept_form["action"], {"next": "/network"})
    assert response.headers["Location"] == "/network"
    page = browser.get("/network")
    assert texts(page, "flash") == ["You and Ann Lee are now connected."]
    assert "Ann Lee" in by_testid(page, "connections")[0].get_text()
    assert texts(page, "connection-count") == ["1"]


def test_invite_with_a_note_from_the_invite_page(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    page = browser.get(f"/network/invite/{bob.handle}")
    assert soup(page).find("textarea", attrs={"name": "note"})
    response = browser.post(f"/network/invite/{bob.handle}", {"note": "We met at PyCon"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(Invitation.note)) == "We met at PyCon"
    browser.logout()
    browser.login(bob)
    assert (
        "We met at PyCon"
        in by_testid(browser.get("/network"), "received-invitations")[0].get_text()
    )


def test_too_long_note_is_refused_in_the_page_and_nothing_is_sent(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = browser.post(f"/network/invite/{bob.handle}", {"note": "x" * 301})
    assert response.status_code == 422
    assert texts(response, "form-error") == ["Your note can be at most 300 characters."]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 0


@pytest.mark.parametrize(
    ("setup", "status", "message"),
    [
        ("connected", 409, "You and Bob Stone are already connected."),
        ("pending", 409, "Your invitation to Bob Stone is pending."),
        ("i_blocked", 403, "You blocked Bob Stone. Unblock them in Settings to connect."),
        ("limit", 429, "You've reached the limit of 1 invitations a week."),
    ],
)
def test_invite_refusals_show_their_reason_in_the_page(
    app, browser, pair, member_factory, setup, status, message
):
    ann, bob = pair
    with app.app_context():
        if setup == "connected":
            connect(ann, bob)
        elif setup == "pending":
            network.invite(ann.id, bob.id)
        elif setup == "i_blocked":
            blocking.block(ann.id, bob.id)
        elif setup == "limit":
            app.config["INVITATIONS_PER_WEEK"] = 1
            network.invite(ann.id, member_factory().id)
    browser.login(ann)
    response = browser.post(f"/network/invite/{bob.handle}")
    assert response.status_code == status
    assert texts(response, "form-error")[0].startswith(message)


def test_blocked_member_cannot_see_or_invite_the_blocker(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        blocking.block(bob.id, ann.id)
    browser.login(ann)
    assert browser.get(f"/in/{bob.handle}").status_code == 404
    assert browser.post(f"/network/invite/{bob.handle}").status_code == 404
    assert "Bob Stone" not in browser.get("/search?q=bob").get_data(as_text=True)


def test_htmx_invite_returns_the_control_fragment(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    response = browser.post(f"/network/invite/{bob.handle}", {"next": "/search?q=bob"}, htmx=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert is_fragment(response)  # a fragment, not a page
    page = soup(response)
    fragment = page.select_one('[data-testid="connect-control"]')
    assert fragment["data-state"] == "sent"
    assert fragment["id"] == f"connect-{bob.id}"
    assert texts(response, "connect-notice") == ["Invitation sent to Bob Stone."]


def test_htmx_refusal_comes_back_in_the_control(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        network.invite(ann.id, bob.id)
    browser.login(ann)
    response = browser.post(f"/network/invite/{bob.handle}", htmx=True)
    assert response.status_code == 409
    assert texts(response, "connect-notice") == ["Your invitation to Bob Stone is pending."]


def test_htmx_accept_ignore_withdraw_swap_the_control(app, browser, member_factory):
    ann, bob, cat = (member_factory(name=n) for n in ("Ann", "Bob", "Cat"))
    with app.app_context():
        to_accept = network.invite(bob.id, ann.id).invitation.id
        to_ignore = network.invite(cat.id, ann.id).invitation.id
    browser.login(ann)
    page = browser.get("/network")
    assert soup(page).find(id="received-count").get_text() == "(2)"
    assert texts(page, "connection-count") == ["0"]
    accepted = browser.post(f"/network/invitations/{to_accept}/accept", htmx=True)
    assert control(accepted)["data-state"] == "connected"
    # The page's numbers change with it, out of band.
    answer = soup(accepted)
    assert answer.find(id="received-count")["hx-swap-oob"] == "outerHTML"
    assert answer.find(id="received-count").get_text() == "(1)"
    assert answer.find(id="connection-count").get_text() == "1"
    ignored = browser.post(f"/network/invitations/{to_ignore}/ignore", htmx=True)
    assert texts(ignored, "connect-notice") == ["Invitation from Cat ignored."]
    with app.app_context():
        sent = network.invite(ann.id, cat.id)
    assert sent.connected  # inviting back accepts the ignored one
    withdraw_target = member_factory(name="Dee")
    with app.app_context():
        inv = network.invite(ann.id, withdraw_target.id).invitation.id
    withdrawn = browser.post(f"/network/invitations/{inv}/withdraw", htmx=True)
    assert control(withdrawn)["data-state"] == "none"


def test_someone_elses_invitation_cannot_be_accepted(app, browser, member_factory):
    ann, bob, eve = (member_factory(name=n) for n in ("Ann", "Bob", "Eve"))
    with app.app_context():
        invitation = network.invite(ann.id, bob.id).invitation.id
    browser.login(eve)
    for action in ("accept", "ignore", "withdraw"):
        assert browser.post(f"/network/invitations/{invitation}/{action}").status_code == 404
    with app.app_context():
        assert not degrees.are_connected(ann.id, bob.id)


def test_network_actions_need_a_csrf_token(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    assert browser.post(f"/network/invite/{bob.handle}", csrf=False).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 0


def test_remove_connection_from_the_profile(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        connect(ann, bob)
    browser.login(ann)
    response = browser.post(
        f"/network/connections/{bob.handle}/remove", {"next": f"/in/{bob.handle}"}
    )
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == ["You are no longer connected with Bob Stone."]
    assert control(page)["data-state"] == "none"
    with app.app_context():
        assert not degrees.are_connected(bob.id, ann.id)


def test_network_page_pages_connections(app, browser, member_factory):
    app.config["CONNECTIONS_PER_PAGE"] = 2
    me = member_factory(name="Me")
    with app.app_context():
        for name in ("Ava", "Ben", "Cal"):
            connect(me, member_factory(name=name))
    browser.login(me)
    first = browser.get("/network")
    assert [
        a.get_text()
        for a in soup(first).select('[data-testid="connections"] [data-testid="member-name"]')
    ] == [
        "Ava",
        "Ben",
    ]
    second = browser.get(by_testid(first, "next-page")[0]["href"])
    assert [
        a.get_text()
        for a in soup(second).select('[data-testid="connections"] [data-testid="member-name"]')
    ] == ["Cal"]
    assert not by_testid(second, "next-page")


def test_search_page_shows_degree_badges_and_connect(app, browser, member_factory):
    ann, bob, cat, dee = (
        member_factory(name=n, headline="Designer") for n in ("Ann", "Bob", "Cat", "Dee")
    )
    with app.app_context():
        connect(ann, bob)
        connect(bob, cat)
    browser.login(ann)
    page = browser.get("/search?q=designer")
    rows = by_testid(page, "member-row")
    assert [r["data-handle"] for r in rows] == [bob.handle, cat.handle, dee.handle]
    assert [r.select_one('[data-testid="degree-badge"]').get_text() for r in rows] == [
        "1st",
        "2nd",
        "Out of network",
    ]
    assert rows[1].select_one('[data-testid="connect-control"]')["data-state"] == "none"


def test_search_rows_show_each_connect_state_as_the_profile_does(app, browser, member_factory):
    """The search reads each result's invitation with it and its connection from its
    degree: every state comes out as the one-member answer (`network.relationship`)."""
    ann, bob, cat, dee, eve, fay, gus = (
        member_factory(name=n, headline="Designer")
        for n in ("Ann", "Bob", "Cat", "Dee", "Eve", "Fay", "Gus")
    )
    with app.app_context():
        connect(ann, bob)
        network.invite(ann.id, cat.id)  # sent
        network.invite(dee.id, ann.id)  # received
        ignored = network.invite(eve.id, ann.id).invitation.id
        network.ignore(ann.id, ignored)  # received, then ignored: shows nothing
        network.invite(fay.id, ann.id)
        network.invite(ann.id, fay.id)  # accepts Fay's: connected
        expected = {
            m.handle: network.relationship(ann.id, m.id).state
            for m in (bob, cat, dee, eve, fay, gus)
        }
    browser.login(ann)
    rows = by_testid(browser.get("/search?q=designer"), "member-row")
    states = {
        r["data-handle"]: r.select_one('[data-testid="connect-control"]')["data-state"]
        for r in rows
    }
    assert states == expected
    assert [states[m.handle] for m in (bob, cat, dee, eve, fay, gus)] == [
        "connected",
        "sent",
        "received",
        "none",
        "connected",
        "none",
    ]


def test_search_pages_by_name_with_its_cursor_and_every_word(app, browser, member_factory):
    me = member_factory(name="Searcher")
    names = [f"Pat {chr(65 + n // 5)}{n % 5} Quill" for n in range(23)]
    for name in names:
        member_factory(name=name, headline="Ink designer")
    member_factory(name="Pat Other", headline="Ink writer")  # not every word
    browser.login(me)
    first = browser.get("/search?q=quill designer")
    shown = texts(first, "member-name")
    assert shown == sorted(names)[: app.config["SEARCH_RESULTS_PER_PAGE"]]
    second = browser.get(by_testid(first, "next-page")[0]["href"])
    rest = texts(second, "member-name")
    assert shown + rest == sorted(names) and not by_testid(second, "next-page")
    assert texts(browser.get("/search?q=pat ink"), "member-name")[:1] == ["Pat A0 Quill"]


def test_search_fragment_for_htmx_and_empty_state(app, browser, member_factory):
    browser.login(member_factory())
    fragment = browser.get("/search?q=nobodyhere", htmx=True)
    assert is_fragment(fragment)
    assert by_testid(fragment, "search-results")
    assert "No members match" in texts(fragment, "empty")[0]


def test_search_needs_login(browser):
    assert browser.get("/search?q=a").status_code == 302


def test_profile_view_is_recorded_and_listed(app, browser, pair):
    ann, bob = pair
    browser.login(ann)
    browser.get(f"/in/{bob.handle}")
    browser.get(f"/in/{bob.handle}")
    browser.logout()
    browser.login(bob)
    page = browser.get("/profile/views")
    assert texts(page, "viewer-total") == ["1 member viewed your profile in the past 90 days."]
    assert [r["data-handle"] for r in by_testid(page, "member-row")] == [ann.handle]


def test_premium_viewers_page_pages_with_a_cursor(app, browser, member_factory):
    me = member_factory(name="Popular Person")
    with app.app_context():
        from linkmsg.services import billing

        billing.start_premium(me.id)
        for n in range(profile_views.VIEWERS_PAGE + 3):
            profile_views.record_view(make_member(f"Viewer {n}").id, me.id)
    browser.login(me)
    first = browser.get("/profile/views")
    names = texts(first, "member-name")
    assert len(names) == profile_views.VIEWERS_PAGE
    more = by_testid(first, "next-page")[0]["href"]
    second = browser.get(more)
    rest = texts(second, "member-name")
    assert len(rest) == 3 and not set(rest) & set(names) and not by_testid(second, "next-page")
    assert browser.get("/profile/views?after_seen=garbage&after_id=1").status_code == 200


def test_active_status_on_profile_respects_settings(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        member = db.session.get(Member, bob.id)
        member.last_active_at = utcnow()
        db.session.commit()
    browser.login(ann)
    assert texts(browser.get(f"/in/{bob.handle}"), "active-status") == ["Active now"]
    # Ann hides her own status: she no longer sees others'.
    response = browser.post("/settings", {"email_notifications": "y", "accepts_inmail": "y"})
    assert response.status_code == 303
    assert by_testid(browser.get(f"/in/{bob.handle}"), "active-status") == []
    with app.app_context():
        assert get_member(ann.id).show_active is False


def test_settings_page_saves_preferences(app, browser, member_factory):
    ann = member_factory()
    browser.login(ann)
    page = browser.get("/settings")
    assert soup(page).find("input", attrs={"name": "show_active"}).has_attr("checked")
    browser.post("/settings", {"show_active": "y"})
    with app.app_context():
        saved = get_member(ann.id)
        assert (saved.show_active, saved.email_notifications, saved.accepts_inmail) == (
            True,
            False,
            False,
        )
    assert texts(browser.get("/settings"), "flash") == ["Your settings are saved."]


def test_connections_and_search_results_offer_a_message_link(app, browser, pair):
    ann, bob = pair
    with app.app_context():
        connect(ann, bob)
    browser.login(ann)
    for page in (browser.get("/network"), browser.get("/search?q=" + bob.name.split()[0])):
        row = next(r for r in by_testid(page, "member-row") if r["data-handle"] == bob.handle)
        link = row.find(attrs={"data-testid": "row-message"})
        assert link["href"] == f"/messaging/new/{bob.handle}"
    # The profile keeps its one Message button.
    profile = browser.get(f"/in/{bob.handle}")
    assert not by_testid(profile, "row-message") and len(by_testid(profile, "message-button")) == 1
