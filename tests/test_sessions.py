"""Sessions that end: logout, password change, "log out of all other sessions", suspension.

A copied cookie is the attack: it must stop working the moment its session ends.
"""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Event, Member, MemberSession
from linkmsg.services import events, sessions

from .factories import PASSWORD, Browser, by_testid, soup, texts
from .live import LiveServer
from .parallel import post_together

NEW_PASSWORD = "walnut orchard semaphore"


def copy_of(browser: Browser) -> Browser:
    """Another browser holding a copy of this one's session cookie."""
    thief = Browser(browser.app)
    thief.client.set_cookie("session", browser.client.get_cookie("session").value)
    return thief


def logged_in(browser: Browser) -> bool:
    return browser.get("/messaging").status_code == 200


def live_sessions(app, member_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                db.select(MemberSession.id)
                .where(MemberSession.member_id == member_id, MemberSession.ended_at.is_(None))
                .order_by(MemberSession.id)
            )
        )


def ended_events(app, member_id: int) -> list[list[int]]:
    with app.app_context():
        return [
            event.payload["sessions"]
            for event in db.session.scalars(
                db.select(Event)
                .where(Event.member_id == member_id, Event.kind == events.SESSION_ENDED)
                .order_by(Event.id)
            )
        ]


def test_a_copied_cookie_is_logged_out_with_its_session(app, browser, member_factory):
    dana = member_factory()
    browser.login(dana)
    thief = copy_of(browser)
    assert logged_in(thief)
    [sid] = live_sessions(app, dana.id)

    assert browser.logout().status_code == 303
    response = thief.get("/messaging")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert thief.get("/stream").status_code == 401
    assert live_sessions(app, dana.id) == []
    assert ended_events(app, dana.id) == [[sid]]


def test_each_login_is_its_own_session(app, member_factory):
    dana = member_factory()
    laptop, phone = Browser(app), Browser(app)
    laptop.login(dana)
    phone.login(dana)
    assert len(live_sessions(app, dana.id)) == 2
    laptop.logout()
    assert logged_in(phone)
    assert not logged_in(laptop)


def test_a_tampered_session_secret_is_refused(app, browser, member_factory):
    dana = member_factory()
    browser.login(dana)
    with browser.client.session_transaction() as session:
        session["sid_secret"] = "guessed"
    assert not logged_in(browser)


def test_changing_the_password_ends_every_other_session_but_this_one(app, member_factory):
    dana = member_factory()
    laptop, phone = Browser(app), Browser(app)
    laptop.login(dana)
    phone.login(dana)
    stolen = copy_of(phone)
    [laptop_sid, phone_sid] = live_sessions(app, dana.id)

    response = laptop.post(
        "/settings/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 303
    page = laptop.get(response.headers["Location"])
    assert texts(page, "flash") == ["Your password is changed. Every other session is logged out."]
    assert logged_in(laptop)
    assert not logged_in(phone) and not logged_in(stolen)
    assert live_sessions(app, dana.id) == [laptop_sid]
    assert ended_events(app, dana.id) == [[phone_sid]]

    assert Browser(app).post("/login", {"email": dana.email, "password": PASSWORD}).status_code == (
        401
    )
    Browser(app).login(dana.email, NEW_PASSWORD)


def test_a_wrong_current_password_changes_nothing(app, browser, member_factory):
    dana = member_factory()
    browser.login(dana)
    other = Browser(app)
    other.login(dana)
    response = browser.post(
        "/settings/password",
        {"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert texts(response, "form-error") == ["That is not your current password."]
    field = by_testid(response, "form-error")[0].find_parent(class_="field")
    assert field.find("input")["name"] == "current_password"
    assert logged_in(other)
    Browser(app).login(dana)  # the old password still works


def test_a_weak_new_password_is_refused_with_the_reason(app, browser, member_factory):
    dana = member_factory()
    browser.login(dana)
    response = browser.post(
        "/settings/password", {"current_password": PASSWORD, "new_password": "12345678"}
    )
    assert response.status_code == 422
    [error] = texts(response, "form-error")
    assert error.startswith("This password is too easy to guess.")
    assert "common password" in error
    Browser(app).login(dana)


def test_log_out_of_all_other_sessions(app, member_factory):
    dana = member_factory()
    here, phone, tablet = Browser(app), Browser(app), Browser(app)
    for browser in (here, phone, tablet):
        browser.login(dana)
    page = here.get("/settings/password")
    rows = by_testid(page, "session")
    assert len(rows) == 3
    assert [row.get("data-current") for row in rows].count("true") == 1
    assert by_testid(page, "this-session")

    response = here.post("/settings/sessions/end-others")
    assert response.status_code == 303
    page = here.get(response.headers["Location"])
    assert texts(page, "flash") == ["Logged out of 2 other sessions."]
    assert len(by_testid(page, "session")) == 1
    assert logged_in(here)
    assert not logged_in(phone) and not logged_in(tablet)
    [ended] = ended_events(app, dana.id)
    assert len(ended) == 2 and live_sessions(app, dana.id)[0] not in ended


def test_settings_links_to_password_and_sessions(browser, member_factory):
    browser.login(member_factory())
    link = soup(browser.get("/settings")).select_one('[data-testid="password-link"]')
    assert link["href"] == "/settings/password"


def test_suspension_ends_every_session_of_the_member(app, member_factory):
    from linkmsg.services import reports

    bob, fay, mod = member_factory(name="Bob"), member_factory(name="Fay"), member_factory()
    laptop, phone = Browser(app), Browser(app)
    laptop.login(bob)
    phone.login(bob)
    sids = live_sessions(app, bob.id)
    with app.app_context():
        db.session.get(Member, mod.id).role = "admin"
        db.session.commit()
        report = reports.report(fay.id, bob.id, "spam", "selling things")
        reports.resolve(mod.id, report.id, "suspend")
    assert not logged_in(laptop) and not logged_in(phone)
    assert live_sessions(app, bob.id) == []
    assert ended_events(app, bob.id) == [sids]


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; rv:127.0) Gecko/20100101 Firefox/127.0",
            "Firefox on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
    ],
)
def test_a_session_is_shown_by_browser_and_system(agent, shown):
    assert sessions.describe(agent) == shown


