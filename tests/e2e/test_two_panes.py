"""Messaging in two panes, in Chromium: at 1280 px the list and the conversation side by
side — a thread chosen in the list replaces the conversation pane alone and pushes its
address, back and forward work, live messages land in both panes; without JavaScript
every address renders both panes; at 375 px one pane at a time with a Back control; the
conversation's "⋯" menu and its actions."""

import re

import pytest
from playwright.sync_api import expect

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import messaging

from ..factories import connect
from .conftest import log_in, make_members

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


def alice_and_friends(app, count: int) -> dict[str, int]:
    """Alice, connected to `count` members who each wrote to her (the last one on top).
    Returns their names -> thread ids."""
    names = [f"Friend {chr(ord('A') + n)} Lopez" for n in range(count)]
    alice, *friends = make_members(app, "Alice Moreau", *names, connected=False)
    threads = {}
    with app.app_context():
        for name, friend in zip(names, friends, strict=True):
            connect(alice, friend)
            threads[name] = messaging.start(
                db.session.get(Member, friend), db.session.get(Member, alice), f"Hi from {name}"
            ).thread_id
    return threads


def open_alice(chromium, live_server, *, js=True, viewport=DESKTOP, errors=None):
    context = chromium.new_context(java_script_enabled=js, viewport=viewport)
    if errors is not None:
        errors.watch(context)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, live_server.url, "alice-moreau@example.com")
    return page


def row(page, thread_id):
    return page.locator(f'[data-testid="thread-row"][data-thread-id="{thread_id}"]')


def open_pane(page):
    return page.get_by_test_id("conversation-pane").get_by_test_id("thread")


def reply_as(app, name, thread_id, body):
    with app.app_context():
        sender = db.session.scalar(db.select(Member).where(Member.name == name))
        messaging.reply(sender, thread_id, body)


def loaded(page) -> None:
    page.wait_for_function("() => document.readyState === 'complete'")


