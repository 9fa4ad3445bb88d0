"""Messaging lists kept rendered (linkmsg/list_pane.py, issue 20): a list is used again
only while nothing it shows has changed, on SQLite and PostgreSQL.

Each change a member can meet — a message in, reading elsewhere, archiving, labels, a
block either way, leaving or being removed from a group, a new name or picture, time
passing — is made after the list was kept, and the next page must show exactly what a
list rendered from scratch shows. Every step first checks that the page before it was
served from a kept list (else the test would prove nothing) and that the change shows.
"""

from __future__ import annotations

import io
import random
import re
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from linkmsg import list_pane, templating
from linkmsg.extensions import db
from linkmsg.models import Member, Report
from linkmsg.services import (
    attachments,
    blocking,
    groups,
    messaging,
    organise,
    reports,
)
from linkmsg.statements import counted

from .factories import Browser, change_profile, launch_team, make_member, page_token, soup
from .files import image

LIST_ROWS = "message AS last_message"  # in the statement that reads a list's rows
TOKEN = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*(")')


def pane(response) -> str:
    """The list pane as HTML, form tokens blanked (each page signs its own)."""
    assert response.status_code == 200, response.status_code
    found = soup(response).find(attrs={"data-testid": "list-pane"})
    assert found is not None, "the page shows the Messaging list"
    return TOKEN.sub(r"\1\2", str(found))


def fresh(app, browser, url: str) -> str:
    """The list pane as rendered from scratch (nothing kept)."""
    with app.app_context():
        list_pane.store().clear()
    return pane(browser.get(url))


def used(app) -> int:
    with app.app_context():
        return list_pane.store().used


@pytest.fixture
def team(app):
    """Ava's Messaging: one-to-one threads with Ben and Cy (Cy's unread), the group
    "Launch team" (Ava, Ben, Cy), a label on Ben's thread, Dee connected."""
    with app.app_context():
        ava, ben, cy, dee, group = launch_team()
        get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
        with_ben = messaging.start(get(ava), get(ben), "Hello Ben").thread_id
        messaging.reply(get(ben), with_ben, "Hi Ava")
        with_cy = messaging.start(get(cy), get(ava), "Hello Ava").thread_id
        work = organise.create_label(ava.id, "Work")
        organise.set_thread_labels(ava.id, with_ben, [work.id])
        ids = {"ben_thread": with_ben, "cy_thread": with_cy, "group": group, "work": work.id}
    browser = Browser(app)
    browser.login(ava)
    return browser, ava, ben, cy, dee, ids


def test_a_repeat_page_uses_the_kept_list_without_reading_it_again(app, team):
    browser, ava, ben, cy, dee, ids = team
    url = f"/messaging/t/{ids['ben_thread']}"
    browser.get(url)  # opened: read
    with counted(app) as first:
        rendered = fresh(app, browser, url)
    served = used(app)
    with counted(app) as second:
        again = pane(browser.get(url))
    assert used(app) == served + 1, "the second page used the kept list"
    assert again == rendered
    # Kept: the list's own statement (the one that reads its rows) is not asked again,
    # and nothing is asked in its place.
    assert [s for s in first if LIST_ROWS in s] and not [s for s in second if LIST_ROWS in s]
    assert len(second) == len(first) - 1, second


def test_each_change_shows_on_the_next_page(app, team, monkeypatch):
    browser, ava, ben, cy, dee, ids = team
    get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
    # The group's page shows the list too, and stays open to Ava throughout (a block
    # hides a one-to-one thread; a group she left stays hers to read).
    inbox, group_page = "/messaging", f"/messaging/t/{ids['group']}"

    def time_passes():
        moved = templating.utcnow() + timedelta(hours=2)
        monkeypatch.setattr(templating, "utcnow", lambda: moved)

    steps = [
        ("Ben replies", lambda: messaging.reply(get(ben), ids["ben_thread"], "Still there?")),
        ("Cy writes in the group", lambda: messaging.reply(get(cy), ids["group"], "News")),
        (
            "Ava reads Cy's message in another tab",
            lambda: messaging.mark_read(
                ava.id, ids["cy_thread"], messaging.messages(ids["cy_thread"]).messages[-1].id
            ),
        ),
        ("Ava marks Ben's thread unread", lambda: organise.mark_unread(ava.id, ids["ben_thread"])),
        ("Ava mutes Ben", lambda: organise.set_muted(ava.id, ids["ben_thread"], True)),
        ("Ava archives Cy", lambda: organise.set_archived(ava.id, ids["cy_thread"], True)),
        ("Ava moves Cy back", lambda: organise.set_archived(ava.id, ids["cy_thread"], False)),
        (
            "Ava files the group under Work",
            lambda: organise.set_thread_labels(ava.id, ids["group"], [ids["work"]]),
        ),
        ("Ava renames Work", lambda: organise.rename_label(ava.id, ids["work"], "Clients")),
        ("Ava deletes the label", lambda: organise.delete_label(ava.id, ids["work"])),
        ("Ben renames himself", lambda: change_profile(ben, name="Benjamin Bell")),
        ("Cy changes her headline", lambda: change_profile(cy, headline="Founder at Elsewhere")),
        (
            "Cy adds a picture",
            lambda: change_profile(
                cy, avatar=attachments.Upload("me.png", io.BytesIO(image("PNG")))
            ),
        ),
        ("Ava blocks Cy", lambda: blocking.block(ava.id, cy.id)),
        ("Ava unblocks Cy", lambda: blocking.unblock(ava.id, cy.id)),
        ("Ben blocks Ava", lambda: blocking.block(ben.id, ava.id)),
        ("Ben unblocks Ava", lambda: blocking.unblock(ben.id, ava.id)),
        ("Ben renames the group", lambda: groups.rename(get(ben), ids["group"], "Lift-off")),
        ("Ava adds Dee", lambda: groups.add(get(ava), ids["group"], [dee.id])),
        ("Ava removes Cy", lambda: groups.remove(get(ava), ids["group"], cy.id)),
        ("Ava leaves the group", lambda: groups.leave(get(ava), ids["group"])),
        # Her side stays put from now on; the group still shows in her list, as it is.
        ("Ben renames the group Ava left", lambda: groups.rename(get(ben), ids["group"], "Q4")),
        ("Two hours pass", time_passes),
    ]
    for name, change in steps:
        for url in (group_page, inbox):
            browser.get(url)  # kept (after the last step's fresh render, kept again)
            served = used(app)
            before = pane(browser.get(url))
            assert used(app) == served + 1, f"{name}: the page before was a kept list"
        with app.app_context():
            change()
        for url in (inbox, group_page):  # (opening the group reads it: the inbox first)
            shown = pane(browser.get(url))
            assert shown == fresh(app, browser, url), f"{name}: {url} shows a kept list gone stale"
            if url == inbox:
                assert shown != before, f"{name}: the change shows in the list"


def test_pages_sharing_a_kept_list_each_get_their_own_token_address_and_open_row(app, team):
    browser, ava, ben, cy, dee, ids = team
    ben_page, cy_page = f"/messaging/t/{ids['ben_thread']}", f"/messaging/t/{ids['cy_thread']}"
    browser.get(cy_page)  # read: the list's state settles
    browser.get(ben_page)  # kept, rendered on Ben's page
    served = used(app)
    page = soup(browser.get(cy_page))
    assert used(app) == served + 1
    opened = page.select('[data-testid="list-pane"] a.thread-link[aria-current="page"]')
    assert [a["href"] for a in opened] == [f"/messaging/t/{ids['cy_thread']}#reply"]
    row = page.find(id=f"thread-row-{ids['ben_thread']}")
    form = row.find("form")
    assert form.find("input", attrs={"name": "next"})["value"] == cy_page
    token = form.find("input", attrs={"name": "csrf_token"})["value"]
    assert "\x00" not in str(page), "no marker is left in the page"
    # The token written into the kept rows for this page is a working one.
    archived = browser.client.post(
        form["action"], data={"csrf_token": token, "archived": "1", "next": cy_page}
    )
    assert archived.status_code == 303 and archived.headers["Location"].endswith(cy_page)
    with app.app_context():
        assert (
            messaging.inbox(ava.id, archived=True)[0][0].membership.thread_id == (ids["ben_thread"])
        )
    # The same list under another mount point links within it.
    browser.get(cy_page)
    served = used(app)
    browser.get(cy_page)
    assert used(app) == served + 1  # kept at the root
    mounted = soup(browser.get(cy_page, base_url="http://localhost/linkmsg/"))
    links = [a["href"] for a in mounted.select("a.thread-link")]
    assert links and all(href.startswith("/linkmsg/messaging/t/") for href in links), links
    # Another member never gets Ava's kept list, whatever the page.
    other = Browser(app)
    other.login(ben)
    theirs = soup(other.get(ben_page))
    assert theirs.find(id=f"thread-row-{ids['cy_thread']}") is None
    assert theirs.find(id=f"thread-row-{ids['group']}") is not None


def test_a_suspended_member_gets_no_kept_list(app, team):
    browser, ava, ben, cy, dee, ids = team
    browser.get("/messaging")
    browser.get("/messaging")
    with app.app_context():
        moderator = make_member("Mo Moderator")
        db.session.get(Member, moderator.id).role = "admin"
        db.session.add(Report(reporter_id=ben.id, member_id=ava.id, reason="spam"))
        db.session.commit()
        report = db.session.scalar(db.select(Report).where(Report.member_id == ava.id))
        reports.resolve(moderator.id, report.id, "suspend")
    response = browser.get("/messaging")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
    assert "Launch team" not in response.get_data(as_text=True)


@pytest.mark.races
def test_lists_kept_while_the_list_changes_under_them_are_the_lists_of_their_state(
    app, team, database_url
):
    """Pages and changes overlap: a thread archived and moved back again and again while
    the list is read. Rows are kept under the state read with them, so whichever state
    comes back finds its own list."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer, so requests cannot overlap there")
    browser, ava, ben, cy, dee, ids = team
    stop = threading.Event()
    failures = []

    def toggle():
        try:
            with app.app_context():
                flag = True
                while not stop.is_set():
                    organise.set_archived(ava.id, ids["cy_thread"], flag)
                    flag = not flag
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)

    worker = threading.Thread(target=toggle)
    worker.start()
    try:
        for _ in range(150):
            assert browser.get("/messaging").status_code == 200
    finally:
        stop.set()
        worker.join()
    assert not failures, failures
    # What each state's page shows now (kept during the race, if it was), then what it
    # should show (each rendered from scratch).
    shown = {}
    for archived in (True, False):
        with app.app_context():
            organise.set_archived(ava.id, ids["cy_thread"], archived)
        shown[archived] = pane(browser.get("/messaging"))
    for archived in (True, False):
        with app.app_context():
            organise.set_archived(ava.id, ids["cy_thread"], archived)
        assert shown[archived] == fresh(app, browser, "/messaging"), archived
        assert (f'id="thread-row-{ids["cy_thread"]}"' in shown[archived]) is not archived


def test_a_change_committed_between_the_state_and_the_rows_is_kept_under_its_own_state(
    app, team, database_url
):
    """The page reads the list's state with the member, then the rows: a change another
    connection commits in between (made to happen there) must not leave the new rows
    kept under the old state, where the old state coming back would find them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer: nothing commits inside a request")
    browser, ava, ben, cy, dee, ids = team
    archive_cy = sa.text(
        "UPDATE thread_member SET archived = :archived"
        " WHERE thread_id = :thread AND member_id = :member"
    )
    params = {"thread": ids["cy_thread"], "member": ava.id}
    with app.app_context():
        engine = db.engine
    done = []

    def between(conn, cursor, statement, parameters, context, executemany):
        if not done and "face_epoch" in statement and "last_message AS" not in statement:
            done.append(statement)  # the session loader's, with the list's state
            with engine.begin() as other:
                other.execute(archive_cy, params | {"archived": True})

    browser.get("/messaging")  # (the first page after logging in writes the member's activity)
    with app.app_context():
        list_pane.store().clear()  # nothing kept: the page reads its rows
    sa.event.listen(engine, "after_cursor_execute", between)
    try:
        overlapped = pane(browser.get("/messaging"))  # state: Cy's thread in the list
    finally:
        sa.event.remove(engine, "after_cursor_execute", between)
    assert done, "the change was made between the two reads"
    assert f'id="thread-row-{ids["cy_thread"]}"' not in overlapped  # the rows read after
    with engine.begin() as other:
        other.execute(archive_cy, params | {"archived": False})  # the first state again
    again = pane(browser.get("/messaging"))
    assert f'id="thread-row-{ids["cy_thread"]}"' in again
    assert again == fresh(app, browser, "/messaging")


@pytest.fixture
def few_state_rows(monkeypatch):
    """`list_state` reads at most 2 rows of a kind (2,000 in the app): the statements
    that read it are built again with that, and again after the test."""

    def rebuild():
        templating._PAGE_QUERIES.clear()
        messaging._inbox_query.cache_clear()

    monkeypatch.setattr(messaging, "LIST_STATE_ROWS", 2)
    rebuild()
    yield
    monkeypatch.undo()
    rebuild()


def test_a_member_with_more_threads_than_the_state_reads_gets_the_list_read_each_time(
    app, team, few_state_rows
):
    """Ava has three threads, more than the state may read: her list has no state, is
    never kept, and every page reads it (and shows what changed). Dee, with one, gets
    hers kept."""
    browser, ava, ben, cy, dee, ids = team
    browser.get("/messaging")
    for _ in range(2):
        served = used(app)
        with counted(app) as seen:
            before = pane(browser.get("/messaging"))
        assert used(app) == served and [s for s in seen if LIST_ROWS in s]
    with app.app_context():
        organise.set_archived(ava.id, ids["cy_thread"], True)
    after = pane(browser.get("/messaging"))
    assert after != before and f'id="thread-row-{ids["cy_thread"]}"' not in after

    with app.app_context():
        messaging.start(db.session.get(Member, dee.id), db.session.get(Member, ava.id), "Hi")
    theirs = Browser(app)
    theirs.login(dee)  # one thread
    theirs.get("/messaging")
    served = used(app)
    theirs.get("/messaging")
    assert used(app) == served + 1


def test_text_a_member_wrote_never_reads_as_a_marker(app, team, database_url):
    """A NUL in any value of a request is refused (a field given twice, a JSON body);
    and text holding one that got into the database some other way (SQLite keeps it)
    stays text in a kept list: markers carry a secret of the process."""
    browser, ava, ben, cy, dee, ids = team
    url = f"/messaging/t/{ids['ben_thread']}"
    theirs = Browser(app)
    theirs.login(ben)
    token = theirs.token()
    headers = {"X-CSRFToken": token}
    for sent in (
        theirs.client.post(url, data={"body": ["fine", "a\x00b"], "csrf_token": token}),
        theirs.client.post(url, json={"body": "look \x00here\x00"}, headers=headers),
        theirs.client.post(url, json={"body": "ok", "x": ["\x00"]}, headers=headers),
    ):
        assert sent.status_code == 400
    with app.app_context():
        bodies = [m.body for m in messaging.messages(ids["ben_thread"]).messages]
    assert not any("\x00" in body for body in bodies), bodies
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL refuses NUL in text outright
    old_marker = "\x00list:csrf\x00"
    with app.app_context():
        messaging.reply(db.session.get(Member, ben.id), ids["ben_thread"], f"see {old_marker}")
    browser.get("/messaging")
    page = browser.get("/messaging")  # kept
    mine = page_token(soup(page))
    row = soup(page).find(id=f"thread-row-{ids['ben_thread']}")
    preview = row.find(attrs={"data-testid": "thread-preview"})
    assert "see" in preview.get_text() and "list:csrf" in str(preview)
    assert mine.split(".")[0] not in str(preview)


def test_a_kept_lists_times_are_trusted_until_the_first_of_them_turns():
    """`timeago_turns` says when a time shown as "5m ago" next reads otherwise: up to
    that moment it reads as it does now, and at it, otherwise (a date never turns). A
    kept list is used until the first of its rows' times turns."""
    rng = random.Random(20)
    now = datetime(2026, 12, 2, 12, 0, 0)
    ages = [0, 1, 59, 60, 61, 3599, 3600, 3601, 86399, 86400, 7 * 86400 - 1, 7 * 86400]
    ages += [rng.uniform(-30, 9 * 86400) for _ in range(2000)]
    tick = timedelta(microseconds=1)
    for age in ages:
        moment = now - timedelta(seconds=age)
        shown = templating.timeago(moment, now)
        turns = templating.timeago_turns(moment, now)
        if turns == datetime.max:
            assert (
                age >= 7 * 86400 and templating.timeago(moment, now + timedelta(days=400)) == shown
            )
            continue
        assert turns > now
        assert templating.timeago(moment, turns - tick) == shown, (age, shown)
        assert templating.timeago(moment, turns) != shown, (age, shown)
