"""Session cookies whose checked contents are kept per process (linkmsg/cookies.py).

A kept cookie must be exactly as good as a checked one: the same text under the same
keys, no older than the session's lifetime. A changed byte, a rotated key or an old
cookie is checked again, and fails as it always did.
"""

import itertools
import string
import time

import pytest

from linkmsg.web import SESSION_ID_KEY

from .factories import Browser, by_testid, make_member

_BASE64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def kept(app):
    return app.session_interface.kept


def cookie_of(browser: Browser) -> str:
    return browser.client.get_cookie("session").value


def kept_cookie(app, browser: Browser) -> str:
    """The browser's session cookie, once its pages are served from it kept."""
    assert shows_the_inbox(browser) and shows_the_inbox(browser)
    text, used = cookie_of(browser), kept(app).used
    assert shows_the_inbox(browser) and cookie_of(browser) == text
    assert kept(app).used == used + 1
    return text


def holding(app, text: str) -> Browser:
    """A browser holding this session cookie."""
    other = Browser(app)
    other.client.set_cookie("session", text)
    return other


def opened(app, text: str):
    """The session a request with this cookie opens."""
    with app.test_request_context(headers={"Cookie": f"session={text}"}) as context:
        return app.session_interface.open_session(app, context.request)


def shows_the_inbox(browser: Browser) -> bool:
    response = browser.get("/messaging")
    return response.status_code == 200 and bool(by_testid(response, "list-pane"))


@pytest.fixture
def ann(app, member_factory, browser):
    member = member_factory(name="Ann")
    browser.login(member)
    return member


def test_a_member_is_served_from_the_kept_cookie_on_later_pages(app, ann, browser):
    # The first pages may change the session (the form token is made on the first): its
    # cookie then changes once.
    assert shows_the_inbox(browser) and shows_the_inbox(browser)
    used = kept(app).used
    for _ in range(3):
        assert shows_the_inbox(browser)
    assert kept(app).used >= used + 3


def test_a_cookie_changed_in_any_byte_is_refused_though_the_real_one_is_kept(app, ann, browser):
    text = kept_cookie(app, browser)
    # Every byte of the payload, the timestamp and the signature in turn: each changed
    # text is checked, and fails.
    # A character's top bit always carries data (the bits base64 pads with are the low
    # ones of a part's last character), so flipping it changes what the part decodes to.
    for at in itertools.chain(range(0, len(text), 7), range(len(text) - 30, len(text))):
        if text[at] == ".":
            continue
        flipped = _BASE64[_BASE64.index(text[at]) ^ 32]
        changed = text[:at] + flipped + text[at + 1 :]
        thief = holding(app, changed)
        response = thief.get("/messaging")
        assert response.status_code == 302 and "/login" in response.headers["Location"], at
    assert shows_the_inbox(holding(app, text))


def test_a_cookie_past_the_sessions_lifetime_is_refused_though_it_was_kept(
    app, ann, browser, monkeypatch
):
    text = kept_cookie(app, browser)
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + lifetime - 5)
    assert shows_the_inbox(holding(app, text))  # still within its lifetime
    monkeypatch.setattr(time, "time", lambda: now + lifetime + 5)
    response = holding(app, text).get("/messaging")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_cookie_signed_with_a_retired_key_is_refused_and_a_fallback_key_still_serves(
    app, ann, browser
):
    text = kept_cookie(app, browser)
    old_key = app.secret_key
    app.config["SECRET_KEY"] = "a-new-secret-key"
    assert SESSION_ID_KEY not in opened(app, text)  # the cookie itself is refused
    response = holding(app, text).get("/messaging")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    assert SESSION_ID_KEY in opened(app, text)


def test_each_request_gets_its_own_copy_of_a_kept_session(app, ann, browser):
    """A view that changes its session in place changes nothing another request reads:
    the flashed messages of one page (a list) never show on another page of the same
    cookie, and a session holding them is not kept at all."""
    text = kept_cookie(app, browser)
    with app.test_request_context(headers={"Cookie": f"session={text}"}) as context:
        first = app.session_interface.open_session(app, context.request)
        first[SESSION_ID_KEY] = -1
        first["_flashes"] = [("info", "only for this page")]
        second = app.session_interface.open_session(app, context.request)
        assert second[SESSION_ID_KEY] != -1 and "_flashes" not in second
        # Signed with a list in it: decoded again each time, each a copy of its own.
        flashed = app.session_interface.get_signing_serializer(app).dumps(dict(first))
    with app.test_request_context(headers={"Cookie": f"session={flashed}"}) as context:
        one = app.session_interface.open_session(app, context.request)
        one["_flashes"].append(("info", "added in place"))
        other = app.session_interface.open_session(app, context.request)
        assert other["_flashes"] == [("info", "only for this page")]


def test_nothing_is_kept_when_the_app_keeps_no_cookies(app_factory):
    app = app_factory(SESSION_COOKIES_KEPT=0)
    with app.app_context():
        member = make_member("Ann")
    browser = Browser(app)
    browser.login(member)
    assert kept(app) is None
    assert shows_the_inbox(browser) and shows_the_inbox(browser)
