"""Forgot password in a real browser: the email arrives over SMTP, its link sets a new
password and logs the member in, and the old password no longer works — JS on and off."""

import re

from playwright.sync_api import expect

from linkmsg import mail

from ..test_mail import smtp, text_part  # noqa: F401  (smtp is a fixture)
from .conftest import E2E_PASSWORD, make_members

NEW_PASSWORD = "copper kettle nightfall"


def test_forgot_password_email_new_password_logged_in(live_server, page, smtp):  # noqa: F811
    controller, sink = smtp
    app = live_server.app
    app.config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, PUBLIC_URL=live_server.url
    )
    make_members(app, "Robin Ortega", connected=False)

    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill("robin-ortega@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_test_id("reset-sent")).to_contain_text("robin-ortega@example.com")

    with app.app_context():
        assert mail.send_due()["sent"] == 1  # the worker's next pass
    [message] = sink.messages
    assert message["To"] == "robin-ortega@example.com"
    link = re.search(r"http://\S+/password/reset/\S+", text_part(message)).group(0)

    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill("password")
    page.get_by_role("button", name="Save new password").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("too easy to guess")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save new password").click()
    expect(page.get_by_test_id("flash")).to_have_text(
        "Your password is changed, and every other session is logged out."
    )
    expect(page.get_by_role("heading", name="Welcome, Robin Ortega")).to_be_visible()

    # The link was single-use.
    page.goto(link)
    expect(page.get_by_test_id("refusal")).to_contain_text("expired or was already used")

    # Logged out, the old password is refused and the new one works.
    page.goto(live_server.url + "/")
    page.get_by_text("Me", exact=True).click()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("flash")).to_have_text("You have logged out.")
    page.get_by_label("Email").fill("robin-ortega@example.com")
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("form-error")).to_have_text(
        "That email and password do not match an account."
    )
    if page.js_enabled:
        # The refusal is swapped in, then focus goes to its first field: typing before
        # that lands can follow the focus into the Email box.
        expect(page.get_by_label("Email")).to_be_focused()
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome, Robin Ortega")).to_be_visible()


def test_a_tab_whose_session_ended_elsewhere_goes_to_the_login_page(live_server, chromium):
    """Logged in on a laptop and a phone; "Log out of all other sessions" on the phone
    sends the laptop's open page to the login page within seconds, by its live stream."""
    from .conftest import log_in

    make_members(live_server.app, "Robin Ortega", connected=False)
    laptop_context, phone_context = chromium.new_context(), chromium.new_context()
    try:
        laptop, phone = laptop_context.new_page(), phone_context.new_page()
        for page in (laptop, phone):
            log_in(page, live_server.url, "robin-ortega@example.com")
        laptop.goto(live_server.url + "/messaging")
        laptop.wait_for_function("() => document.getElementById('live') !== null")
        laptop.wait_for_timeout(500)  # the stream is open
        phone.goto(live_server.url + "/settings/password")
        phone.get_by_role("button", name="Log out of all other sessions").click()
        expect(phone.get_by_test_id("flash")).to_have_text("Logged out of 1 other session.")
        laptop.wait_for_url("**/login**", timeout=10_000)
        expect(laptop.get_by_role("button", name="Log in")).to_be_visible()
        expect(phone.get_by_test_id("session")).to_have_count(1)  # the phone stays in
    finally:
        laptop_context.close()
        phone_context.close()
