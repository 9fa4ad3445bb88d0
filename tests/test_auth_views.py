"""Register, log in, log out through the rendered pages, JavaScript off."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member

from .factories import PASSWORD, by_testid, soup, texts


def member_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Member.id)))


def test_register_creates_the_member_logs_in_and_asks_for_the_profile(app, browser):
    response = browser.post(
        "/register", {"name": "Dana Whitfield", "email": "dana@example.test", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/profile/edit"
    page = browser.get("/profile/edit")
    assert page.status_code == 200
    assert "Welcome to LinkMsg, Dana Whitfield" in texts(page, "flash")[0]
    assert "Add your headline and location" in texts(page, "profile-incomplete")[0]
    assert member_count(app) == 1


def test_register_with_an_email_in_use_shows_the_error_and_saves_nothing(
    app, browser, member_factory
):
    member_factory(email="dana@example.test")
    response = browser.post(
        "/register", {"name": "Someone Else", "email": "DANA@example.test", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "An account with this email already exists. Log in instead."
    ]
    assert member_count(app) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "email": "d@example.test", "password": PASSWORD}, "Enter your name."),
        (
            {"name": "Dana", "email": "not-an-email", "password": PASSWORD},
            "Enter a valid email address.",
        ),
        ({"name": "Dana", "email": "", "password": PASSWORD}, "Enter your email address."),
        (
            {"name": "Dana", "email": "d@example.test", "password": "short"},
            "Choose a password of at least 8 characters.",
        ),
        (
            {"name": "D" * 101, "email": "d@example.test", "password": PASSWORD},
            "Your name can be at most 100 characters.",
        ),
    ],
)
def test_register_with_bad_input_shows_the_message_next_to_the_field(app, browser, form, message):
    response = browser.post("/register", form)
    assert response.status_code == 422
    assert message in texts(response, "form-error")
    error = by_testid(response, "form-error")[0]
    field = error.find_parent(class_="field")
    assert field.find("input")["aria-invalid"] == "true"
    assert member_count(app) == 0


def test_register_form_keeps_what_was_typed_but_never_the_password(browser):
    response = browser.post("/register", {"name": "Dana", "email": "bad", "password": PASSWORD})
    page = soup(response)
    assert page.find("input", attrs={"name": "name"})["value"] == "Dana"
    assert PASSWORD not in response.get_data(as_text=True)


def test_login_and_logout(browser, member_factory):
    dana = member_factory(name="Dana Whitfield")
    response = browser.login(dana)
    assert response.headers["Location"] == "/"
    home = browser.get("/")
    assert "Welcome, Dana Whitfield" in home.get_data(as_text=True)
    assert by_testid(home, "logout")

    response = browser.logout()
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert not by_testid(browser.get("/"), "logout")
    assert browser.get("/profile/edit").status_code == 302


def test_login_with_a_wrong_password_says_so_without_telling_which_part(browser, member_factory):
    dana = member_factory()
    wrong = browser.post("/login", {"email": dana.email, "password": "wrong password"})
    unknown = browser.post("/login", {"email": "nobody@example.test", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert texts(response, "form-error") == ["That email and password do not match an account."]
    assert not by_testid(browser.get("/"), "logout")


def test_logout_is_post_only(browser, member_factory):
    browser.login(member_factory())
    assert browser.get("/logout").status_code == 405
    assert by_testid(browser.get("/"), "logout")


def test_logout_without_a_csrf_token_is_refused(browser, member_factory):
    browser.login(member_factory())
    response = browser.post("/logout", csrf=False)
    assert response.status_code == 400
    assert by_testid(browser.get("/"), "logout")


def test_a_post_without_csrf_token_is_rejected_and_saves_nothing(app, browser):
    response = browser.post(
        "/register",
        {"name": "Dana", "email": "dana@example.test", "password": PASSWORD},
        csrf=False,
    )
    assert response.status_code == 400
    assert "expired" in soup(response).get_text()
    assert member_count(app) == 0


def test_htmx_post_with_csrf_header_is_accepted(browser, member_factory):
    dana = member_factory()
    browser.login(dana)
    response = browser.post("/logout", htmx=True)
    assert response.status_code == 303


def test_login_follows_next_on_this_site(browser, member_factory):
    dana = member_factory()
    response = browser.post(
        "/login?next=/profile/edit", {"email": dana.email, "password": dana.password}
    )
    assert response.headers["Location"] == "/profile/edit"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "evil.example",
        "/%0d%0aSet-Cookie:x=1",
    ],
)
def test_login_never_redirects_off_the_site(browser, member_factory, target):
    dana = member_factory()
    response = browser.post(
        "/login", {"email": dana.email, "password": dana.password, "next": target}
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location.split("?")[0] or location.startswith("/%")


def test_protected_page_sends_anonymous_to_login_and_back(browser, member_factory):
    dana = member_factory()
    response = browser.get("/profile/edit")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    login_page = browser.get(response.headers["Location"])
    next_value = soup(login_page).find("input", attrs={"name": "next"})["value"]
    assert next_value == "/profile/edit"
    response = browser.post(
        "/login", {"email": dana.email, "password": dana.password, "next": next_value}
    )
    assert response.headers["Location"] == "/profile/edit"


def test_login_rotates_the_session_cookie(browser, member_factory):
    dana = member_factory()
    browser.get("/login")
    before = browser.client.get_cookie("session")
    browser.login(dana)
    after = browser.client.get_cookie("session")
    assert after is not None and (before is None or before.value != after.value)
    assert after.http_only
    assert after.same_site == "Lax"