def test_two_password_changes_at_once_from_two_sessions_one_wins(app, member_factory):
    dana = member_factory()
    with LiveServer(app) as server:
        statuses = post_together(
            server.url,
            "/settings/password",
            "/settings/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            4,
            login=(dana.email, PASSWORD),
        )
    # One wins; each other is told its change lost (422), or, when the winner had already
    # ended its session, is sent to log in (302). Never two changes, never a 500.
    assert statuses.count(303) == 1
    assert set(statuses) <= {303, 302, 422}
    assert len(live_sessions(app, dana.id)) == 1
    Browser(app).login(dana.email, NEW_PASSWORD)


def _stream_of(server, browser: Browser):
    from .live import EventStream

    stream = EventStream(server.port, cookie=browser.client.get_cookie("session").value)
    assert stream.status == 200
    assert "open" in stream.next(timeout=5, skip_comments=False).comments
    return stream


@pytest.mark.parametrize("how", ["logout", "password change elsewhere", "suspension"])
def test_a_session_that_ends_closes_its_open_streams_at_once(live_app, member_factory, how):
    from linkmsg.services import messaging, reports

    from .factories import connect

    app, server = live_app
    dana, fay, mod = member_factory(name="Dana"), member_factory(name="Fay"), member_factory()
    with app.app_context():
        connect(dana, fay)
    laptop, phone = Browser(app), Browser(app)
    laptop.login(dana)
    phone.login(dana)
    on_laptop, on_phone = _stream_of(server, laptop), _stream_of(server, phone)
    try:
        if how == "logout":
            laptop.logout()
        elif how == "password change elsewhere":
            response = phone.post(
                "/settings/password",
                {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            )
            assert response.status_code == 303
        else:
            with app.app_context():
                db.session.get(Member, mod.id).role = "admin"
                db.session.commit()
                report = reports.report(fay.id, dana.id, "spam", "selling things")
                reports.resolve(mod.id, report.id, "suspend")
        told = on_laptop.next(timeout=5)  # well before the 1 s keep-alive could matter
        assert told is not None and told.event == "ended"  # the page goes to the login
        assert on_laptop.next(timeout=2) is None  # and the stream is over
        assert on_laptop.lines.get(timeout=1) is None
        # A copy of the ended session's cookie cannot open a new stream.
        from .live import EventStream

        again = EventStream(server.port, cookie=laptop.client.get_cookie("session").value)
        assert again.status == 401
        again.close()
        if how == "suspension":
            assert on_phone.next(timeout=5).event == "ended"
        else:  # the other session's stream goes on, and still gets Dana's messages
            with app.app_context():
                sent = messaging.start(
                    db.session.get(Member, fay.id), db.session.get(Member, dana.id), "still here?"
                )
            event = on_phone.next(timeout=5)
            assert f'data-message-id="{sent.message.id}"' in event.data
    finally:
        on_laptop.close()
        on_phone.close()
