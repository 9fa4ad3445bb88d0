"""Costs an abuser could impose with requests: large bodies, toggles, pictures, exports.

Large bodies go through a real server and socket: the request declares a large
Content-Length and sends only its first megabyte, so a server that meant to read it all
would sit waiting (the test times out) instead of answering 413 at once.
"""

import http.client
import io

import pytest

from linkmsg.extensions import db
from linkmsg.models import ThreadMember
from linkmsg.services import messaging

from . import files
from .factories import Browser, by_testid, connect, get_member, make_member, texts
from .live import LiveServer

MB = 1024 * 1024


def send_large_body(port: int, path: str, *, declared: int, cookie: str | None = None):
    """POST declaring `declared` bytes, send 1 MB of them, and read the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(declared))
    if cookie:
        conn.putheader("Cookie", f"session={cookie}")
    conn.endheaders()
    try:
        conn.send(b"a=" + b"x" * (MB - 2))
    except OSError:
        pass  # the server may already have answered and closed
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, body


def session_cookie(app, member) -> str:
    browser = Browser(app)
    browser.login(member)
    return browser.client.get_cookie("session").value


def thread_between(app, a, b) -> int:
    with app.app_context():
        connect(a, b)
        return messaging.start(get_member(a.id), get_member(b.id), "hello").thread_id


@pytest.fixture
def pair(app):
    with app.app_context():
        return make_member("Ann Lee"), make_member("Bob Stone")


# ---------------------------------------------------------------- request bodies


def test_an_anonymous_post_with_a_large_body_is_refused_before_it_is_read(app, pair):
    ann, bob = pair
    with LiveServer(app) as server:
        for path in ("/login", "/register", f"/messaging/new/{bob.handle}", "/profile/edit"):
            status, page = send_large_body(server.port, path, declared=500 * MB)
            assert status == 413, path
            assert "That is more than this form accepts. Nothing was saved." in page


def test_a_members_post_to_a_form_that_takes_no_files_is_kept_small(app, pair):
    ann, bob = pair
    thread_id = thread_between(app, ann, bob)
    cookie = session_cookie(app, ann)
    with LiveServer(app) as server:
        status, page = send_large_body(
            server.port, f"/messaging/t/{thread_id}/mute", declared=200 * MB, cookie=cookie
        )
    assert status == 413
    assert 'data-testid="error"' in page and 'data-status="413"' in page
    with app.app_context():
        assert not db.session.get(ThreadMember, (thread_id, ann.id)).muted


def ann_in_a_thread(app_factory, **settings):
    """An app with `settings`; Ann logged in, in a thread with Bob. (app, browser, id)"""
    app = app_factory(**settings)
    with app.app_context():
        ann, bob = make_member("Ann Lee"), make_member("Bob Stone")
    thread_id = thread_between(app, ann, bob)
    browser = Browser(app)
    browser.login(ann)
    return app, browser, thread_id


def test_a_members_upload_may_still_be_large(app_factory):
    _, browser, thread_id = ann_in_a_thread(app_factory, MAX_FORM_BYTES=16 * 1024)
    document = b"LinkMsg attachment line.\n" * 40_000  # 1 MB of text
    response = browser.post_multipart(
        f"/messaging/t/{thread_id}",
        {
            "body": "the report",
            "idempotency_key": "upload-key-001",
            "files": [(io.BytesIO(document), "report.txt")],
        },
    )
    assert response.status_code == 303
    # The same megabyte in a field of a form without files is refused.
    response = browser.post("/messaging/labels", {"name": "x" * (64 * 1024)})
    assert response.status_code == 413
    assert texts(response, "error") == ["That is more than this form accepts. Nothing was saved."]


def test_an_upload_over_the_whole_limit_says_so(app_factory):
    _, browser, thread_id = ann_in_a_thread(app_factory, MAX_CONTENT_LENGTH=256 * 1024)
    response = browser.post_multipart(
        f"/messaging/t/{thread_id}",
        {
            "body": "big",
            "idempotency_key": "upload-key-002",
            "files": [(io.BytesIO(b"y" * (512 * 1024)), "big.txt")],
        },
    )
    assert response.status_code == 413
    assert texts(response, "error") == ["That upload is too large. Nothing was sent."]


# ---------------------------------------------------------------- rate limits


def test_organise_toggles_are_limited_per_member(app_factory):
    app = app_factory(ORGANISE_RATE_LIMIT="4 per minute")
    with app.app_context():
        ann, bob, cat = make_member("Ann Lee"), make_member("Bob Stone"), make_member("Cat Diaz")
    thread_id = thread_between(app, ann, bob)
    browser = Browser(app)
    browser.login(ann)
    base = f"/messaging/t/{thread_id}"
    for path, data in (
        ("/mute", {"muted": "1"}),
        ("/mute", {"muted": "0"}),
        ("/archive", {"archived": "1"}),
        ("/unread", {}),
    ):
        assert browser.post(base + path, data).status_code == 303
    response = browser.post(base + "/mute", {"muted": "1"})
    assert response.status_code == 429
    assert response.headers["Retry-After"]
    assert texts(response, "error")[0].startswith("You're doing that too often.")
    assert browser.post(base + "/labels", {}, htmx=True).status_code == 429
    with app.app_context():
        assert not db.session.get(ThreadMember, (thread_id, ann.id)).muted
    # Another member's budget is their own.
    other = Browser(app)
    other.login(bob)
    assert other.post(base + "/mute", {"muted": "1"}).status_code == 303
    assert cat  # a third member exists so that the thread list is not trivially empty


def test_a_flood_of_mute_toggles_is_cut_at_the_default_limit(app, pair):
    ann, bob = pair
    thread_id = thread_between(app, ann, bob)
    browser = Browser(app)
    browser.login(ann)
    statuses = [
        browser.post(f"/messaging/t/{thread_id}/mute", {"muted": str(n % 2)}).status_code
        for n in range(40)
    ]
    assert statuses.count(303) == 30 and set(statuses[30:]) == {429}


def test_avatar_changes_are_limited_but_profile_edits_are_not(app_factory):
    app = app_factory(AVATAR_RATE_LIMIT="2 per hour")
    with app.app_context():
        dana = make_member("Dana Whitfield")
    browser = Browser(app)
    browser.login(dana)
    form = {"name": "Dana Whitfield", "headline": "Recruiter", "location": "London", "about": ""}
    for n in range(2):
        picture = files.image("PNG", size=(300, 300), color=(n * 90, 20, 20))
        response = browser.post_multipart(
            "/profile/edit", {**form, "avatar": (io.BytesIO(picture), "me.png")}
        )
        assert response.status_code == 303
    with app.app_context():
        key = get_member(dana.id).avatar_key
    response = browser.post_multipart(
        "/profile/edit", {**form, "avatar": (io.BytesIO(files.image("PNG")), "me.png")}
    )
    assert response.status_code == 429
    assert texts(response, "error")[0].startswith("You're doing that too often.")
    with app.app_context():
        assert get_member(dana.id).avatar_key == key
    # Words only: no picture to decode, no limit.
    response = browser.post_multipart("/profile/edit", {**form, "headline": "Head of Talent"})
    assert response.status_code == 303
    assert texts(browser.get(f"/in/{get_handle(app, dana)}"), "profile-headline") == [
        "Head of Talent"
    ]


def get_handle(app, member) -> str:
    with app.app_context():
        return get_member(member.id).handle


def test_exports_are_limited_per_member(app_factory):
    _, browser, thread_id = ann_in_a_thread(app_factory, EXPORT_RATE_LIMIT="2 per hour")
    for _ in range(2):
        response = browser.get(f"/messaging/t/{thread_id}/export")
        assert response.status_code == 200 and response.mimetype == "application/zip"
        response.close()
    response = browser.get(f"/messaging/t/{thread_id}/export")
    assert response.status_code == 429
    assert by_testid(response, "error")
