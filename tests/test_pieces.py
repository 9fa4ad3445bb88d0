"""Pieces of pages kept rendered per process (linkmsg/pieces.py, issue 20): a one-to-one
conversation's header (with its tools and menu), its reply box, and the rows of a member
search, on SQLite and PostgreSQL.

Each change that alters a kept piece — the reader archiving or muting the thread, filing
it under a label or renaming one, the other member's new name, headline or picture, the
connection ending (the reply box gives way to why), the other member turning up active,
an invitation, a new connection of a friend — is made after the pieces
were kept, and the next page must show exactly what a page drawn from scratch shows.
Every step first checks that the page before it was served from kept pieces (else it
would prove nothing) and that the change shows. What differs between two pages with the
same piece (the form token, the reply form's idempotency key) is each page's own.
"""

from __future__ import annotations

import io
import re

import pytest
from flask import render_template_string
from jinja2 import TemplateSyntaxError, pass_context

from linkmsg import list_pane, message_html, pieces
from linkmsg.extensions import db
from linkmsg.models import Member, Message, utcnow
from linkmsg.services import (
    attachments,
    blocking,
    messaging,
    network,
    organise,
    presence,
)

from .factories import (
    AS_SERVED,
    Browser,
    change_profile,
    connect,
    make_member,
    page_token,
    soup,
)
from .files import image

