"""Messages' HTML kept per process (linkmsg/message_html.py, issue 20): a kept piece is
used again only where the message would be drawn the same, on SQLite and PostgreSQL.

Each change that alters how a message already on the page is drawn — its sender's new
name or picture, the reader blocking the sender in a group, a day passing, another
reader, a highlighted message, another mount point — is made after the pieces were kept,
and the next page must show exactly what a page drawn from scratch shows. Every step first
checks that the page before it was served from kept pieces (else it would prove nothing)
and that the change shows.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from linkmsg import list_pane, pieces
from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import attachments, billing, blocking, conversation, inmail, messaging

from .factories import (
    AS_SERVED,
    Browser,
    change_profile,
    launch_team,
    make_member,
    page_token,
    soup,
)
from .files import image

TOKEN = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*(")')


def messages(response) -> str:
    """The page's messages as HTML, form tokens blanked (each page signs its own)."""
    assert response.status_code == 200, response.status_code
    found = soup(response).find("ol", class_="messages")
    assert found is not None and found.find(attrs={"data-testid": "message"}) is not None
    return TOKEN.sub(r"\1\2", str(found))


def used(app) -> int:
    with app.app_context():
        return pieces.store("messages").used


def fresh(app, browser, url: str, **kwargs) -> str:
    """The messages as drawn from scratch (nothing kept)."""
    with app.app_context():
        pieces.store("messages").clear()
        list_pane.store().clear()
    return messages(browser.get(url, **kwargs))


pytestmark = AS_SERVED


@pytest.fixture
def team(app):
    """The group "Launch team" (Ava, Ben, Cy) with messages from each, a file from Ben,
    and Ava's one-to-one thread with Ben; Ava logged in."""
    with app.app_context():
        ava, ben, cy, dee, group = launch_team()
        get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
        messaging.reply(get(ben), group, "Here is the plan")
        messaging.reply(
            get(ben),
            group,
            "And the chart",
            uploads=[attachments.Upload("chart.png", io.BytesIO(image("PNG")))],
        )
        messaging.reply(get(cy), group, "Looks good")
        messaging.reply(get(ava), group, "Agreed")
        with_ben = messaging.start(get(ava), get(ben), "Hello Ben").thread_id
        messaging.reply(get(ben), with_ben, "Hi Ava")
    browser = Browser(app)
    browser.login(ava)
    return (
        browser,
        ava,
        ben,
        cy,
        {"group": f"/messaging/t/{group}", "ben": f"/messaging/t/{with_ben}"},
    )


def test_a_page_seen_again_draws_none_of_its_messages_again(app, team):
    browser, ava, ben, cy, urls = team
    first = fresh(app, browser, urls["group"])
    served = used(app)
    again = messages(browser.get(urls["group"]))
    # Five messages of people, the kick-off and four replies (system lines are drawn every
    # time): all kept.
    assert used(app) == served + 5
    assert again == first


def test_each_change_shows_on_the_next_page(app, team, monkeypatch):
    browser, ava, ben, cy, urls = team

    def a_day_passes():
        moved = conversation.utcnow() + timedelta(days=1)
        monkeypatch.setattr(conversation, "utcnow", lambda: moved)

    steps = [
        ("Ben renames himself", lambda: change_profile(ben, name="Benjamin Bell"), urls),
        (
            "Cy adds a picture",
            lambda: change_profile(
                cy, avatar=attachments.Upload("me.png", io.BytesIO(image("PNG")))
            ),
            {"group": urls["group"]},
        ),
        ("Ava renames herself", lambda: change_profile(ava, name="Ava Ames-Bell"), urls),
        ("Ava blocks Cy", lambda: blocking.block(ava.id, cy.id), {"group": urls["group"]}),
        ("Ava unblocks Cy", lambda: blocking.unblock(ava.id, cy.id), {"group": urls["group"]}),
        ("A day passes", a_day_passes, urls),
    ]
    for name, change, pages in steps:
        before = {}
        for page, url in pages.items():
            browser.get(url)
            served = used(app)
            before[page] = messages(browser.get(url))
            assert used(app) > served, f"{name}: {page} was drawn from kept pieces"
        with app.app_context():
            change()
        # Every page first (a page drawn from scratch clears what the others would keep).
        shown = {page: messages(browser.get(url)) for page, url in pages.items()}
        for page, url in pages.items():
            assert shown[page] == fresh(app, browser, url), f"{name}: {page} shows a stale piece"
            assert shown[page] != before[page], f"{name}: the change shows on {page}"


