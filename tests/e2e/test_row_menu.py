"""A thread row's "⋯" menu: one form whose buttons each post to their own action. In
Chromium, with and without JavaScript: the menu opens with its buttons stacked at the left,
Mute mutes that conversation and Archive archives it; the browser console stays clean.
Screenshots of the open menu go to docs/screenshots/row-menu-<desktop|phone>.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .demo_site import AVA, demo_site, logged_in_context

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}


@pytest.fixture
def site(sqlite_template, tmp_path):
    with demo_site(sqlite_template, tmp_path) as running:
        yield running


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
@pytest.mark.parametrize("device", DEVICES)
def test_a_rows_menu_mutes_and_archives_its_own_conversation(
    chromium, site, browser_errors, js, device
):
    context = browser_errors.watch(logged_in_context(chromium, site, AVA, js=js, **DEVICES[device]))
    try:
        page = context.new_page()
        page.goto(site.url + "/messaging")
        thread_id = site.threads["ben-okafor"]
        row = page.locator(f"#thread-row-{thread_id}")
        row.get_by_test_id("thread-actions").click()
        buttons = [row.get_by_test_id(t) for t in ("archive-button", "mute-button")]
        for button in buttons:
            expect(button).to_be_visible()
        lefts = {round(button.bounding_box()["x"]) for button in buttons}
        assert len(lefts) == 1, f"the menu's buttons are not aligned: {lefts}"
        if js:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"row-menu-{device}.png", animations="disabled")

        row.get_by_test_id("mute-button").click()
        if not js:
            page.wait_for_url(site.url + "/messaging")
        row = page.locator(f"#thread-row-{thread_id}")
        expect(row).to_have_attribute("data-muted", "1")
        expect(row.get_by_test_id("muted-badge")).to_be_visible()

        row.get_by_test_id("thread-actions").click()
        row.get_by_test_id("archive-button").click()
        if not js:
            page.wait_for_url(site.url + "/messaging")
        expect(page.locator(f"#thread-row-{thread_id}")).to_have_count(0)
        page.goto(site.url + "/messaging?filter=archived")
        archived = page.locator(f"#filed-row-{thread_id}")
        expect(archived).to_have_attribute("data-archived", "1")
        expect(archived).to_have_attribute("data-muted", "1")
    finally:
        context.close()
