"""A member who uses only the keyboard (JavaScript on): log in, open Messaging, open a
thread, reply; focus stays where the member is working, and live messages are announced."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .demo_site import AVA, demo_site

FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) {
    return {tag: "BODY", id: "", name: "", text: "", label: "", href: ""};
  }
  return {
    tag: e.tagName,
    id: e.id,
    name: e.getAttribute("name") || "",
    text: (e.innerText || e.value || "").trim().replace(/\\s+/g, " ").slice(0, 80),
    label: e.labels && e.labels.length ? e.labels[0].innerText.trim() : "",
    href: e.getAttribute("href") || "",
  };
}"""


@pytest.fixture(scope="module")
def site(sqlite_template, tmp_path_factory):
    with demo_site(sqlite_template, tmp_path_factory.mktemp("keyboard")) as running:
        yield running


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def tab_to(page, wanted, what: str, *, key: str = "Tab", limit: int = 60) -> dict:
    """Press Tab (or Shift+Tab) until the focused element is the one wanted."""
    path = []
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if wanted(now):
            return now
        path.append(f"{now['tag']}#{now['id']} {now['text'] or now['label'] or now['href']}")
    raise AssertionError(f"{what}: not reached with {key}; focus went through:\n" + "\n".join(path))


def test_keyboard_only_member_logs_in_opens_a_thread_and_replies(chromium, site):
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(site.url + "/login")

        # Log in: the page opens with focus in the Email field, then Tab to the password.
        expect(page.get_by_label("Email")).to_be_focused()
        page.keyboard.type(AVA)
        tab_to(page, lambda f: f["id"] == "password", "the Password field")
        from linkmsg.demo import DEMO_PASSWORD

        page.keyboard.type(DEMO_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Welcome, Ava Chen")).to_be_visible()

        # A boosted page change puts focus on the new page's content, as a page load puts
        # the reading position there: the top navigation is behind it.
        expect(page.locator("main")).to_be_focused()
        tab_to(
            page,
            lambda f: f["tag"] == "A" and f["href"] == "/messaging",
            "the Messaging link in the top navigation",
            key="Shift+Tab",
        )
        page.keyboard.press("Enter")
        expect(page).to_have_url(site.url + "/messaging")
        expect(page.get_by_test_id("thread-row")).to_have_count(4)

        expect(page.locator("main")).to_be_focused()
        tab_to(
            page,
            lambda f: f["tag"] == "A" and "Ben Okafor" in f["text"],
            "Ben Okafor's conversation",
        )
        page.keyboard.press("Enter")
        thread = site.threads["ben-okafor"]
        expect(page).to_have_url(re.compile(rf"/messaging/t/{thread}(#reply)?$"))
        expect(page.get_by_test_id("message")).to_have_count(3)

        # The row links to the reply box (#reply): the next Tab lands in it.
        expect(page.locator("#reply")).to_be_focused()
        reply_box = tab_to(page, lambda f: f["id"] == "reply-body", "the reply box", limit=3)
        assert reply_box["label"] == "Write a message"
        page.keyboard.type("Thursday at 3 pm works. Talk then!")
        tab_to(page, lambda f: f["tag"] == "BUTTON" and f["text"] == "Send", "Send", limit=3)
        page.keyboard.press("Enter")

        expect(page.get_by_test_id("message")).to_have_count(4)
        expect(page.get_by_test_id("message-body").last).to_have_text(
            "Thursday at 3 pm works. Talk then!"
        )
        expect(page.get_by_test_id("message-sender").last).to_have_text("Ava Chen")
        # The form was renewed for the next message, and focus is back in its reply box.
        expect(page.get_by_label("Write a message")).to_have_value("")
        expect(page.get_by_label("Write a message")).to_be_focused()

        # A live message from Ben is announced in the polite live region and appended,
        # without taking focus away from the reply box.
        announcer = page.locator("#live-announcer")
        expect(announcer).to_have_attribute("aria-live", "polite")
        expect(announcer).to_have_attribute("role", "status")
        with site.app.app_context():
            from linkmsg.extensions import db
            from linkmsg.models import Member
            from linkmsg.services import messaging

            ben = db.session.scalar(db.select(Member).where(Member.handle == "ben-okafor"))
            ava = db.session.scalar(db.select(Member).where(Member.handle == "ava-chen"))
            messaging.start(ben, ava, "Great, see you Thursday.")
        expect(page.get_by_test_id("message")).to_have_count(5)
        expect(announcer).to_have_text("New message from Ben Okafor: Great, see you Thursday.")
        expect(page.get_by_label("Write a message")).to_be_focused()

        # Shift+Tab walks back from the reply box to the newest message's "⋯" menu.
        back = tab_to(
            page, lambda f: f["tag"] == "SUMMARY", "a menu above", key="Shift+Tab", limit=3
        )
        assert back["text"] == "⋯", back
        expect(page.get_by_test_id("message-actions").last).to_be_focused()
        expect(page.get_by_test_id("message-actions").last).to_have_attribute(
            "aria-label", "Actions for this message from Ben Okafor"
        )
    finally:
        context.close()
