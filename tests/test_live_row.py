"""A group message's live thread row is, for each member, the row their own inbox page
renders for that thread: the live pieces are rendered together in the sender's request
(with URLs built once for all of them), and must not differ from the page in any member's
unread count, muted state, labels or the "You:" of the sender. The only difference allowed
is the CSRF token field, left empty in a live piece (htmx sends the page's own token)."""

from bs4 import BeautifulSoup
from flask import g

from linkmsg import live
from linkmsg.extensions import db
from linkmsg.models import Event, Member, Message
from linkmsg.services import events, groups, messaging, organise

from .factories import Browser, launch_team


def live_rows(app, sender_id: int, thread_id: int, body: str) -> dict[int, BeautifulSoup]:
    """Send `body` and render its events as the sender's request publishes them: the
    thread row of each member's event (the row itself, not the swap removing its old
    place), by member id."""
    return rows_after(
        app, thread_id, lambda: messaging.reply(db.session.get(Member, sender_id), thread_id, body)
    )


def rows_after(app, thread_id: int, act) -> dict[int, BeautifulSoup]:
    """Do `act()` (which adds a message to the thread) in a request and render its
    events together, as that request publishes them: each member's thread row."""
    return {
        member_id: BeautifulSoup(text, "html.parser").find(
            "li", id=f"thread-row-{thread_id}", class_="thread-row"
        )
        for member_id, text in events_after(app, thread_id, act).items()
    }


def events_after(app, thread_id: int, act, together: bool = True) -> dict[int, str]:
    """Do `act()` in a request and render the events of the message it adds: together
    (as the request publishes them) or each on its own, by member id."""
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        act()
        message_id = db.session.scalar(
            db.select(db.func.max(Message.id)).where(Message.thread_id == thread_id)
        )
        g.pop("linkmsg_events", None)  # rendered here instead of published
        rows = db.session.scalars(
            db.select(Event).where(Event.kind == events.MESSAGE).order_by(Event.id)
        ).all()
        rows = [row for row in rows if row.payload["message_id"] == message_id]
        assert len(rows) >= 3
        if not together:
            return {row.member_id: live.render(row) for row in rows}
        with live.batch(rows):
            return {row.member_id: live.render(row) for row in rows}


def page_row(app, member, thread_id: int):
    page = Browser(app)
    page.login(member)
    response = page.get("/messaging")
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "html.parser").find(
        id=f"thread-row-{thread_id}"
    )


def comparable(row) -> str:
    assert row is not None
    for field in row.find_all("input", attrs={"name": "csrf_token"}):
        field["value"] = ""
    return row.prettify()


def test_each_members_live_row_is_the_row_of_their_inbox_page(app):
    with app.app_context():
        ava, ben, cy, _, thread_id = launch_team()
        organise.set_muted(cy.id, thread_id, True)
        label = organise.create_label(ben.id, "Work")
        organise.set_thread_labels(ben.id, thread_id, [label.id])
        messaging.reply(db.session.get(Member, cy.id), thread_id, "Earlier, unread for Ben")
    rows = live_rows(app, ava.id, thread_id, "Ship it Friday? " + "long " * 40)
    for member in (ava, ben, cy):
        assert comparable(rows[member.id]) == comparable(page_row(app, member, thread_id)), (
            member.name
        )
    # What differs between them is there: the sender's "You:", Ben's label, Cy's mute.
    assert "You: Ship it" in rows[ava.id].get_text()
    assert rows[ben.id].find(attrs={"data-testid": "thread-label"}).get_text() == "Work"
    assert rows[cy.id]["data-muted"] == "1"
    assert rows[ava.id]["data-unread"] == "0" and rows[ben.id]["data-unread"] != "0"


def unnamed_group(app):
    """Ava starts an unnamed group with Ben, Cy, Dee, Eve and Fay, who have read it all
    but Eve; Dee muted it. (ava, ben, cy, dee, eve, fay, thread_id)"""
    from .factories import connect, make_member

    with app.app_context():
        ava, ben, cy, dee = (
            make_member(n) for n in ("Ava Ames", "Ben Bell", "Cy Cole", "Dee Diaz")
        )
        eve, fay = make_member("Eve Eng"), make_member("Fay Fox")
        people = (ben, cy, dee, eve, fay)
        for other in people:
            connect(ava, other)
        thread_id = messaging.start_group(
            db.session.get(Member, ava.id), [p.id for p in people], None, "Kick-off"
        ).thread_id
        for reader in (ben, cy, dee, fay):
            messaging.mark_read(reader.id, thread_id, 10**9)
        organise.set_muted(dee.id, thread_id, True)
    return ava, *people, thread_id


