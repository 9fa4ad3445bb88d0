"""Screenshots of the main pages with the demo network, at desktop and phone widths, into
docs/screenshots/<page>-<desktop|phone>.png (shown in the README); on each, no page is wider
than the screen (no sideways scrolling)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .demo_site import AVA, demo_site, logged_in_context

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}

# In this order: the inbox is shown before its threads are opened (and read).
PAGES = [
    ("messaging", "/messaging"),
    ("thread", "/messaging/t/{thread}"),
    ("profile", "/in/ben-okafor"),
    ("network", "/network"),
    ("inmail", "/inmail/new/oscar-lindqvist?template=introduction"),
    ("premium", "/premium"),
    ("notifications", "/notifications"),
]
SHOTS = [(name, path, device) for name, path in PAGES for device in DEVICES]


@pytest.fixture(scope="module")
def site(sqlite_template, tmp_path_factory):
    with demo_site(sqlite_template, tmp_path_factory.mktemp("screenshots")) as running:
        yield running


@pytest.fixture(scope="module")
def contexts(chromium, site):
    opened = {
        device: logged_in_context(chromium, site, AVA, js=True, **options)
        for device, options in DEVICES.items()
    }
    yield opened
    for context in opened.values():
        context.close()


@pytest.mark.parametrize(("name", "path", "device"), SHOTS, ids=[f"{n}-{d}" for n, _, d in SHOTS])
def test_screenshot_fits_the_screen(site, contexts, name, path, device):
    page = contexts[device].new_page()
    try:
        page.goto(site.url + path.format(thread=site.threads["ben-okafor"]))
        page.wait_for_load_state("load")
        width = DEVICES[device]["viewport"]["width"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}-{device}.png", animations="disabled")
        overflow = page.evaluate(
            """(width) => [document.documentElement.scrollWidth,
                [...document.querySelectorAll("body *")]
                  .filter((e) => e.getBoundingClientRect().right > width + 0.5)
                  .slice(0, 8)
                  .map((e) => e.outerHTML.slice(0, 160))]""",
            width,
        )
    finally:
        page.close()
    scroll_width, wide = overflow
    assert scroll_width <= width, (
        f"{name} at {width}px scrolls sideways ({scroll_width}px wide); too wide:\n"
        + "\n".join(wide)
    )
