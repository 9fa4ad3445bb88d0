"""Statements per page (issue 20): each main page asks the database at most its budget,
counted on the engine (SQLAlchemy's `before_cursor_execute`) for one steady-state request,
on SQLite and PostgreSQL. A deterministic regression test, not a timing: a page that
gains a query per row, or a lookup asked twice, fails here with the statements listed.

The member's world is rich enough that a query per row or per kind would show: several
one-to-one threads, an InMail, a group, labels on threads, an attachment, unread messages,
a long thread with older pages, and a 2nd-degree profile to look at.
"""

from __future__ import annotations

import io

import pytest

from linkmsg import list_pane
from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import attachments, billing, inmail, messaging, organise
from linkmsg.statements import counted

from .factories import Browser, connect, make_member, soup
from .files import image

BUDGETS = {
    "inbox": 4,
    "thread": 3,  # (issue 20 asks 4; an ordinary thread's newest messages come with its view)
    "older": 3,
    "profile": 2,  # (issue 20 asks 4; a view recorded today is read with the member)
    "group thread": 5,
    "search": 3,  # the members with their invitations, their degrees
}


@pytest.fixture
def world(app):
    """Ava's Messaging: (browser logged in as Ava, urls by page name)."""
    with app.app_context():
        ava, ben, cy, dee, eve, fay = (
            make_member(name)
            for name in ("Ava Ames", "Ben Bell", "Cy Cole", "Dee Diaz", "Eve Egan", "Fay Ford")
        )
        for other in (ben, cy, dee, eve):
            connect(ava, other)
        connect(ben, fay)  # Fay is 2nd degree to Ava
        get = lambda ref: db.session.get(Member, ref.id)  # noqa: E731
        long = messaging.start(get(ava), get(ben), "The long one").thread_id
        for n in range(75):
            messaging.reply(get(ben if n % 2 else ava), long, f"Message {n}")
        messaging.reply(
            get(ben),
            long,
            "With a picture",
            uploads=[attachments.Upload("chart.png", io.BytesIO(image("PNG")))],
        )
        for other in (cy, dee, eve):
            sent = messaging.start(get(other), get(ava), f"Hello from {other.name}")
            messaging.reply(get(other), sent.thread_id, "Are you there?")
        group = messaging.start_group(get(ava), [ben.id, cy.id, dee.id], "Launch", "Kick-off")
        messaging.reply(get(cy), group.thread_id, "Count me in")
        messaging.reply(get(ben), group.thread_id, "Me too")
        billing.start_premium(fay.id)
        inmail.send(get(fay), get(ava), "A role", "Would you talk about a role?")
        work = organise.create_label(ava.id, "Work")
        organise.create_label(ava.id, "Later")
        organise.set_thread_labels(ava.id, long, [work.id])
        organise.set_thread_labels(ava.id, group.thread_id, [work.id])
        fay_handle = get(fay).handle
    browser = Browser(app)
    browser.login(ava)
    thread = f"/messaging/t/{long}"
    older_link = soup(browser.get(thread)).find(attrs={"data-testid": "load-older"})
    assert older_link is not None, "the long thread has older pages"
    urls = {
        "inbox": "/messaging",
        "thread": thread,
        "older": older_link["href"],
        "profile": f"/in/{fay_handle}",
        "group thread": f"/messaging/t/{group.thread_id}",
        "search": "/search?q=e",
    }
    # Each page once first: the first view of a thread marks it read, of a profile
    # records the view; the budget is the steady state a member sees on the next visit.
    for name, url in urls.items():
        browser.get(url, htmx=name == "older")
    return browser, urls


# Pages beside the Messaging list: with the list kept (linkmsg/list_pane.py) they ask
# one statement fewer; the budget holds without it.
LIST_PAGES = {"inbox", "thread", "group thread"}


def test_main_pages_keep_to_their_statement_budgets(app, world):
    """Every page is counted, with its Messaging list read and then kept, and every
    overrun reported at once with its statements."""
    browser, urls = world
    over = []
    for page, budget, kept in [
        (name, most - kept, kept)
        for name, most in BUDGETS.items()
        for kept in ((False, True) if name in LIST_PAGES else (False,))
    ]:
        htmx = page == "older"  # "Load older messages" is an htmx swap
        if not kept:
            with app.app_context():
                list_pane.store().clear()
        with counted(app) as seen:
            response = browser.get(urls[page], htmx=htmx)
        assert response.status_code == 200, page
        html = soup(response)
        if page == "profile":
            assert "2nd" in html.get_text()
        elif page == "search":
            assert len(html.find_all(attrs={"data-testid": "member-row"})) >= 4
        elif page == "older":
            assert html.find(attrs={"data-testid": "message"}) is not None
        else:
            assert html.find(attrs={"data-testid": "thread-row"}) is not None
        if len(seen) > budget:
            listing = "\n".join(f"  {n + 1}. {s[:200]}" for n, s in enumerate(seen))
            over.append(
                f"{page}{' (list kept)' if kept else ''} ({urls[page]}): {len(seen)}"
                f" statements, budget {budget}:\n{listing}"
            )
    assert not over, "\n".join(over)


def test_page_statements_are_short_enough_for_psycopg_to_keep_converted(app, world):
    """psycopg turns a statement's named placeholders into PostgreSQL's numbered ones and
    keeps the result only for statements of at most 4,096 bytes and 50 parameters: a
    longer one is converted again on every execution (0.13 ms a page for the session
    loader's 5,045 characters, before its list state was spelled with ROW). Every main
    page's statements stay within both when the page is seen again (its Messaging list
    kept). The list's own statement, read when the list changed, is longer (7,481 bytes)
    and left so: it is not on every page."""
    from psycopg import _queries
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg's conversion: PostgreSQL only")
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        browser, urls = world
        for page, url in urls.items():
            assert browser.get(url, htmx=page == "older").status_code == 200, page
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert any("list_state" in statement for statement, _ in seen), "the list's state was read"
    too_long = [
        f"{len(statement.encode())} bytes, {len(parameters)} parameters:"
        f" {' '.join(statement.split())[:150]}"
        for statement, parameters in seen
        if len(statement.encode()) > _queries.MAX_CACHED_STATEMENT_LENGTH
        or len(parameters) > _queries.MAX_CACHED_STATEMENT_PARAMS
    ]
    assert not too_long, "\n".join(too_long)
