"""Screenshots of the main pages with the demo network, at desktop and phone widths, into
docs/screenshots/<page>-<desktop|phone>.png (shown in the README); on each, no page is wider
than the screen (no sideways scrolling)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .. import files
from .demo_site import AVA, demo_site, logged_in_context

# One demo site and its logged-in tabs serve the whole module: on one xdist worker.
pytestmark = pytest.mark.xdist_group("screenshots")

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


def _conversation_today(site):
    """Ben writes twice today (a document, then a photo) and Ava answers twice: two runs
    under a "Today" separator, after the conversation of two days ago."""
    import io

    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import messaging
    from linkmsg.services.attachments import Upload

    thread_id = site.threads["ben-okafor"]
    with site.app.app_context():
        ben = db.session.scalar(db.select(Member).where(Member.handle == "ben-okafor"))
        ava = db.session.scalar(db.select(Member).where(Member.handle == "ava-chen"))
        plan = [
            (ben, "Before Thursday: my CV and a photo from the payments offsite.", "cv.pdf"),
            (ben, "", "offsite.png"),
            (ava, "Thanks Ben, that helps a lot.", None),
            (ava, "See you Thursday at 3 pm!", None),
        ]
        for sender, body, name in plan:
            content = {"cv.pdf": files.pdf, "offsite.png": lambda: files.image("PNG", (640, 400))}
            uploads = [Upload(name, io.BytesIO(content[name]()))] if name else []
            messaging.reply(sender, thread_id, body, uploads=uploads)
    return thread_id


# After the pages above (whose threads stay as seeded): a conversation with runs, a day
# separator, a picture and a document, and the composer with a file chosen.
@pytest.mark.parametrize("device", list(DEVICES))
def test_conversation_and_composer_screenshots(site, contexts, device, tmp_path):
    if not site.threads.get("today-seeded"):
        _conversation_today(site)
        site.threads["today-seeded"] = 1
    page = contexts[device].new_page()
    try:
        width = DEVICES[device]["viewport"]["width"]
        # Tall enough for the whole conversation (sticky header and composer stay in place).
        page.set_viewport_size({"width": width, "height": 1400})
        page.goto(f"{site.url}/messaging/t/{site.threads['ben-okafor']}")
        for thumbnail in page.get_by_test_id("attachment-thumbnail").all():
            expect(thumbnail).to_have_js_property("complete", True)
        page.screenshot(path=SCREENSHOTS / f"conversation-{device}.png", animations="disabled")
        page.set_viewport_size(DEVICES[device]["viewport"])
        page.goto(f"{site.url}/messaging/t/{site.threads['ben-okafor']}#reply")
        chosen = tmp_path / "Payments team roadmap.pdf"
        chosen.write_bytes(files.pdf())
        page.get_by_test_id("file-input").set_input_files(str(chosen))
        page.get_by_label("Write a message").fill("Here is the roadmap we talked about.")
        page.screenshot(path=SCREENSHOTS / f"composer-{device}.png", animations="disabled")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page.close()


@pytest.mark.parametrize("device", list(DEVICES))
def test_conversation_menu_screenshots(site, contexts, device):
    """The conversation's header with its "⋯" menu open."""
    page = contexts[device].new_page()
    try:
        page.goto(f"{site.url}/messaging/t/{site.threads['carla-mendes']}")
        header = page.get_by_test_id("thread-header")
        header.get_by_test_id("thread-menu").click()
        expect(header.get_by_test_id("thread-menu-panel")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / f"menu-{device}.png", animations="disabled")
        width = DEVICES[device]["viewport"]["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page.close()


def _group_conversation(site) -> int:
    """Ava starts "Payments hiring" with Ben and Carla, Ben answers, Ava adds Chidi, who
    says hello: a group with its members, runs from three senders and system lines."""
    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import groups, messaging

    with site.app.app_context():

        def member(handle):
            return db.session.scalar(db.select(Member).where(Member.handle == handle))

        ava, ben, carla, chidi = (
            member(h) for h in ("ava-chen", "ben-okafor", "carla-mendes", "chidi-eze")
        )
        sent = messaging.start_group(
            ava,
            [ben.id, carla.id],
            "Payments hiring",
            "Let's line up the interviews for the payments team here.",
        )
        messaging.reply(ben, sent.thread_id, "Great idea. I can take the system design round.")
        messaging.reply(carla, sent.thread_id, "I'll do the product sense one.")
        groups.add(member("ava-chen"), sent.thread_id, [chidi.id])
        messaging.reply(chidi, sent.thread_id, "Thanks for adding me! Happy to help with coding.")
        return sent.thread_id


@pytest.mark.parametrize("device", list(DEVICES))
def test_group_and_new_message_screenshots(site, contexts, device):
    """A group conversation beside the list, and the New message page that starts one."""
    if not site.threads.get("group"):
        site.threads["group"] = _group_conversation(site)
    page = contexts[device].new_page()
    try:
        width = DEVICES[device]["viewport"]["width"]
        page.goto(f"{site.url}/messaging/t/{site.threads['group']}")
        expect(page.get_by_test_id("thread-members")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / f"group-{device}.png", animations="disabled")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.goto(f"{site.url}/messaging/new")
        page.get_by_test_id("recipient-option").first.check()
        page.screenshot(path=SCREENSHOTS / f"new-message-{device}.png", animations="disabled")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page.close()
