"""Organising in real Chromium, JavaScript on and off: the row menu archives in place
(htmx) or by a redirect (plain form); labels, search and the thread opened at a result."""

from playwright.sync_api import expect

from .conftest import log_in, make_members


def seed(app):
    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import messaging

    ids = make_members(app, "Nora Quinn", "Omar Haddad")
    ids += make_members(app, "Pia Lund", connected=False)
    with app.app_context():
        from linkmsg.services import network

        network.accept(ids[2], network.invite(ids[0], ids[2]).invitation.id)
        nora, omar, pia = (db.session.get(Member, i) for i in ids)
        messaging.start(omar, nora, "The quarterly budget draft is ready for review")
        for n in range(40):
            messaging.start(pia, nora, f"Filler message number {n}")
        messaging.start(pia, nora, "See you at the offsite")


def test_archive_label_and_search(live_server, page):
    seed(live_server.app)
    url = live_server.url
    log_in(page, url, "nora-quinn@example.com")
    page.goto(url + "/messaging")
    rows = page.get_by_test_id("thread-row")
    expect(rows).to_have_count(2)
    omar_row = rows.filter(has_text="Omar Haddad")

    if page.js_enabled:
        # htmx has taken over the page's forms (so the click is not a plain form post).
        page.wait_for_function("() => window.htmx !== undefined")
    # Archive Omar's thread from its row menu (a <details>, so no script is needed to open it).
    omar_row.get_by_test_id("thread-actions").click()
    omar_row.get_by_test_id("archive-button").click()
    expect(page.get_by_test_id("thread-row")).to_have_count(1)
    # With htmx the row goes in place (no navigation); either way the page says what
    # happened, in the flash region that screen readers hear (role=status).
    expect(page.get_by_test_id("flash")).to_contain_text("archived", timeout=10_000)
    if page.js_enabled:
        assert page.evaluate("location.pathname") == "/messaging"
    page.get_by_test_id("filter-archived").click()
    expect(page.get_by_test_id("thread-row")).to_have_count(1)
    expect(page.get_by_test_id("archived-badge")).to_be_visible()

    # Create a label and file Pia's thread under it from the thread page.
    page.goto(url + "/messaging/labels")
    page.get_by_label("Label name").fill("Offsite")
    page.get_by_test_id("create-label").click()
    expect(page.get_by_test_id("label-name")).to_have_text(["Offsite"])
    page.goto(url + "/messaging")
    page.get_by_test_id("thread-row").get_by_role("link").first.click()
    page.get_by_test_id("labels-button").click()
    page.get_by_label("Offsite").check()
    page.get_by_test_id("save-labels").click()
    header = page.get_by_test_id("thread-header")
    expect(header.get_by_test_id("thread-label")).to_have_text(["Offsite"])
    page.goto(url + "/messaging")
    page.get_by_test_id("filter-label").click()
    # The inbox already shows one row (Omar's is archived): wait for the label's own page.
    page.wait_for_url("**label=**")
    expect(page.get_by_test_id("thread-row")).to_have_count(1)
    expect(page.get_by_test_id("thread-name")).to_have_text("Pia Lund")

    # Search: a result opens the thread at that message, deep in its history.
    page.get_by_label("Search your messages").fill("number 3")
    page.get_by_label("Search your messages").press("Enter")
    results = page.get_by_test_id("search-result")
    expect(results.first).to_be_visible()
    expect(results.first.locator("mark").first).to_have_text("number")
    page.get_by_test_id("search-result").filter(has_text="Filler message number 3").first.click()
    highlighted = page.locator("li.message.highlight")
    expect(highlighted).to_have_count(1)
    expect(highlighted.get_by_test_id("message-body")).to_have_text("Filler message number 3")
    expect(page.get_by_test_id("load-newer")).to_be_visible()
    # The archived budget thread is still found by a search.
    page.goto(url + "/messaging/search?q=budget")
    expect(page.get_by_test_id("search-result")).to_have_count(1)