TOKEN = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*(")')
KEY = re.compile(r'(name="idempotency_key"[^>]*value=")[^"]*(")')


def pane(response) -> str:
    """The conversation's header and reply box as HTML, form tokens and keys blanked."""
    assert response.status_code == 200, response.status_code
    page = soup(response)
    header = page.find(attrs={"data-testid": "thread-header"})
    reply = page.find(id="reply")
    assert header is not None and reply is not None
    return KEY.sub(r"\1\2", TOKEN.sub(r"\1\2", str(header) + str(reply)))


def used(app, store: str = "pieces") -> int:
    with app.app_context():
        return pieces.store(store).used


def fresh(app, browser, url: str, draw=None) -> str:
    """The pieces as drawn from scratch (nothing kept); `draw` reads them (`pane`)."""
    with app.app_context():
        for store in ("pieces", "messages", "nav"):
            pieces.store(store).clear()
        list_pane.store().clear()
    return (draw or pane)(browser.get(url))


def each_change_shows(
    app, browser, url: str, steps, *, kept: int, draw=None, store: str = "pieces"
) -> None:
    """For each (name, change): the page seen again is drawn from `kept` kept pieces (of
    `store`); after the change the page is what a page drawn from scratch is, and shows
    it."""
    draw = draw or pane
    for name, change in steps:
        browser.get(url)
        served = used(app, store)
        before = draw(browser.get(url))
        assert used(app, store) == served + kept, f"{name}: the page was drawn from kept pieces"
        with app.app_context():
            change()
        shown = draw(browser.get(url))
        assert shown == fresh(app, browser, url, draw), f"{name}: a stale piece"
        assert shown != before, f"{name}: the change shows"


pytestmark = AS_SERVED


@pytest.fixture
def pair(app):
    """Ava and Ben, connected, in a one-to-one thread; Ava logged in."""
    with app.app_context():
        ava, ben = make_member("Ava Ames"), make_member("Ben Bell")
        connect(ava, ben)
        get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
        thread = messaging.start(get(ava), get(ben), "Hello Ben").thread_id
        messaging.reply(get(ben), thread, "Hi Ava")
    browser = Browser(app)
    browser.login(ava)
    return browser, ava, ben, thread, f"/messaging/t/{thread}"


def test_a_page_seen_again_draws_neither_piece_again(app, pair):
    browser, ava, ben, thread, url = pair
    first = fresh(app, browser, url)
    served = used(app)
    again = browser.get(url)
    assert used(app) == served + 2  # the header and the reply box
    assert pane(again) == first
    assert b"\x00" not in again.data, "every marker is filled"


def header_tokens(page) -> set[str]:
    return {
        field["value"]
        for field in page.select('[data-testid="thread-header"] input[name="csrf_token"]')
    }


def test_each_page_gets_its_own_token_and_idempotency_key(app, pair):
    browser, ava, ben, thread, url = pair
    browser.get(url)
    keys = set()
    for _ in range(2):
        served = used(app)
        page = soup(browser.get(url))
        assert used(app) == served + 2
        assert header_tokens(page) == {page_token(page)}, "the forms carry the page's token"
        reply = page.find(attrs={"data-testid": "reply-form"})
        assert reply.find("input", attrs={"name": "csrf_token"})["value"] == page_token(page)
        keys.add(reply.find("input", attrs={"name": "idempotency_key"})["value"])
    assert len(keys) == 2, "a new key for each page, as a new form has"
    # Ben's side of the same thread is his own: Ava's name in his header, his token.
    bens = Browser(app)
    bens.login(ben)
    bens.get(url)
    page = soup(bens.get(url))
    assert page.find(attrs={"data-testid": "thread-member"}).get_text() == "Ava Ames"
    assert header_tokens(page) == {page_token(page)}
    # A token is signed with its session's own secret: Ava's is refused for Ben.
    ava_token = page_token(soup(browser.get(url)))
    refused = bens.post(url, data={"body": "x", "csrf_token": ava_token}, csrf=False)
    assert refused.status_code == 400


def test_a_kept_reply_box_still_sends_one_message(app, pair):
    browser, ava, ben, thread, url = pair
    browser.get(url)
    page = soup(browser.get(url))
    key = page.find("input", attrs={"name": "idempotency_key"})["value"]
    for _ in range(2):  # the same form sent twice: one message
        sent = browser.post(url, data={"body": "Once only", "idempotency_key": key})
        assert sent.status_code == 303
    with app.app_context():
        sent = db.session.scalar(
            db.select(db.func.count(Message.id)).where(
                Message.thread_id == thread, Message.body == "Once only"
            )
        )
    assert sent == 1
    # Sent with htmx, the answer brings a new box out of band, with a new key; the next
    # page's box is in place, not out of band.
    for _ in range(2):
        answer = soup(browser.post(url, data={"body": "Again", "idempotency_key": key}, htmx=True))
        box = answer.find(id="reply")
        assert box["hx-swap-oob"] == "outerHTML"
        new_key = box.find("input", attrs={"name": "idempotency_key"})["value"]
        assert new_key != key
        key = new_key
    assert not soup(browser.get(url)).find(id="reply").has_attr("hx-swap-oob")


def test_each_change_shows_on_the_next_page(app, pair):
    browser, ava, ben, thread, url = pair

    def label_it():
        label = organise.create_label(ava.id, "Clients")
        organise.set_thread_labels(ava.id, thread, [label.id])

    def rename_label():
        label = organise.label_named(ava.id, "Clients")
        organise.rename_label(ava.id, label.id, "Partners")

    def picture():
        change_profile(ben, avatar=attachments.Upload("me.png", io.BytesIO(image("PNG"))))

    def active():
        presence.touch_active(db.session.get(Member, ben.id))

    steps = [
        ("Ava archives it", lambda: organise.set_archived(ava.id, thread, True)),
        ("Ava moves it back", lambda: organise.set_archived(ava.id, thread, False)),
        ("Ava mutes it", lambda: organise.set_muted(ava.id, thread, True)),
        ("Ava files it under a label", label_it),
        ("Ava renames the label", rename_label),
        ("Ava makes a label it is not under", lambda: organise.create_label(ava.id, "Later")),
        ("Ava takes it out of its label", lambda: organise.set_thread_labels(ava.id, thread, [])),
        ("Ben renames himself", lambda: change_profile(ben, name="Benjamin Bell")),
        ("Ben writes a headline", lambda: change_profile(ben, headline="Builds bridges")),
        ("Ben adds a picture", picture),
        ("Ben is active", active),
        ("They disconnect", lambda: network.remove_connection(ava.id, ben.id)),
    ]
    each_change_shows(app, browser, url, steps, kept=2)  # the header and the reply box
    # The last step ended their right to write: the kept reply box gave way to why.
    assert soup(browser.get(url)).find(attrs={"data-testid": "reply-locked"}) is not None


def test_a_block_either_way_and_a_suspension_show_on_the_next_page(app, pair):
    """A block hides the thread from both at once, whatever was kept; lifted, the thread
    shows its new state (the block ended the connection: no reply box); and the other
    member suspended shows on the next page too."""
    browser, ava, ben, thread, url = pair

    def suspend_ben():
        db.session.get(Member, ben.id).suspended_at = utcnow()
        db.session.commit()

    for blocker, blocked in ((ben, ava), (ava, ben)):
        browser.get(url)
        served = used(app)
        before = pane(browser.get(url))
        assert used(app) == served + 2, "the page was drawn from kept pieces"
        with app.app_context():
            blocking.block(blocker.id, blocked.id)
        hidden = browser.get(url)
        assert hidden.status_code == 404 and b"Hi Ava" not in hidden.data
        with app.app_context():
            blocking.unblock(blocker.id, blocked.id)
        shown = pane(browser.get(url))
        assert shown == fresh(app, browser, url) and shown != before
        assert soup(browser.get(url)).find(attrs={"data-testid": "reply-locked"}) is not None
        with app.app_context():
            connect(ava, ben)  # for the other way round
    each_change_shows(app, browser, url, [("Ben is suspended", suspend_ben)], kept=2)


def test_a_form_sent_back_with_its_error_is_drawn_as_typed(app, pair):
    browser, ava, ben, thread, url = pair
    browser.get(url)
    browser.get(url)  # the reply box kept
    too_long = "x" * (app.config["MESSAGE_MAX_CHARS"] + 1)
    refused = browser.post(url, data={"body": too_long})
    assert refused.status_code == 422
    page = soup(refused)
    assert page.find(attrs={"data-testid": "form-error"}) is not None
    assert page.find("textarea", attrs={"name": "body"}).get_text() == too_long
    # The next page opens a new, empty form again.
    after = soup(browser.get(url))
    assert after.find("textarea", attrs={"name": "body"}).get_text() == ""
    assert after.find(attrs={"data-testid": "form-error"}) is None


def test_a_group_s_header_is_drawn_every_time(app, pair):
    browser, ava, ben, thread, url = pair
    with app.app_context():
        cy = make_member("Cy Cole")
        connect(ava, cy)
        group = messaging.start_group(
            db.session.get(Member, ava.id), [ben.id, cy.id], "Launch team", "Kick-off"
        ).thread_id
    browser.get(f"/messaging/t/{group}")
    served = used(app)
    page = soup(browser.get(f"/messaging/t/{group}"))
    assert used(app) == served + 1, "its reply box alone"
    assert page.find(attrs={"data-testid": "group-name"}).get_text() == "Launch team"


def test_verify_fails_on_a_key_that_leaves_something_out(app_factory, pair):
    """The suite's setting: a piece found is drawn again and compared."""
    app = app_factory(KEPT_HTML_VERIFY=True)
    browser, ava, ben, thread, url = pair
    browser = Browser(app)
    browser.login(ava)
    whole = message_html.thread_header_key

    @pass_context
    def forgetful(context):
        key = whole(context)
        return key[:5] + key[6:]  # Ben's name left out

    app.jinja_env.globals["thread_header_key"] = forgetful
    browser.get(url)
    with app.app_context():
        change_profile(ben, name="Benjamin Bell")
    with pytest.raises(AssertionError, match="a kept piece differs"):
        browser.get(url)


def test_slots_are_named_by_their_tag(app):
    with app.test_request_context("/"):
        assert (
            render_template_string('{% keep "pieces", none, n=1 %}[{{ slot("n") }}]{% endkeep %}')
            == "[1]"
        )
        with pytest.raises(KeyError, match="not named"):
            render_template_string('{% keep "pieces", 1 %}{{ slot("n") }}{% endkeep %}')
        with pytest.raises(KeyError, match="outside"):
            render_template_string('{{ slot("n") }}')
        with pytest.raises(TemplateSyntaxError):
            render_template_string('{% keep "pieces" %}x{% endkeep %}')


def test_with_the_setting_at_0_every_piece_is_drawn_each_time(app, app_factory, pair):
    browser, ava, ben, thread, url = pair
    drawn = fresh(app, browser, url)
    other = app_factory(PIECE_HTML_ENTRIES=0)
    with other.app_context():
        assert pieces.store("pieces") is None
    plain = Browser(other)
    plain.login(ava)
    assert pane(plain.get(url)) == pane(plain.get(url)) == drawn


def results(response) -> str:
    """The search results as HTML, form tokens blanked."""
    assert response.status_code == 200, response.status_code
    found = soup(response).find(attrs={"data-testid": "search-results"})
    assert found.find(attrs={"data-testid": "member-row"}) is not None
    return TOKEN.sub(r"\1\2", str(found))


def test_search_rows_are_kept_and_each_change_shows(app, pair):
    browser, ava, ben, thread, url = pair
    with app.app_context():
        cy, dee = make_member("Cy Bell"), make_member("Dee Bell")
    search = "/search?q=Bell"
    state = {}

    def invite():
        state["invitation"] = network.invite(ava.id, cy.id).invitation.id

    steps = [
        ("Ava invites Cy", invite),
        ("Cy accepts", lambda: network.accept(cy.id, state["invitation"])),
        ("Dee renames herself", lambda: change_profile(dee, name="Dee Bell-Diaz")),
        ("Dee writes a headline", lambda: change_profile(dee, headline="Maps")),
        (
            "Dee adds a picture",
            lambda: change_profile(
                dee, avatar=attachments.Upload("me.png", io.BytesIO(image("PNG")))
            ),
        ),
        ("Ben connects with Dee: she is 2nd to Ava now", lambda: connect(ben, dee)),
        ("Ava and Ben disconnect", lambda: network.remove_connection(ava.id, ben.id)),
    ]
    each_change_shows(app, browser, search, steps, kept=3, draw=results)  # three rows
    # Rows kept for one search, shown on another: each page's forms come back to it.
    browser.get("/search?q=Bell")
    served = used(app)
    page = soup(browser.get("/search?q=bel"))
    assert used(app) == served + 3
    nexts = {field["value"] for field in page.select('input[name="next"]')}
    assert nexts == {"/search?q=bel"}


def nav(response) -> str:
    """The top navigation as HTML, the form token blanked."""
    assert response.status_code == 200, response.status_code
    found = soup(response).find("nav", attrs={"class": "topnav"})
    assert found is not None
    return TOKEN.sub(r"\1\2", str(found))


def test_the_top_navigation_shows_each_change_on_the_next_page(app, pair):
    """The member's top navigation is kept drawn: their new name or picture, a role, new
    unread conversations and notifications show on the next page, and it carries each
    page's own form token."""
    browser, ava, ben, thread, url = pair
    page = f"/in/{ben.handle}"  # neither reads Ava's messages nor her notifications

    def picture():
        change_profile(ava, avatar=attachments.Upload("me.png", io.BytesIO(image("PNG"))))

    def admin():
        db.session.get(Member, ava.id).role = "admin"
        db.session.commit()

    def read():
        newest = messaging.messages(thread).messages[-1].id
        messaging.mark_read(ava.id, thread, newest)

    def invited():
        network.invite(make_member("Cy Cole").id, ava.id)

    steps = [
        ("Ava renames herself", lambda: change_profile(ava, name="Ava Ames-Bell")),
        ("Ava adds a picture", picture),
        ("Ava is made an admin", admin),
        ("Ava reads Ben's message", read),
        ("Ben writes", lambda: messaging.reply(db.session.get(Member, ben.id), thread, "Hi")),
        ("Cy invites Ava", invited),
    ]
    each_change_shows(app, browser, page, steps, kept=1, draw=nav, store="nav")
    shown = soup(browser.get(page))
    assert shown.find(attrs={"data-testid": "unread-badge"}).get_text() == "1"
    assert shown.find(attrs={"data-testid": "notification-badge"}) is not None
    # Each page's logout form carries that page's token, kept or not.
    for _ in range(2):
        served = used(app, "nav")
        again = soup(browser.get(page))
        assert used(app, "nav") == served + 1
        logout = again.find(attrs={"data-testid": "logout"}).find_parent("form")
        assert logout.find("input", attrs={"name": "csrf_token"})["value"] == page_token(again)


def test_the_top_navigation_marks_the_page_it_is_on(app, pair):
    """One member's navigation, kept for several areas: each marks its own entry."""
    browser, ava, ben, thread, url = pair
    areas = {"/messaging": "Messaging", "/network": "My Network", "/notifications": "Notifications"}
    for _ in range(2):  # drawn, then kept
        for address, label in areas.items():
            current = soup(browser.get(address)).select('nav.topnav [aria-current="page"]')
            assert [a.select_one(".navlabel").get_text() for a in current] == [label], address
