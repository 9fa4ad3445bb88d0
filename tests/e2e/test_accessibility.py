"""axe-core over every main page, with JavaScript on and off: no serious or critical
violations (WCAG 2 A/AA and axe's best practices), on the demo network's pages.

With JavaScript on the pages are seen on a desktop screen (1280 px); with JavaScript off on
the narrowest screen WCAG asks pages to reflow to (320 CSS px, 1.4.10 Reflow), where they
must not scroll sideways.
"""

from __future__ import annotations

import pytest

from . import axe
from .demo_site import AVA, DANA, demo_site, logged_in_context

# One demo site and its logged-in tabs serve the whole module: on one xdist worker.
pytestmark = pytest.mark.xdist_group("accessibility")

# (name, who is logged in, path, expected status, a button to press first or None);
# "{thread}" is Ava's thread with Ben, "{inmail_thread}" her InMail to Priya. A button
# pressed on an empty form shows the page with its validation errors.
PAGES = [
    ("login", None, "/login", 200, None),
    ("login-errors", None, "/login", 200, "Log in"),
    ("register", None, "/register", 200, None),
    ("register-errors", None, "/register", 200, "Agree & join"),
    ("forgot-password", None, "/password/forgot", 200, None),
    ("forgot-password-errors", None, "/password/forgot", 200, "Email me a link"),
    ("reset-link-unusable", None, "/password/reset/1-unknown", 404, None),
    ("home-anonymous", None, "/", 200, None),
    ("home", AVA, "/", 200, None),
    ("messaging-inbox", AVA, "/messaging", 200, None),
    ("messaging-inmail-filter", AVA, "/messaging?filter=inmail", 200, None),
    ("thread", AVA, "/messaging/t/{thread}", 200, None),
    ("inmail-thread", AVA, "/messaging/t/{inmail_thread}", 200, None),
    ("message-search", AVA, "/messaging/search?q=Thursday", 200, None),
    ("labels", AVA, "/messaging/labels", 200, None),
    ("new-message", AVA, "/messaging/new/chidi-eze", 200, None),
    ("new-message-errors", AVA, "/messaging/new/chidi-eze", 200, "Send"),
    ("new-message-picker", AVA, "/messaging/new", 200, None),
    ("group-thread", AVA, "/messaging/t/{group}", 200, None),
    ("group-add-people", AVA, "/messaging/t/{group}/people", 200, None),
    ("new-message-picker-errors", AVA, "/messaging/new", 200, "Send"),
    ("own-profile", AVA, "/in/ava-chen", 200, None),
    ("profile-connection", AVA, "/in/ben-okafor", 200, None),
    ("profile-out-of-network", AVA, "/in/oscar-lindqvist", 200, None),
    ("profile-edit", AVA, "/profile/edit", 200, None),
    ("network", AVA, "/network", 200, None),
    ("search-results", AVA, "/search?q=engineer", 200, None),
    ("notifications", AVA, "/notifications", 200, None),
    ("inmail-compose", AVA, "/inmail/new/oscar-lindqvist", 200, None),
    ("inmail-compose-errors", AVA, "/inmail/new/oscar-lindqvist", 200, "Send InMail"),
    ("inmail-stats", AVA, "/inmail/stats", 200, None),
    ("premium", AVA, "/premium", 200, None),
    ("settings", AVA, "/settings", 200, None),
    ("password-and-sessions", AVA, "/settings/password", 200, None),
    ("password-and-sessions-errors", AVA, "/settings/password", 200, "Change password"),
    ("invite", AVA, "/network/invite/oscar-lindqvist", 200, None),
    ("profile-viewers", AVA, "/profile/views", 200, None),
    ("report-member", AVA, "/report/oscar-lindqvist", 200, None),
    ("admin-reports", DANA, "/admin/reports", 200, None),
    ("not-found", AVA, "/in/nobody-by-this-name", 404, None),
    ("not-found-anonymous", None, "/no/such/page", 404, None),
]


@pytest.fixture(scope="module")
def site(sqlite_template, tmp_path_factory):
    with demo_site(sqlite_template, tmp_path_factory.mktemp("a11y")) as running:
        yield running


# The page's width, and the elements that stick out past the screen's right edge.
WIDEST = """[document.documentElement.scrollWidth,
  [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > %d + 0.5)
    .slice(0, 8)
    .map((e) => e.outerHTML.slice(0, 200))]"""

SCREENS = {
    True: {"viewport": {"width": 1280, "height": 800}},
    False: {"viewport": {"width": 320, "height": 640}, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(scope="module")
def group(site) -> int:
    """A group Ava started with three of her connections, one message from each."""
    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import groups, messaging

    with site.app.app_context():
        ava = db.session.scalar(db.select(Member).where(Member.handle == "ava-chen"))
        picked = groups.candidates(ava)[:3]
        thread_id = messaging.start_group(
            ava, [m.id for m in picked], "Design review", "Agenda for Thursday"
        ).thread_id
        for other in picked[:2]:
            messaging.reply(db.session.get(Member, other.id), thread_id, f"Thanks, {ava.name}")
        return thread_id


@pytest.fixture(scope="module")
def tabs(chromium, site):
    """One tab carrying axe per (member, JavaScript on/off), logged in once, reused."""
    opened = {}

    def get(who, js) -> axe.Axe:
        if (who, js) not in opened:
            if who is None:
                context = chromium.new_context(java_script_enabled=js, **SCREENS[js])
                context.set_default_timeout(10_000)
            else:
                context = logged_in_context(chromium, site, who, js=js, **SCREENS[js])
            opened[who, js] = axe.Axe(context.new_page(), js=js)
        return opened[who, js]

    yield get
    for tab in opened.values():
        tab.page.context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
@pytest.mark.parametrize(
    ("name", "who", "path", "status", "press"), PAGES, ids=[p[0] for p in PAGES]
)
def test_page_has_no_serious_accessibility_violations(
    site, tabs, group, name, who, path, status, press, js
):
    tab = tabs(who, js)
    url = site.url + path.format(
        thread=site.threads["ben-okafor"], inmail_thread=site.threads["priya-raman"], group=group
    )
    response = tab.page.goto(url)
    assert response.status == status, f"{name}: {url} answered {response.status}"
    if press:
        tab.page.get_by_role("main").get_by_role("button", name=press, exact=True).click()
        tab.page.get_by_test_id("form-error").first.wait_for()
    found = tab.violations()
    failing = axe.serious(found)
    assert not failing, f"{name} ({url}, JavaScript {'on' if js else 'off'}):\n" + axe.report(
        failing
    )
    width = SCREENS[js]["viewport"]["width"]
    scroll_width, wide = tab.evaluate(WIDEST % width)
    assert scroll_width <= width, (
        f"{name} ({url}) scrolls sideways at {width} px ({scroll_width} px wide):\n"
        + "\n".join(wide)
    )


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
def test_the_open_conversation_menu_has_no_serious_accessibility_violations(site, tabs, js):
    """The "⋯" menu of a conversation as a member opens it (the others stay closed),
    beside the list at 1280 px with JavaScript, alone at 320 px without."""
    tab = tabs(AVA, js)
    tab.page.goto(f"{site.url}/messaging/t/{site.threads['carla-mendes']}")
    header = tab.page.get_by_test_id("thread-header")
    header.get_by_test_id("thread-menu").click()
    header.get_by_test_id("thread-menu-panel").wait_for()
    failing = axe.serious(tab.violations(open_details=False))
    assert not failing, axe.report(failing)