def test_choosing_threads_swaps_the_pane_alone_and_history_and_live_updates_follow(
    live_server, chromium, browser_errors
):
    app, url = live_server.app, live_server.url
    threads = alice_and_friends(app, 14)
    page = open_alice(chromium, live_server, errors=browser_errors)
    page.goto(url + "/messaging")
    expect(page.get_by_test_id("conversation-empty")).to_be_visible()
    expect(page.get_by_test_id("thread-row")).to_have_count(14)
    page.wait_for_function("() => window.htmx !== undefined")

    # The list is longer than the window: it scrolls on its own. Remember it as it is.
    page.evaluate("window.__list = document.querySelector('[data-testid=list-pane]')")
    page.get_by_test_id("list-pane").evaluate("pane => { pane.scrollTop = 300; }")
    first, second = threads["Friend E Lopez"], threads["Friend D Lopez"]
    row(page, first).scroll_into_view_if_needed()
    scrolled = page.get_by_test_id("list-pane").evaluate("pane => pane.scrollTop")
    assert scrolled > 0

    row(page, first).get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{first}(#reply)?$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(first))
    expect(open_pane(page).get_by_test_id("message-body")).to_have_text("Hi from Friend E Lopez")
    expect(page).to_have_title("Friend E Lopez · Messaging · LinkMsg")
    # Only the right pane changed: the list is the same element, scrolled where it was,
    # and marks the open conversation.
    assert page.evaluate("window.__list === document.querySelector('[data-testid=list-pane]')")
    assert page.get_by_test_id("list-pane").evaluate("pane => pane.scrollTop") == scrolled
    expect(row(page, first).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    expect(page.locator('.thread-link[aria-current="page"]')).to_have_count(1)
    # Choosing a thread takes the reader to its reply box, as opening its page does.
    expect(page.locator("#reply")).to_be_focused()

    row(page, second).get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{second}(#reply)?$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(second))
    expect(row(page, second).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    expect(page.locator('.thread-link[aria-current="page"]')).to_have_count(1)
    assert page.evaluate("window.__list === document.querySelector('[data-testid=list-pane]')")

    # Back and forward: each address shows its conversation (or none) beside the list.
    # (Each step reloads the page from `popstate`, as the app keeps no history cache: the
    # next one waits for the page to finish loading, so that htmx's `popstate` handler is
    # there to hear it, as it is for anyone not pressing Back within milliseconds.)
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{first}(#reply)?$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(first))
    expect(row(page, first).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    loaded(page)
    page.go_back()
    expect(page).to_have_url(url + "/messaging")
    expect(page.get_by_test_id("conversation-empty")).to_be_visible()
    loaded(page)
    page.go_forward()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{first}(#reply)?$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(first))

    # Live: a message in the open conversation lands in the pane and brings its row to the
    # top of the list, still marked open; one in another conversation moves that row only.
    page.wait_for_function("() => document.querySelector('#live')")
    page.evaluate("window.__samePage = true")
    reply_as(app, "Friend E Lopez", first, "Are you there?")
    pane_messages = open_pane(page).get_by_test_id("message-body")
    expect(pane_messages).to_have_text(["Hi from Friend E Lopez", "Are you there?"])
    rows = page.get_by_test_id("thread-row")
    expect(rows.first).to_have_attribute("data-thread-id", str(first))
    expect(rows.first.get_by_test_id("thread-preview")).to_have_text("Are you there?")
    expect(rows.first.locator("a.thread-link")).to_have_attribute("aria-current", "page")
    reply_as(app, "Friend A Lopez", threads["Friend A Lopez"], "Lunch on Friday?")
    expect(rows.first).to_have_attribute("data-thread-id", str(threads["Friend A Lopez"]))
    expect(rows.first).to_have_attribute("data-unread", "2")  # her first, unread, and this
    expect(rows.nth(1)).to_have_attribute("data-thread-id", str(first))
    expect(rows.nth(1).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    expect(page.locator('.thread-link[aria-current="page"]')).to_have_count(1)
    expect(pane_messages).to_have_count(2)
    assert page.evaluate("window.__samePage === true")  # no reload

    # A reply sent from the pane joins the conversation; the list follows.
    page.get_by_label("Write a message").fill("Yes, here!")
    page.get_by_role("button", name="Send").click()
    expect(pane_messages).to_have_count(3)
    expect(rows.first).to_have_attribute("data-thread-id", str(first))
    expect(rows.first.get_by_test_id("thread-preview")).to_have_text("You: Yes, here!")
    page.context.close()


def test_without_javascript_every_address_renders_both_panes(live_server, chromium):
    threads = alice_and_friends(live_server.app, 3)
    page = open_alice(chromium, live_server, js=False)
    first, second = threads["Friend A Lopez"], threads["Friend B Lopez"]
    page.goto(f"{live_server.url}/messaging/t/{first}")
    expect(page.get_by_test_id("list-pane")).to_be_visible()
    expect(page.get_by_test_id("thread-row")).to_have_count(3)
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(first))
    expect(row(page, first).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    # The Back arrow is for phones: here the list is beside the conversation.
    expect(page.get_by_test_id("back-to-list")).to_be_hidden()

    row(page, second).get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{second}#reply$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(second))
    expect(page.get_by_test_id("thread-row")).to_have_count(3)
    expect(row(page, second).locator("a.thread-link")).to_have_attribute("aria-current", "page")
    page.get_by_label("Write a message").fill("Sent without JavaScript")
    page.get_by_role("button", name="Send").click()
    expect(open_pane(page).get_by_test_id("message-body").last).to_have_text(
        "Sent without JavaScript"
    )
    expect(page.get_by_test_id("thread-row").first).to_have_attribute("data-thread-id", str(second))
    page.context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_on_a_phone_one_pane_shows_at_a_time_with_a_back_control(live_server, chromium, js):
    threads = alice_and_friends(live_server.app, 2)
    page = open_alice(chromium, live_server, js=js, viewport=PHONE)
    page.goto(live_server.url + "/messaging")
    expect(page.get_by_test_id("list-pane")).to_be_visible()
    expect(page.get_by_test_id("conversation-pane")).to_be_hidden()

    thread_id = threads["Friend B Lopez"]
    row(page, thread_id).get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{thread_id}(#reply)?$"))
    expect(open_pane(page)).to_be_visible()
    expect(page.get_by_test_id("list-pane")).to_be_hidden()
    expect(page.get_by_label("Write a message")).to_be_visible()

    page.get_by_test_id("back-to-list").click()
    expect(page).to_have_url(live_server.url + "/messaging")
    expect(page.get_by_test_id("list-pane")).to_be_visible()
    expect(page.get_by_test_id("conversation-pane")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_the_conversation_menu_opens_and_its_actions_work(live_server, chromium, js):
    threads = alice_and_friends(live_server.app, 1)
    thread_id = threads["Friend A Lopez"]
    page = open_alice(chromium, live_server, js=js)
    thread_url = f"{live_server.url}/messaging/t/{thread_id}"
    page.goto(thread_url)
    header = page.get_by_test_id("thread-header")
    menu = header.get_by_test_id("thread-menu-panel")
    expect(menu).to_be_hidden()
    expect(header.get_by_test_id("thread-menu")).to_have_accessible_name(
        "More actions for this conversation"
    )

    header.get_by_test_id("thread-menu").click()
    expect(menu).to_be_visible()
    expect(menu.get_by_test_id("export-link")).to_have_attribute(
        "href", f"/messaging/t/{thread_id}/export"
    )
    if js:
        # A menu closes on Escape, focus back on what opened it.
        page.keyboard.press("Escape")
        expect(menu).to_be_hidden()
        expect(header.get_by_test_id("thread-menu")).to_be_focused()
        header.get_by_test_id("thread-menu").click()

    menu.get_by_test_id("mute-button").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Muted Friend A Lopez")
    expect(row(page, thread_id)).to_have_attribute("data-muted", "1")
    header = page.get_by_test_id("thread-header")
    header.get_by_test_id("thread-menu").click()
    header.get_by_test_id("unmute-button").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Unmuted")
    expect(row(page, thread_id)).to_have_attribute("data-muted", "0")

    page.get_by_test_id("thread-header").get_by_test_id("thread-menu").click()
    page.get_by_test_id("thread-header").get_by_test_id("report-link").click()
    expect(page).to_have_url(f"{live_server.url}/report/friend-a-lopez")
    expect(page.get_by_test_id("report-form")).to_be_visible()
    page.goto(thread_url)
    page.get_by_test_id("thread-header").get_by_test_id("thread-menu").click()
    page.get_by_test_id("thread-header").get_by_test_id("block-link").click()
    expect(page).to_have_url(f"{live_server.url}/block/friend-a-lopez")
    expect(page.get_by_test_id("confirm-block")).to_be_visible()

    # The toolbar's own actions: Archive takes the conversation out of the list.
    page.goto(thread_url)
    page.get_by_test_id("thread-header").get_by_test_id("archive-button").click()
    expect(page).to_have_url(live_server.url + "/messaging")
    expect(page.get_by_test_id("flash")).to_contain_text("archived")
    expect(page.get_by_test_id("thread-row")).to_have_count(0)
    page.context.close()


def test_load_older_continues_the_run_across_the_page_boundary(live_server, chromium):
    threads = alice_and_friends(live_server.app, 1)
    thread_id = threads["Friend A Lopez"]
    for n in range(30):  # 31 messages within seconds from one sender: one run
        reply_as(live_server.app, "Friend A Lopez", thread_id, f"Note {n}")
    page = open_alice(chromium, live_server)
    page.goto(f"{live_server.url}/messaging/t/{thread_id}")
    messages = page.get_by_test_id("message")
    expect(messages).to_have_count(30)
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_test_id("load-older").click()
    expect(messages).to_have_count(31)
    starts = messages.evaluate_all("items => items.map(item => item.dataset.groupStart)")
    assert starts == ["1"] + ["0"] * 30
    # One header (name, avatar, time) for the whole run.
    expect(page.locator(".message-avatar")).to_have_count(1)
    expect(page.get_by_test_id("day-separator")).to_have_count(1)
    page.context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_the_list_beside_a_conversation_filters_in_its_own_pane(live_server, chromium, js):
    threads = alice_and_friends(live_server.app, 3)
    page = open_alice(chromium, live_server, js=js)
    opened = threads["Friend C Lopez"]
    page.goto(f"{live_server.url}/messaging/t/{opened}")  # read: the other two stay unread
    if js:
        page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_test_id("list-pane").get_by_test_id("filter-unread").click()
    expect(page.get_by_test_id("filter-unread")).to_have_attribute("aria-current", "true")
    rows = page.get_by_test_id("thread-row")
    expect(rows).to_have_count(2)
    expect(rows.get_by_test_id("thread-name")).to_have_text(["Friend B Lopez", "Friend A Lopez"])
    if js:
        # The list changed in its pane; the conversation stays open beside it.
        expect(open_pane(page)).to_have_attribute("data-thread-id", str(opened))
    else:
        expect(page.get_by_test_id("conversation-empty")).to_be_visible()
    row(page, threads["Friend A Lopez"]).get_by_role("link").first.click()
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(threads["Friend A Lopez"]))
    page.context.close()


def test_the_lists_next_page_opens_conversations_beside_it(live_server, chromium):
    threads = alice_and_friends(live_server.app, 21)  # one more than a page of the list
    page = open_alice(chromium, live_server)
    page.goto(live_server.url + "/messaging")
    expect(page.get_by_test_id("thread-row")).to_have_count(20)
    page.get_by_test_id("list-pane").get_by_test_id("next-page").click()
    expect(page).to_have_url(re.compile(r"/messaging\?.*before="))
    expect(page.get_by_test_id("thread-row")).to_have_count(1)
    oldest = threads["Friend A Lopez"]
    page.wait_for_function("() => window.htmx !== undefined")
    row(page, oldest).get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/messaging/t/{oldest}(#reply)?$"))
    expect(open_pane(page)).to_have_attribute("data-thread-id", str(oldest))
    expect(page.get_by_test_id("thread-row")).to_have_count(1)  # the same page of the list
    page.context.close()
