"""Forgot password: an email through the outbox and real SMTP, a single-use link valid for
an hour, the same answer for any address, and every session ended when it is used."""

import re
from datetime import timedelta

import pytest

from linkmsg import mail
from linkmsg.extensions import db
from linkmsg.models import Member, MemberSession, Outbox, PasswordReset, utcnow

from .factories import PASSWORD, Browser, by_testid, soup, texts
from .live import LiveServer
from .parallel import post_together
from .test_mail import smtp, text_part  # noqa: F401  (smtp is a fixture)

NEW_PASSWORD = "lantern meadow quartz"


@pytest.fixture
def mail_app(app_factory, smtp):  # noqa: F811
    controller, _ = smtp
    return app_factory(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, PUBLIC_URL="http://linkmsg.test"
    )


def ask_for_link(app, email: str):
    browser = Browser(app)
    response = browser.post("/password/forgot", {"email": email})
    with app.app_context():
        mail.send_due()
    return response


def link_in(message) -> str:
    url = re.search(r"http://linkmsg\.test(/password/reset/\S+)", text_part(message)).group(1)
    return url


def test_login_page_offers_forgot_password(browser):
    link = soup(browser.get("/login")).select_one('[data-testid="forgot-password-link"]')
    assert link["href"] == "/password/forgot"
    assert browser.get("/password/forgot").status_code == 200


def test_the_reset_email_arrives_and_its_link_sets_a_new_password(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory(name="Dana Whitfield")
    laptop = Browser(mail_app)
    laptop.login(dana)
    # Dana is active right now: a reset email does not wait for her to be away.
    response = ask_for_link(mail_app, dana.email.upper())
    assert response.status_code == 200
    assert by_testid(response, "reset-sent")
    [message] = sink.messages
    assert message["To"] == dana.email
    assert message["Subject"] == "Reset your LinkMsg password"
    path = link_in(message)

    browser = Browser(mail_app)
    page = browser.get(path)
    assert page.status_code == 200
    assert by_testid(page, "reset-form")
    response = browser.post(path, {"password": NEW_PASSWORD})
    assert response.status_code == 303
    home = browser.get(response.headers["Location"])
    assert texts(home, "flash") == [
        "Your password is changed, and every other session is logged out."
    ]
    assert by_testid(home, "logout")  # logged in

    # Every session that existed before is over; the old password is refused.
    assert laptop.get("/messaging").status_code == 302
    with mail_app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count(MemberSession.id)).where(
                    MemberSession.member_id == dana.id, MemberSession.ended_at.is_(None)
                )
            )
            == 1
        )
    assert Browser(mail_app).post(
        "/login", {"email": dana.email, "password": PASSWORD}
    ).status_code == (401)
    Browser(mail_app).login(dana.email, NEW_PASSWORD)


