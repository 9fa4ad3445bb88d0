"""A group conversation in Chromium, three (then four) members in their own browsers: a
group started from New message, a message arriving live for both others, one leaving and
no longer receiving, one added later reading only what follows. Without JavaScript the
same flow works by reloading instead of live updates."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from linkmsg.services import network

from .conftest import log_in, make_members

SHOTS = Path(os.environ.get("GROUP_SHOTS", "/tmp/linkmsg-group-shots"))


def sign_in(chromium, server, email, js):
    context = chromium.new_context(java_script_enabled=js, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, server.url, email)
    return context, page


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_a_group_from_new_message_to_leaving_and_joining(live_server, chromium, browser_errors, js):
    app = live_server.app
    ava_id, *others = make_members(
        app, "Ava Reed", "Ben Okoro", "Cy Lam", "Dee Park", connected=False
    )
    with app.app_context():
        for other in others:
            network.accept(other, network.invite(ava_id, other).invitation.id)
    people = {}
    for name in ("ava-reed", "ben-okoro", "cy-lam", "dee-park"):
        context, page = sign_in(chromium, live_server, f"{name}@example.com", js)
        browser_errors.watch(context)
        people[name] = (context, page)
    ava, ben, cy, dee = (people[n][1] for n in people)

    def see(page):
        """Without JavaScript nothing arrives by itself: the member reloads."""
        if not js:
            page.reload()

    def send(page, text):
        page.get_by_label("Write a message").fill(text)
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_test_id("message-body").last).to_have_text(text)

    try:
        # Ava starts the group from New message.
        ava.goto(live_server.url + "/messaging")
        ava.get_by_test_id("new-message").click()
        expect(ava.get_by_role("heading", name="New message")).to_be_visible()
        expect(ava.get_by_test_id("recipient-option")).to_have_count(3)
        if js:
            # The filter follows the typing, and a pick survives it.
            ava.get_by_role("checkbox", name="Ben Okoro").check()
            ava.get_by_label("Search your connections").fill("cy")
            expect(ava.get_by_test_id("recipient-option")).to_have_count(2)
            ava.get_by_role("checkbox", name="Cy Lam").check()
        else:
            ava.get_by_role("checkbox", name="Ben Okoro").check()
            ava.get_by_role("checkbox", name="Cy Lam").check()
        ava.get_by_label("Group name").fill("Launch team")
        ava.get_by_label("Message", exact=True).fill("Kick-off on Monday")
        SHOTS.mkdir(parents=True, exist_ok=True)
        ava.screenshot(path=SHOTS / f"new-message-{'js' if js else 'nojs'}.png", full_page=True)
        ava.get_by_test_id("send-button").click()
        expect(ava.get_by_test_id("group-name")).to_have_text("Launch team")
        thread_url = ava.url.split("#")[0]

        # Ben and Cy have the thread open; Ava's next message reaches both.
        for page in (ben, cy):
            page.goto(thread_url)
            expect(page.get_by_test_id("message-body")).to_have_text(["Kick-off on Monday"])
            expect(page.get_by_test_id("system-message").first).to_contain_text(
                "Ava Reed started the group “Launch team”"
            )
        send(ava, "Agenda attached soon")
        for page in (ben, cy):
            see(page)
            expect(page.get_by_test_id("message-body").last).to_have_text("Agenda attached soon")
            expect(page.get_by_test_id("message-sender").last).to_have_text("Ava Reed")
        if js:
            expect(ben.locator("#live-announcer")).to_contain_text("New message from Ava Reed")

        # Cy leaves: read-only, and nothing after reaches Cy.
        cy.get_by_test_id("leave-group").click()
        expect(cy.get_by_test_id("reply-locked")).to_have_text(
            "You're no longer in this conversation."
        )
        expect(cy.get_by_test_id("leave-group")).to_have_count(0)
        see(ava)
        expect(ava.get_by_test_id("system-message").last).to_contain_text("Cy Lam left")
        send(ava, "Only for Ben now")
        see(ben)
        expect(ben.get_by_test_id("message-body").last).to_have_text("Only for Ben now")
        cy.reload()
        expect(cy.get_by_test_id("message-body")).to_have_text(
            ["Kick-off on Monday", "Agenda attached soon"]
        )

        # Ava adds Dee, who reads from there on.
        ava.get_by_test_id("add-people").click()
        expect(ava.get_by_test_id("recipient-option")).to_have_count(2)  # Cy and Dee
        ava.get_by_role("checkbox", name="Dee Park").check()
        ava.get_by_test_id("add-people-submit").click()
        expect(ava.get_by_test_id("system-message").last).to_contain_text("You added Dee Park")
        dee.goto(thread_url)
        expect(dee.get_by_test_id("system-message").first).to_contain_text("Ava Reed added you")
        expect(dee.get_by_test_id("message-body")).to_have_count(0)
        send(ava, "Welcome, Dee")
        see(dee)
        expect(dee.get_by_test_id("message-body")).to_have_text(["Welcome, Dee"])
        see(ben)
        expect(ben.get_by_test_id("message-body").last).to_have_text("Welcome, Dee")
        cy.reload()
        expect(cy.get_by_test_id("message-body")).to_have_count(2)

        # The thread list shows the group.
        ben.goto(live_server.url + "/messaging")
        row = ben.get_by_test_id("thread-row").first
        expect(row).to_have_attribute("data-group", "true")
        expect(row.get_by_test_id("thread-name")).to_have_text("Launch team")
        expect(row.get_by_test_id("thread-preview")).to_have_text("Ava Reed: Welcome, Dee")
        ava.reload()
        ava.screenshot(path=SHOTS / f"group-thread-{'js' if js else 'nojs'}.png", full_page=True)
        ben.screenshot(path=SHOTS / f"group-rows-{'js' if js else 'nojs'}.png")
    finally:
        for context, _ in people.values():
            context.close()
