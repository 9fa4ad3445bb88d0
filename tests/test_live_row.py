"""A group message's live thread row is, for each member, the row their own inbox page
renders for that thread: the live pieces are rendered together in the sender's request
(with URLs built once for all of them), and must not differ from the page in any member's
unread count, muted state, labels or the "You:" of the sender. The only difference allowed
is the CSRF token field, left empty in a live piece (htmx sends the page's own token)."""

from bs4 import BeautifulSoup
from flask import g

from linkmsg import live
from linkmsg.extensions import db
from linkmsg.models import Event, Member
from linkmsg.services import events, messaging, organise

from .factories import Browser, launch_team


def live_rows(app, sender_id: int, thread_id: int, body: str) -> dict[int, BeautifulSoup]:
    """Send `body` and render its events as the sender's request publishes them: the
    thread row of each member's event (the row itself, not the swap removing its old
    place), by member id."""
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        message_id = messaging.reply(db.session.get(Member, sender_id), thread_id, body).message.id
        g.pop("linkmsg_events", None)  # rendered here instead of published
        rows = db.session.scalars(
            db.select(Event).where(Event.kind == events.MESSAGE).order_by(Event.id)
        ).all()
        rows = [row for row in rows if row.payload["message_id"] == message_id]
        assert len(rows) >= 3
        with live.batch(rows):
            html = {row.member_id: live.render(row) for row in rows}
    return {
        member_id: BeautifulSoup(text, "html.parser").find(
            "li", id=f"thread-row-{thread_id}", class_="thread-row"
        )
        for member_id, text in html.items()
    }


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
