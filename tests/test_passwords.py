"""The password rule: at least 8 characters, any characters, nothing common or guessable
(zxcvbn, fed the member's own name and email) — the same at sign-up, change and reset."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import accounts, passwords
from linkmsg.services.errors import ValidationFailed

from .factories import PASSWORD, Browser, by_testid, texts

WEAK = [
    ("password", "This is a top-10 common password."),
    ("12345678", "This is a top-10 common password."),
    ("       a", 'Repeats like "aaa" are easy to guess.'),
    ("qwertyuiop", "This is a top-100 common password."),
    ("Password1!", "This is similar to a commonly used password."),
    ("danawhitfield", "It is built from your name, your email address or the site's name."),
    ("DanaW1990", "It is built from your name, your email address or the site's name."),
    ("dana.w@example", "It is built from your name, your email address or the site's name."),
    ("linkmsg123", "It is built from your name, your email address or the site's name."),
]
STRONG = [
    "correct horse battery",
    "Zoë’s 🚲 to Lisbon",  # any characters
    "        spaces  are    fine too   ",
    "x7#Kq!92mL",
    "w" * 3 + "a long tail of words that goes well past seventy two characters " * 3,
]


def count_members() -> int:
    return db.session.scalar(db.select(db.func.count(Member.id)))


@pytest.mark.parametrize(("password", "reason"), WEAK)
def test_register_refuses_a_guessable_password_with_the_reason(ctx, password, reason):
    with pytest.raises(ValidationFailed) as info:
        accounts.register("dana.w@example.test", password, "Dana Whitfield")
    assert info.value.field == "password"
    assert info.value.message.startswith("This password is too easy to guess.")
    assert reason in info.value.message
    assert count_members() == 0


@pytest.mark.parametrize("password", STRONG)
def test_register_accepts_a_strong_password_of_any_characters(ctx, password):
    member = accounts.register("dana.w@example.test", password, "Dana Whitfield")
    assert accounts.authenticate("dana.w@example.test", password).id == member.id


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("seven77", "Choose a password of at least 8 characters."),
        ("x" * 257, "Your password can be at most 256 characters."),
    ],
)
def test_length_limits(ctx, password, message):
    with pytest.raises(ValidationFailed) as info:
        passwords.check_strength(password, field="password")
    assert info.value.message == message


def test_the_register_page_shows_why_a_password_is_refused(app, browser):
    response = browser.post(
        "/register", {"name": "Dana", "email": "dana@example.test", "password": "       a"}
    )
    assert response.status_code == 422
    [error] = texts(response, "form-error")
    assert error.startswith("This password is too easy to guess.")
    field = by_testid(response, "form-error")[0].find_parent(class_="field")
    assert field.find("input")["name"] == "password"
    assert field.find("input")["aria-invalid"] == "true"
    with app.app_context():
        assert count_members() == 0


def test_a_change_to_a_password_built_from_the_name_is_refused(app, member_factory):
    dana = member_factory(name="Dana Whitfield")
    browser = Browser(app)
    browser.login(dana)
    response = browser.post(
        "/settings/password", {"current_password": PASSWORD, "new_password": "Whitfield2026"}
    )
    assert response.status_code == 422
    assert "built from your name" in texts(response, "form-error")[0]