def test_the_link_works_once(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    path = link_in(sink.messages[0])
    assert Browser(mail_app).post(path, {"password": NEW_PASSWORD}).status_code == 303
    again = Browser(mail_app)
    page = again.get(path)
    assert page.status_code == 404
    assert "expired or was already used" in texts(page, "form-error")[0]
    assert again.post(path, {"password": "another fine passphrase"}).status_code == 404
    Browser(mail_app).login(dana.email, NEW_PASSWORD)


def test_the_link_expires_after_an_hour(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    path = link_in(sink.messages[0])
    with mail_app.app_context():
        reset = db.session.scalar(db.select(PasswordReset))
        reset.created_at = utcnow() - timedelta(minutes=59)
        db.session.commit()
    assert Browser(mail_app).get(path).status_code == 200
    with mail_app.app_context():
        reset = db.session.scalar(db.select(PasswordReset))
        reset.created_at = utcnow() - timedelta(minutes=61)
        db.session.commit()
    browser = Browser(mail_app)
    assert browser.get(path).status_code == 404
    assert browser.post(path, {"password": NEW_PASSWORD}).status_code == 404
    Browser(mail_app).login(dana)


def test_a_changed_password_voids_older_links(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    ask_for_link(mail_app, dana.email)
    first, second = (link_in(m) for m in sink.messages)
    assert Browser(mail_app).post(second, {"password": NEW_PASSWORD}).status_code == 303
    assert Browser(mail_app).get(first).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/password/reset/1-forged",
        "/password/reset/nonsense",
        "/password/reset/99-x",
        "/password/reset/1-%C3%A9t%C3%A9",
        "/password/reset/%D9%A1-x",
        "/password/reset/99999999999999999999-x",
    ],
)
def test_a_forged_link_opens_nothing(mail_app, smtp, member_factory, path):  # noqa: F811
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    assert Browser(mail_app).get(path).status_code == 404


def test_the_database_holds_no_usable_token(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    token = link_in(sink.messages[0]).rsplit("/", 1)[1]
    signature = token.split("-", 1)[1]
    with mail_app.app_context():
        rows = [
            str(value)
            for model in (PasswordReset, Outbox)
            for row in db.session.scalars(db.select(model))
            for value in vars(row).values()
        ]
    assert not any(signature in value for value in rows)


def test_the_same_answer_whether_or_not_the_address_has_an_account(
    mail_app,
    smtp,  # noqa: F811
    member_factory,
):
    _, sink = smtp
    dana = member_factory()

    def answer(email):
        response = ask_for_link(mail_app, email)
        text = soup(response).select_one("main").get_text(" ", strip=True)
        return response.status_code, text.replace(email, "EMAIL")

    assert answer(dana.email) == answer("nobody@example.test")
    assert len(sink.messages) == 1  # only the real account got an email


def test_a_weak_new_password_is_refused_and_the_link_still_works(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory(name="Dana Whitfield")
    ask_for_link(mail_app, dana.email)
    path = link_in(sink.messages[0])
    browser = Browser(mail_app)
    response = browser.post(path, {"password": "dana whitfield"})
    assert response.status_code == 422
    assert "built from your name" in texts(response, "form-error")[0]
    assert browser.post(path, {"password": NEW_PASSWORD}).status_code == 303


def test_no_email_for_a_suspended_member(mail_app, smtp, member_factory):  # noqa: F811
    _, sink = smtp
    dana = member_factory()
    with mail_app.app_context():
        db.session.get(Member, dana.id).suspended_at = utcnow()
        db.session.commit()
    assert ask_for_link(mail_app, dana.email).status_code == 200
    assert sink.messages == []


def test_reset_requests_per_address_are_limited(app_factory):
    app = app_factory(PASSWORD_RESET_RATE_LIMIT="2 per hour")
    browser = Browser(app)
    for n in range(2):
        assert browser.post("/password/forgot", {"email": f"x{n}@example.test"}).status_code == 200
    assert browser.post("/password/forgot", {"email": "x9@example.test"}).status_code == 429


def test_without_smtp_the_reset_email_is_logged_at_warning(app, member_factory, caplog):
    dana = member_factory()
    Browser(app).post("/password/forgot", {"email": dana.email})
    with caplog.at_level("WARNING", logger="linkmsg.mail"):
        with app.app_context():
            assert mail.send_due()["sent"] == 1
    [record] = [r for r in caplog.records if r.name == "linkmsg.mail"]
    assert record.levelname == "WARNING"
    assert re.search(r"/password/reset/\d+-[\w-]+", record.getMessage())
    assert f"To: {dana.email}" in record.getMessage()


def test_one_link_submitted_at_once_from_many_tabs_changes_the_password_once(
    mail_app,
    smtp,  # noqa: F811
    member_factory,
):
    _, sink = smtp
    dana = member_factory()
    ask_for_link(mail_app, dana.email)
    path = link_in(sink.messages[0])
    with LiveServer(mail_app) as server:
        statuses = post_together(server.url, path, path, {"password": NEW_PASSWORD}, 6)
    assert sorted(statuses) == [303] + [404] * 5
    with mail_app.app_context():
        assert db.session.scalar(db.select(PasswordReset.used_at)) is not None


def test_reset_requests_per_email_are_limited_from_any_address(app_factory):
    app = app_factory(PASSWORD_RESET_RATE_LIMIT="2 per hour")
    for n in range(2):
        response = Browser(app).post(
            "/password/forgot",
            {"email": "dana@example.test"},
            environ_base={"REMOTE_ADDR": f"192.0.2.{n}"},
        )
        assert response.status_code == 200
    response = Browser(app).post(
        "/password/forgot",
        {"email": "DANA@example.test"},
        environ_base={"REMOTE_ADDR": "192.0.2.9"},
    )
    assert response.status_code == 429
