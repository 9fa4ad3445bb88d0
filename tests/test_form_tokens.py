"""Form tokens signed once and used again (templating.csrf_token): a page's token is one
its session signed lately, and it must be exactly as good as a new one — accepted from
its own session, refused from any other, and never older than the token's time limit
allows.
"""

import time

import pytest

from .factories import Browser, make_member, page_token, soup


def token_of(browser: Browser, url: str = "/messaging") -> str:
    return page_token(soup(browser.get(url)))


def posted(browser: Browser, token: str):
    """A form of the member's own sent with `token`: their settings, saved as they are."""
    return browser.client.post(
        "/logout", data={"csrf_token": token}, headers={"Referer": "http://localhost/"}
    )


@pytest.fixture
def two(app):
    with app.app_context():
        ann, bob = make_member("Ann"), make_member("Bob")
    browsers = []
    for member in (ann, bob):
        browser = Browser(app)
        browser.login(member)
        browsers.append(browser)
    return browsers


def test_a_sessions_pages_share_a_token_that_its_forms_accept(app, two, monkeypatch):
    ann, bob = two
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    first = token_of(ann)
    monkeypatch.setattr(time, "time", lambda: now + 5)  # signed now, it would read otherwise
    assert token_of(ann, "/network") == first == token_of(ann)
    assert token_of(bob) != first, "each session signs its own"
    # Every form of the page carries it.
    page = soup(ann.get("/messaging"))
    assert {field["value"] for field in page.select('input[name="csrf_token"]')} == {first}
    assert posted(ann, first).status_code == 303  # accepted: Ann is logged out
    assert ann.get("/messaging").status_code == 302


def test_a_token_from_another_session_is_refused(app, two):
    ann, bob = two
    anns = token_of(ann)
    token_of(bob)  # Bob's own is signed and kept too
    refused = posted(bob, anns)
    assert refused.status_code == 400
    assert bob.get("/messaging").status_code == 200, "Bob is still logged in"


def test_with_a_time_limit_a_token_is_used_again_only_within_a_tenth_of_it(app, two, monkeypatch):
    ann, _ = two
    app.config["WTF_CSRF_TIME_LIMIT"] = 100
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    first = token_of(ann)
    monkeypatch.setattr(time, "time", lambda: now + 9)
    assert token_of(ann) == first
    monkeypatch.setattr(time, "time", lambda: now + 11)
    second = token_of(ann)
    assert second != first, "signed anew"
    assert posted(ann, second).status_code == 303
