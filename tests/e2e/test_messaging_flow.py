"""Two members exchange messages in two browser contexts — JavaScript on and off."""

import pytest
from playwright.sync_api import expect

from .conftest import log_in, make_members


def make_pair(live_server):
    make_members(live_server.app, "Alice Moreau", "Bob Stone")
    return ["alice-moreau@example.com", "bob-stone@example.com"]


def open_as(chromium, live_server, email, js):
    context = chromium.new_context(java_script_enabled=js)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, live_server.url, email)
    return context, page


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_two_members_exchange_messages(live_server, chromium, js):
    alice_email, bob_email = make_pair(live_server)
    alice_ctx, alice = open_as(chromium, live_server, alice_email, js)
    bob_ctx, bob = open_as(chromium, live_server, bob_email, js)
    try:
        # Alice opens Bob's profile and messages him.
        alice.goto(live_server.url + "/in/bob-stone")
        alice.get_by_test_id("message-button").click()
        alice.get_by_label("Message to Bob Stone").fill("Hi Bob!\nAre you free on Thursday?")
        alice.get_by_role("button", name="Send").click()
        expect(alice.get_by_test_id("message-body")).to_have_text(
            "Hi Bob!\nAre you free on Thursday?"
        )

        # Bob sees the badge and the unread row after navigating.
        bob.goto(live_server.url + "/")
        expect(bob.get_by_test_id("unread-badge")).to_have_text("1")
        bob.get_by_role("navigation", name="Main").get_by_role("link", name="Messaging").click()
        row = bob.get_by_test_id("thread-row")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-unread", "1")
        expect(row.get_by_test_id("thread-preview")).to_have_text(
            "Hi Bob! Are you free on Thursday?"
        )
        row.get_by_role("link").click()
        expect(bob.get_by_test_id("message-sender")).to_have_text("Alice Moreau")
        expect(bob.get_by_test_id("unread-badge")).to_have_count(0)

        bob.get_by_label("Write a message").fill("Thursday works. See https://example.com/agenda")
        bob.get_by_role("button", name="Send").click()
        expect(bob.get_by_test_id("message")).to_have_count(2)
        expect(bob.get_by_label("Write a message")).to_have_value("")
        link = bob.get_by_test_id("message-body").last.get_by_role("link")
        expect(link).to_have_attribute("href", "https://example.com/agenda")
        expect(link).to_have_attribute("rel", "nofollow noopener")

        if js:
            # Alice still has the thread open: the reply appears there live, and since she
            # has seen it, it does not count as unread.
            expect(alice.get_by_test_id("message")).to_have_count(2)
            expect(alice.get_by_test_id("message-sender")).to_have_text(
                ["Alice Moreau", "Bob Stone"]
            )
            alice.goto(live_server.url + "/messaging")
            expect(alice.get_by_test_id("thread-row")).to_have_attribute("data-unread", "0")
            expect(alice.get_by_test_id("unread-badge")).to_have_count(0)
        else:
            # Without JavaScript, the next page Alice loads shows the reply.
            alice.goto(live_server.url + "/messaging")
            expect(alice.get_by_test_id("unread-badge")).to_have_text("1")
            expect(alice.get_by_test_id("thread-row")).to_have_attribute("data-unread", "1")
            expect(alice.get_by_test_id("thread-preview")).to_have_text(
                "Thursday works. See https://example.com/agenda"
            )
            alice.get_by_test_id("thread-row").get_by_role("link").click()
            expect(alice.get_by_test_id("message")).to_have_count(2)
            expect(alice.get_by_test_id("message-sender")).to_have_text(
                ["Alice Moreau", "Bob Stone"]
            )
    finally:
        alice_ctx.close()
        bob_ctx.close()
