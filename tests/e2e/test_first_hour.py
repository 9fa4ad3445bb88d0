"""Rough edges a new member hits in the first hour, each walked in Chromium (JavaScript on
and off where the bug is not about htmx alone)."""

import io

from playwright.sync_api import expect

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import attachments, billing, inmail, messaging, network, organise

from .. import files
from .conftest import log_in, make_members


def member(member_id):
    return db.session.get(Member, member_id)


def test_a_document_downloads_and_the_conversation_stays(live_server, page):
    app = live_server.app
    alice, bob = make_members(app, "Alice Moreau", "Bob Stone")
    with app.app_context():
        thread_id = messaging.start(
            member(bob),
            member(alice),
            "The contract",
            uploads=[attachments.Upload("contract.pdf", io.BytesIO(files.pdf()))],
        ).thread_id
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(f"{live_server.url}/messaging/t/{thread_id}")
    with page.expect_download() as download:
        page.get_by_test_id("attachment-link").click()
    assert download.value.suggested_filename == "contract.pdf"
    # The conversation is still there, not replaced by the file's bytes.
    expect(page.get_by_test_id("message-body")).to_have_text("The contract")
    assert page.url.endswith(f"/messaging/t/{thread_id}")


def header_bottom(page):
    return page.evaluate("document.querySelector('.topbar').getBoundingClientRect().bottom")


def test_profile_edit_after_registering_opens_at_the_top(live_server, page):
    page.goto(live_server.url + "/register")
    page.get_by_label("Full name").fill("Robin Ortega")
    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill("a much longer secret")
    page.get_by_role("button", name="Agree & join").click()
    flash = page.get_by_test_id("flash")
    expect(flash).to_contain_text("Welcome to LinkMsg, Robin Ortega")
    page.wait_for_timeout(100)  # focus is placed after the swap settles
    assert page.evaluate("window.scrollY") == 0
    assert flash.bounding_box()["y"] >= header_bottom(page)


def premium_ava_and_oscar(live_server, page) -> tuple[int, int]:
    """Ava (Premium, logged in) and Oscar, not connected: she may InMail him."""
    app = live_server.app
    (ava,) = make_members(app, "Ava Chen")
    (oscar,) = make_members(app, "Oscar Lind")
    with app.app_context():
        billing.start_premium(ava)
        db.session.commit()
    log_in(page, live_server.url, "ava-chen@example.com")
    return ava, oscar


def test_choosing_an_inmail_template_keeps_the_page_at_the_top(live_server, page):
    premium_ava_and_oscar(live_server, page)
    page.goto(live_server.url + "/inmail/new/oscar-lind")
    page.get_by_test_id("template-introduction").click()
    expect(page.get_by_label("Subject")).not_to_have_value("")
    page.wait_for_timeout(100)
    assert page.evaluate("window.scrollY") == 0
    heading = page.get_by_role("heading", name="InMail to Oscar Lind")
    assert heading.bounding_box()["y"] >= header_bottom(page)


def test_removing_a_connection_on_their_profile_updates_badge_and_message_button(live_server, page):
    make_members(live_server.app, "Alice Moreau", "Bob Stone")
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(live_server.url + "/in/bob-stone")
    expect(page.get_by_test_id("degree-badge")).to_have_text("1st")
    expect(page.get_by_test_id("message-button")).to_be_visible()
    page.get_by_text("More actions for Bob Stone").click()
    page.get_by_test_id("remove-connection").click()
    expect(page.get_by_text("You are no longer connected with Bob Stone.")).to_be_visible()
    expect(page.get_by_test_id("degree-badge")).to_have_text("Out of network")
    expect(page.get_by_test_id("message-button")).to_have_count(0)
    expect(page.get_by_test_id("message-locked-reason")).to_contain_text(
        "Connect with Bob Stone to message them"
    )
    # Connecting again from the same place brings the Connect control back.
    expect(page.get_by_test_id("connect-button")).to_be_visible()


def test_profile_shows_inmail_locked_while_one_waits_for_an_answer(live_server, page):
    app = live_server.app
    ava, oscar = premium_ava_and_oscar(live_server, page)
    with app.app_context():
        inmail.send(member(ava), member(oscar), "Hello", "Would you talk?")
    page.goto(live_server.url + "/in/oscar-lind")
    expect(page.get_by_test_id("inmail-button")).to_have_count(0)
    locked = page.get_by_test_id("inmail-locked")
    expect(locked.get_by_role("button", name="Send InMail")).to_be_disabled()
    expect(locked).to_contain_text("Your InMail to Oscar Lind is waiting for an answer.")


def test_reporting_a_message_returns_to_the_conversation(live_server, page):
    app = live_server.app
    alice, bob = make_members(app, "Alice Moreau", "Bob Stone")
    with app.app_context():
        thread_id = messaging.start(member(bob), member(alice), "Buy followers").thread_id
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(f"{live_server.url}/messaging/t/{thread_id}")
    page.get_by_test_id("message-actions").click()
    page.get_by_test_id("report-message").click()
    page.get_by_label("Spam").check()
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_test_id("flash")).to_contain_text("You reported Bob Stone")
    expect(page.get_by_test_id("message-body")).to_have_text("Buy followers")
    assert f"/messaging/t/{thread_id}" in page.url


