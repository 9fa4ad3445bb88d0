"""Find a member, connect, and the other side accepts — in Chromium, JS on and off."""

from playwright.sync_api import expect

from linkmsg.services import accounts

from .conftest import E2E_PASSWORD as PASSWORD
from .conftest import log_in


def make(live_server, name, headline):
    with live_server.app.app_context():
        member = accounts.register(f"{accounts.slugify(name)}@example.com", PASSWORD, name)
        accounts.update_profile(member.id, accounts.ProfileInput(name, headline, "Lisbon", ""))
        return member.email


def test_search_connect_and_accept(live_server, page):
    ann = make(live_server, "Ann Lee", "Designer at Northwind")
    bob = make(live_server, "Bob Stone", "Engineer at Northwind")
    log_in(page, live_server.url, ann)

    page.get_by_label("Search members").fill("northwind")
    page.get_by_label("Search members").press("Enter")
    row = page.locator('[data-testid="member-row"][data-handle="bob-stone"]')
    expect(row.get_by_test_id("degree-badge")).to_have_text("Out of network")
    if page.js_enabled:
        page.evaluate("window.__samePage = true")
    row.get_by_role("button", name="Connect with Bob Stone").click()
    expect(row.get_by_test_id("pending")).to_have_text("Pending")
    assert "/search?q=northwind" in page.url
    if page.js_enabled:
        # Swapped in place by htmx: the same page, the notice inside the control.
        assert page.evaluate("window.__samePage === true")
        expect(row.get_by_test_id("connect-notice")).to_have_text("Invitation sent to Bob Stone.")
    else:
        expect(page.get_by_test_id("flash")).to_have_text("Invitation sent to Bob Stone.")

    page.context.clear_cookies()
    log_in(page, live_server.url, bob)
    page.goto(live_server.url + "/network")
    page.get_by_role("button", name="Accept invitation from Ann Lee").click()
    expect(page.get_by_test_id("connected").first).to_be_visible()
    page.goto(live_server.url + "/in/ann-lee")
    expect(page.get_by_test_id("degree-badge")).to_have_text("1st")
    expect(page.get_by_test_id("message-button")).to_be_visible()
