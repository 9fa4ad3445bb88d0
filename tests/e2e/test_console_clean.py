"""The browser console stays clean through the main flows: no error, no uncaught exception,
no Content-Security-Policy violation — on the page that acts and on the pages that receive
its live events (which carry pieces for targets a page may not have)."""

from playwright.sync_api import expect

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import messaging, network, profile_views

from .conftest import log_in, make_members


def signed_in(chromium, browser_errors, url, email):
    context = browser_errors.watch(chromium.new_context())
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, url, email)
    return page


def test_main_flows_leave_the_console_clean(live_server, chromium, browser_errors):
    app, url = live_server.app, live_server.url
    alice_id, bob_id = make_members(app, "Alice Moreau", "Bob Stone")
    (cara_id,) = make_members(app, "Cara Diaz", connected=False)
    with app.app_context():
        messaging.start(
            db.session.get(Member, bob_id), db.session.get(Member, alice_id), "Hi Alice"
        )

    alice = signed_in(chromium, browser_errors, url, "alice-moreau@example.com")
    bob = signed_in(chromium, browser_errors, url, "bob-stone@example.com")

    # Alice opens Messaging, then the conversation, and replies; Bob waits on his inbox.
    bob.goto(url + "/messaging")
    alice.get_by_role("link", name="Messaging").first.click()
    expect(alice.get_by_test_id("thread-row")).to_have_count(1)
    alice.get_by_test_id("thread-row").get_by_role("link").first.click()
    expect(alice.get_by_test_id("message")).to_have_count(1)
    # She drags the message box taller first: the browser keeps that size in its style.
    alice.get_by_label("Write a message").evaluate("box => { box.style.height = '160px'; }")
    alice.get_by_label("Write a message").fill("Hi Bob, how are you?")
    alice.get_by_role("button", name="Send").click()
    expect(alice.get_by_test_id("message")).to_have_count(2)
    expect(bob.get_by_test_id("thread-preview")).to_have_text("Hi Bob, how are you?")

    # Bob answers from the conversation: it lands live in Alice's open thread.
    bob.get_by_test_id("thread-row").get_by_role("link").first.click()
    bob.get_by_label("Write a message").fill("Very well, thanks")
    bob.get_by_role("button", name="Send").click()
    expect(alice.get_by_test_id("message")).to_have_count(3)
    expect(alice.locator("#live-announcer")).to_contain_text("New message from Bob Stone")

    # Alice mutes and archives from her inbox's row menu while Bob writes again.
    alice.goto(url + "/messaging")
    row = alice.get_by_test_id("thread-row")
    row.get_by_test_id("thread-actions").click()
    row.get_by_test_id("mute-button").click()
    expect(row).to_have_attribute("data-muted", "1")
    bob.get_by_label("Write a message").fill("One more thing")
    bob.get_by_role("button", name="Send").click()
    expect(alice.get_by_test_id("thread-preview")).to_have_text("One more thing")
    row.get_by_test_id("thread-actions").click()
    row.get_by_test_id("archive-button").click()
    expect(alice.get_by_test_id("thread-row")).to_have_count(0)
    bob.get_by_label("Write a message").fill("Archived, but still here")
    bob.get_by_role("button", name="Send").click()
    expect(alice.get_by_test_id("thread-row")).to_have_count(1)

    # Cara views Alice's profile and invites her: live notifications on Alice's pages.
    with app.app_context():
        profile_views.record_view(cara_id, alice_id)
        db.session.commit()
        network.invite(cara_id, alice_id)
    expect(alice.get_by_test_id("notification-badge")).to_be_visible()
    alice.get_by_role("link", name="Notifications").first.click()
    expect(alice.get_by_test_id("notification").first).to_be_visible()

    # My Network: Alice accepts Cara's invitation in place.
    alice.goto(url + "/network")
    alice.get_by_role("button", name="Accept invitation from Cara Diaz").click()
    # (Bob is already in her connections: wait for Cara's own control to say so.)
    expect(alice.locator(f"#connect-{cara_id}[data-state='connected']").first).to_be_visible()
    # A last live event after the accept, so its aftermath is watched too.
    with app.app_context():
        messaging.start(
            db.session.get(Member, cara_id), db.session.get(Member, alice_id), "Thanks!"
        )
    expect(alice.get_by_test_id("unread-badge")).to_have_text("1")
    alice.wait_for_timeout(300)