def test_inmail_form_shows_every_error_at_once(live_server, page):
    premium_ava_and_oscar(live_server, page)
    page.goto(live_server.url + "/inmail/new/oscar-lind")
    page.get_by_role("button", name="Send InMail").click()
    errors = page.get_by_test_id("form-error")
    expect(errors).to_have_text(
        ["Give your InMail a subject.", "Write your InMail before sending."]
    )


def test_accepted_invitation_notification_and_connections_list(live_server, page):
    app = live_server.app
    (alice,) = make_members(app, "Alice Moreau")
    (cara,) = make_members(app, "Cara Diaz")
    with app.app_context():
        network.invite(cara, alice)
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(live_server.url + "/notifications")
    notification = page.get_by_test_id("notification")
    expect(notification).to_contain_text("Cara Diaz invited you to connect.")
    expect(notification.get_by_role("link", name="See invitation")).to_be_visible()

    page.goto(live_server.url + "/network")
    expect(page.get_by_test_id("connections").get_by_test_id("member-row")).to_have_count(0)
    page.get_by_role("button", name="Accept invitation from Cara Diaz").click()
    connections = page.get_by_test_id("connections")
    expect(connections.get_by_test_id("member-name")).to_have_text(["Cara Diaz"])
    expect(page.get_by_test_id("connection-count")).to_have_text("1")

    # Removing her from the list acts on that row, though she is on the page twice with
    # JavaScript (the answered invitation above it).
    row = connections.get_by_test_id("member-row")
    row.get_by_text("More actions for Cara Diaz").click()
    row.get_by_test_id("remove-connection").click()
    expect(page.get_by_test_id("connection-count")).to_have_text("0")
    if page.js_enabled:
        expect(row.get_by_test_id("connect-control")).to_have_attribute("data-state", "none")

    page.goto(live_server.url + "/notifications")
    expect(notification).to_contain_text("Cara Diaz invited you to connect. You accepted.")
    expect(notification.get_by_role("link", name="See invitation")).to_have_count(0)


def test_login_focuses_the_email_field(live_server, page):
    page.goto(live_server.url + "/login")
    if page.js_enabled:
        page.wait_for_function("() => window.htmx !== undefined")
    expect(page.get_by_label("Email")).to_be_focused()
    if page.js_enabled:
        # Reached by a boosted link too.
        page.goto(live_server.url + "/register")
        page.get_by_role("link", name="Log in").first.click()
        expect(page.get_by_label("Email")).to_be_focused()


def test_thread_times_line_up_whether_or_not_a_row_counts_unread(live_server, page):
    app = live_server.app
    alice, bob = make_members(app, "Alice Moreau", "Bob Stone")
    (cara,) = make_members(app, "Cara Diaz", connected=False)
    with app.app_context():
        network.accept(alice, network.invite(cara, alice).invitation.id)
        messaging.start(member(alice), member(bob), "Read by me: my own message")
        messaging.start(member(cara), member(alice), "Unread for Alice")
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(live_server.url + "/messaging")
    expect(page.get_by_test_id("thread-unread")).to_have_count(1)
    rights = page.eval_on_selector_all(
        "[data-testid=thread-time]", "times => times.map(t => t.getBoundingClientRect().right)"
    )
    assert len(rights) == 2 and abs(rights[0] - rights[1]) < 1, rights


def test_selected_filter_uses_the_accent_colour(live_server, page):
    make_members(live_server.app, "Alice Moreau")
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(live_server.url + "/messaging")
    colours = page.evaluate(
        """() => {
          const accent = getComputedStyle(document.querySelector('.button.primary'));
          const chosen = getComputedStyle(document.querySelector('.filter[aria-current=true]'));
          return [accent.backgroundColor, chosen.backgroundColor];
        }"""
    )
    assert colours[0] == colours[1], colours


def test_labels_page_keeps_rename_closed_until_asked(live_server, chromium, page):
    app = live_server.app
    (alice,) = make_members(app, "Alice Moreau")
    with app.app_context():
        for name in ("Recruiters", "Project Atlas", "A rather long label name here"):
            organise.create_label(alice, name)
        db.session.commit()
    page.set_viewport_size({"width": 375, "height": 700})
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(live_server.url + "/messaging/labels")
    rows = page.get_by_test_id("label-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("rename-input").first).to_be_hidden()
    for index in range(3):
        row = rows.nth(index)
        name_top = row.get_by_test_id("label-name").bounding_box()["y"]
        delete = row.get_by_test_id("delete-label").bounding_box()
        assert abs(delete["y"] - name_top) < 12, f"Delete wraps on row {index}"
    atlas = rows.filter(has_text="Project Atlas")
    atlas.get_by_test_id("rename-open").click()
    atlas.get_by_test_id("rename-input").fill("Project Borealis")
    atlas.get_by_test_id("rename-label").click()
    expect(page.get_by_test_id("label-name")).to_contain_text(["Project Borealis"])
