"""A newcomer registers, completes the profile, sees it, logs out and in — JS on and off."""

from playwright.sync_api import expect


def submit(page, button_name: str) -> None:
    page.get_by_role("button", name=button_name).click()


def test_register_complete_profile_log_out_and_in(live_server, page):
    page.goto(live_server.url + "/")
    if page.js_enabled:
        page.wait_for_function("() => window.htmx !== undefined")
        page.evaluate("window.__samePage = true")
    page.get_by_role("link", name="Join now").first.click()
    expect(page.get_by_role("heading", name="Join LinkMsg")).to_be_visible()

    # A too-short password is refused in the page, next to its field.
    page.get_by_label("Full name").fill("Robin Ortega")
    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill("short")
    submit(page, "Agree & join")
    expect(page.get_by_test_id("form-error")).to_have_text(
        "Choose a password of at least 8 characters."
    )

    page.get_by_label("Password").fill("a much longer secret")
    submit(page, "Agree & join")
    expect(page.get_by_test_id("flash")).to_contain_text("Welcome to LinkMsg, Robin Ortega")
    expect(page.get_by_test_id("profile-incomplete")).to_contain_text(
        "Add your headline and location"
    )
    assert page.url.endswith("/profile/edit")

    page.get_by_label("Headline").fill("Platform Engineer at Northwind")
    page.get_by_label("Location").fill("Madrid, Spain")
    page.get_by_label("About").fill("I build <b>reliable</b> systems.\nAnd I like climbing.")
    submit(page, "Save profile")
    expect(page.get_by_test_id("profile-name")).to_have_text("Robin Ortega")
    expect(page.get_by_test_id("profile-headline")).to_have_text("Platform Engineer at Northwind")
    expect(page.get_by_test_id("profile-location")).to_have_text("Madrid, Spain")
    expect(page.get_by_test_id("profile-about")).to_contain_text("I build <b>reliable</b> systems.")
    expect(page.get_by_test_id("profile-incomplete")).to_have_count(0)
    assert "/in/robin-ortega" in page.url

    # With JavaScript, every step above was an htmx swap inside one page load.
    if page.js_enabled:
        assert page.evaluate("window.__samePage === true")

    page.get_by_text("Me", exact=True).click()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("flash")).to_have_text("You have logged out.")

    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill("a much longer secret")
    submit(page, "Log in")
    expect(page.get_by_role("heading", name="Welcome, Robin Ortega")).to_be_visible()