def test_each_members_live_event_in_a_batch_is_their_event_rendered_alone(app):
    # Members whose pieces read alike share one render of the event, and members whose
    # counts agree one render of the badges: each member's whole event must still be
    # the one rendered for them alone (their own look-ups, their own render).
    ava, ben, cy, dee, eve, fay, thread_id = unnamed_group(app)
    with app.app_context():
        # Fay has another unread conversation: her badge counts two.
        from .factories import connect, make_member

        gil = make_member("Gil Gray")
        connect(gil, fay)
        messaging.start(db.session.get(Member, gil.id), db.session.get(Member, fay.id), "Coffee?")
    everyone = (ava, ben, cy, dee, eve, fay)

    def say():
        messaging.reply(db.session.get(Member, ava.id), thread_id, "Agenda <b>Thursday</b>")

    def rename():
        groups.rename(db.session.get(Member, ben.id), thread_id, "Offsite")

    for act in (say, rename):
        together = events_after(app, thread_id, act)
        assert set(together) == {m.id for m in everyone}, act.__name__
        # Rendered alone after the fact: the same state, each member's own look-ups.
        alone = events_after(app, thread_id, lambda: None, together=False)
        for member in everyone:
            assert together[member.id] == alone[member.id], (act.__name__, member.name)
    badge = lambda html: BeautifulSoup(html, "html.parser").find(  # noqa: E731
        attrs={"data-testid": "unread-badge"}
    )
    # Their counts differ: Fay's other conversation counts; Ava sent the last message.
    assert badge(alone[fay.id]).get_text() == "2" and badge(alone[eve.id]).get_text() == "1"
    assert badge(alone[ava.id]).get_text() == "1"
    # The rename is a system line that names its reader.
    assert "You renamed" in alone[ben.id] and "Ben Bell renamed" in alone[cy.id]


def test_live_rows_of_an_unnamed_group_with_rows_alike_are_each_members_own(app):
    # An unnamed group is named after its first members but the reader ("Ben Bell, Cy
    # Cole and 3 others"), read once for all the rows of a live event; members whose
    # rows read alike share one render. Each must still be their own page's row: the
    # first names leave out the reader, a muted row stays muted, a reader who
    # read nothing counts everything. Eve alone has not read the kick-off. Dee, Eve and
    # Fay see the same name: their rows differ only in Dee's mute and Eve's unread count.
    ava, *people, thread_id = unnamed_group(app)
    ben, cy, dee, eve, fay = people
    rows = live_rows(app, ava.id, thread_id, "Agenda for Thursday")
    for member in (ava, *people):
        assert comparable(rows[member.id]) == comparable(page_row(app, member, thread_id)), (
            member.name
        )
    names = {m.id: rows[m.id].find(attrs={"data-testid": "thread-name"}).get_text() for m in people}
    assert names[ben.id] == "Ava Ames, Cy Cole and 3 others"
    assert names[eve.id] == "Ava Ames, Ben Bell and 3 others"
    assert rows[dee.id]["data-muted"] == "1" and rows[fay.id]["data-muted"] == "0"
    assert rows[fay.id]["data-unread"] == "1" and int(rows[eve.id]["data-unread"]) > 1


def test_the_live_row_of_a_member_who_leaves_is_the_row_of_their_own_page(app):
    # The line of someone leaving goes to them too: their row no longer counts them
    # among the current members (the group's first members and their number are read
    # once for all rows, and each owner left out), and the others' rows no longer name
    # or count them.
    from .factories import connect, make_member

    with app.app_context():
        ava, ben, *others = (
            make_member(n)
            for n in ("Ava Ames", "Ben Bell", "Cy Cole", "Dee Diaz", "Eve Eng", "Fay Fox")
        )
        for other in (ben, *others):
            connect(ava, other)
        thread_id = messaging.start_group(
            db.session.get(Member, ava.id), [ben.id, *(o.id for o in others)], None, "Kick-off"
        ).thread_id
    rows = rows_after(
        app, thread_id, lambda: groups.leave(db.session.get(Member, ben.id), thread_id)
    )
    assert ben.id in rows, "the leaver's own event"
    for member in (ava, ben, *others):
        assert comparable(rows[member.id]) == comparable(page_row(app, member, thread_id)), (
            member.name
        )
    name = lambda m: rows[m.id].find(attrs={"data-testid": "thread-name"}).get_text()  # noqa: E731
    assert name(ben) == "Ava Ames, Cy Cole and 3 others"
    assert name(others[0]) == "Ava Ames, Dee Diaz and 2 others"


def test_a_batch_with_two_groups_gives_each_event_its_own_groups_row(app):
    # One commit can carry messages to two groups with the same members (a job, or a
    # request that posts twice): each event's row is its own group's, not the first one's.
    ava, *people, first = unnamed_group(app)
    with app.app_context():
        second = messaging.start_group(
            db.session.get(Member, ava.id), [p.id for p in people], "Offsite", "Hello"
        ).thread_id
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        sender = db.session.get(Member, ava.id)
        newest = [
            messaging.reply(sender, thread, f"To {thread}").message.id for thread in (first, second)
        ]
        g.pop("linkmsg_events", None)  # rendered here instead of published
        rows = [
            row
            for row in db.session.scalars(db.select(Event).order_by(Event.id))
            if row.kind == events.MESSAGE and row.payload["message_id"] in newest
        ]
        assert len(rows) == 2 * (1 + len(people))
        with live.batch(rows):
            together = [live.render(row) for row in rows]
        alone = [live.render(row) for row in rows]
    for row, batched, own in zip(rows, together, alone, strict=True):
        assert batched == own, (row.member_id, row.payload["thread_id"])
    assert 'data-testid="thread-name">Offsite<' in together[-1].replace("\n", "")