def test_each_reader_place_and_mount_point_gets_its_own_piece(app, team):
    browser, ava, ben, cy, urls = team
    url = urls["group"]
    browser.get(url)  # Ava's pieces kept
    # Ben reads the same messages: his own are his, Ava's are hers.
    bens = Browser(app)
    bens.login(ben)
    page = messages(bens.get(url))
    assert page == fresh(app, bens, url)
    mine = soup(bens.get(url)).select('[data-testid="message"].mine')
    assert {li["data-sender-id"] for li in mine} == {str(ben.id)}
    # A message opened from a search result is highlighted there, and only there.
    browser.get(url)
    target = soup(browser.get(url)).select('[data-testid="message"]')[1]["data-message-id"]
    served = used(app)
    highlighted = soup(browser.get(f"{url}?at={target}"))
    assert used(app) > served, "the other messages of the page came from kept pieces"
    assert [li["data-message-id"] for li in highlighted.select("li.message.highlight")] == [target]
    assert not soup(browser.get(url)).select("li.message.highlight")
    # A message that continues a run on one page starts the page, and its run, on another.
    with app.app_context():
        for n in range(9):
            messaging.reply(
                db.session.get(Member, ben.id), int(urls["ben"].rsplit("/", 1)[1]), f"b{n}"
            )
    newest = soup(browser.get(urls["ben"]))
    newest = soup(browser.get(urls["ben"]))  # kept
    runs = newest.select('[data-testid="message"]')
    # The page around the newest message opens at the sixth message before it.
    first, last = runs[-messaging.AT_CONTEXT], runs[-1]
    assert first["data-group-start"] == "0", "it continues Ben's run on the newest page"
    first, last = first["data-message-id"], last["data-message-id"]
    served = used(app)
    around = soup(browser.get(f"{urls['ben']}?at={last}"))
    assert used(app) > served
    opened = around.select('[data-testid="message"]')
    assert opened[0]["data-message-id"] == first and opened[0]["data-group-start"] == "1"
    # Under another mount point, a kept piece's links stay within it.
    browser.get(url, base_url="http://localhost/linkmsg/")
    served = used(app)
    mounted = browser.get(url, base_url="http://localhost/linkmsg/")
    assert used(app) > served, "the system lines aside, its messages came from kept pieces"
    links = soup(mounted).select('[data-testid="attachment"] a, [data-testid="report-message"]')
    assert links and all(a["href"].startswith("/linkmsg/") for a in links)
    assert messages(mounted) == fresh(app, browser, url, base_url="http://localhost/linkmsg/")


def test_an_inmail_is_drawn_every_time_with_the_page_s_own_token(app, team):
    browser, ava, ben, cy, urls = team
    with app.app_context():
        fay = make_member("Fay Ford")
        billing.start_premium(fay.id)
        thread = inmail.send(
            db.session.get(Member, fay.id), db.session.get(Member, ava.id), "A role", "Talk?"
        ).thread_id
    url = f"/messaging/t/{thread}"
    for _ in range(2):
        served = used(app)
        page = soup(browser.get(url))
        assert used(app) == served, "nothing of an InMail page is kept"
        decline = page.find(attrs={"data-testid": "decline-inmail"}).find_parent("form")
        token = decline.find("input", attrs={"name": "csrf_token"})["value"]
        assert token == page_token(page)


def test_with_the_setting_at_0_every_message_is_drawn_each_time(app, app_factory, team):
    browser, ava, ben, cy, urls = team
    drawn = fresh(app, browser, urls["group"])
    other = app_factory(MESSAGE_HTML_ENTRIES=0)
    with other.app_context():
        assert pieces.store("messages") is None
    plain = Browser(other)
    plain.login(ava)
    assert messages(plain.get(urls["group"])) == messages(plain.get(urls["group"])) == drawn
