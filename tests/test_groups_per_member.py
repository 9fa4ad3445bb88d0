"""Group conversations per member, on SQLite and PostgreSQL: reporting a message,
attachments, export, and organising one's own side (mute, archive, labels, mark
unread, the badge) — each member sees only what their spans cover."""

import io
import json
import zipfile

import pytest

from linkmsg.extensions import db
from linkmsg.models import Attachment, Member, Report
from linkmsg.services import attachments, blocking, groups, messaging, organise, outbox

from . import files
from .factories import Browser, by_testid, launch_team, make_member, texts


@pytest.fixture
def crew(app):
    """Ava, connected to Ben, Cy and Dee, started "Launch team" with Ben and Cy."""
    with app.app_context():
        return launch_team()


def say(app, sender, thread_id, body, uploads=()):
    """Send in the group; returns the message id."""
    with app.app_context():
        uploads = [attachments.Upload(name, io.BytesIO(data)) for name, data in uploads]
        sent = messaging.reply(db.session.get(Member, sender.id), thread_id, body, uploads=uploads)
        return sent.message.id


def act(app, what, actor, thread_id, *args):
    with app.app_context():
        getattr(groups, what)(db.session.get(Member, actor.id), thread_id, *args)


def system_line_id(app, thread_id, kind):
    from linkmsg.models import Message

    with app.app_context():
        return db.session.scalar(
            db.select(Message.id).where(Message.thread_id == thread_id, Message.kind == kind)
        )


def logged_in(app, member) -> Browser:
    browser = Browser(app)
    browser.login(member)
    return browser


# ---------------------------------------------------------------- report a message


def test_any_member_reports_a_message_they_can_read_and_lands_back_in_it(app, crew):
    ava, ben, cy, _, thread_id = crew
    message_id = say(app, ben, thread_id, "Buy cheap followers now!!!")
    cys = logged_in(app, cy)
    page = cys.get(f"/report/message/{message_id}")
    assert page.status_code == 200
    assert texts(page, "reported-message") == ["Buy cheap followers now!!!"]
    response = cys.post(f"/report/message/{message_id}", {"reason": "spam", "block": "y"})
    assert response.status_code == 303
    # A block hides no group: back in the conversation, at the message.
    assert response.headers["Location"].endswith(f"/messaging/t/{thread_id}#message-{message_id}")
    with app.app_context():
        report = db.session.scalar(db.select(Report))
        assert (report.reporter_id, report.member_id, report.message_id) == (
            cy.id,
            ben.id,
            message_id,
        )
    # Ava reports it too, without blocking.
    response = logged_in(app, ava).post(f"/report/message/{message_id}", {"reason": "spam"})
    assert response.headers["Location"].endswith(f"/messaging/t/{thread_id}#message-{message_id}")


def test_own_messages_system_lines_and_messages_outside_ones_spans_are_404(app, crew):
    ava, ben, cy, dee, thread_id = crew
    own = say(app, cy, thread_id, "My own words")
    before_dee = say(app, ben, thread_id, "Before Dee joined")
    act(app, "add", ava, thread_id, [dee.id])
    act(app, "leave", cy, thread_id)
    after_cy = say(app, ben, thread_id, "After Cy left")
    line = system_line_id(app, thread_id, "added")
    cys, dees = logged_in(app, cy), logged_in(app, dee)
    for browser, message_id in (
        (cys, own),  # one's own
        (cys, line),  # a system line
        (cys, after_cy),  # sent after Cy left
        (dees, before_dee),  # sent before Dee joined
    ):
        assert browser.get(f"/report/message/{message_id}").status_code == 404
        assert browser.post(f"/report/message/{message_id}", {"reason": "spam"}).status_code == 404
    # What each may read of another member's stays reportable, even after leaving.
    assert cys.get(f"/report/message/{before_dee}").status_code == 200
    assert dees.get(f"/report/message/{after_cy}").status_code == 200
    outsider = make_outsider(app)
    assert outsider.get(f"/report/message/{after_cy}").status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Report)) == 0


def make_outsider(app) -> Browser:
    with app.app_context():
        eve = make_member("Eve Out")
    return logged_in(app, eve)


# ---------------------------------------------------------------- attachments


def test_files_sent_after_a_member_left_or_before_they_joined_are_404(app, crew):
    ava, ben, cy, dee, thread_id = crew
    picture = [("photo.png", files.image("PNG"))]
    say(app, ben, thread_id, "Before", uploads=picture)
    act(app, "add", ava, thread_id, [dee.id])
    act(app, "leave", cy, thread_id)
    say(app, ben, thread_id, "After", uploads=[("later.png", files.image("PNG"))])
    with app.app_context():
        ids = {a.name: a.id for a in db.session.scalars(db.select(Attachment))}
    expected = {
        ava: {"photo.png": 200, "later.png": 200},
        cy: {"photo.png": 200, "later.png": 404},  # left in between
        dee: {"photo.png": 404, "later.png": 200},  # joined in between
    }
    for member, answers in expected.items():
        browser = logged_in(app, member)
        for name, status in answers.items():
            for path in (
                f"/messaging/files/{ids[name]}",
                f"/messaging/files/{ids[name]}/thumbnail",
            ):
                response = browser.get(path)
                assert response.status_code == status, (member.name, path)
                response.close()
    outsider = make_outsider(app)
    assert outsider.get(f"/messaging/files/{ids['photo.png']}").status_code == 404


# ---------------------------------------------------------------- export


def export(app, member, thread_id):
    response = logged_in(app, member).get(f"/messaging/t/{thread_id}/export", buffered=True)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    return response, archive, json.loads(archive.read("conversation.json"))


def test_a_groups_export_holds_only_what_the_member_may_read(app, crew):
    ava, ben, cy, dee, thread_id = crew
    say(app, ben, thread_id, "Before Dee", uploads=[("early.pdf", files.pdf())])
    act(app, "add", ava, thread_id, [dee.id])
    act(app, "leave", cy, thread_id)
    later = files.image("PNG")
    say(app, ben, thread_id, "After Cy left", uploads=[("later.png", later)])
    act(app, "rename", ava, thread_id, "Launch / team: Q3 <final>")

    response, archive, document = export(app, cy, thread_id)
    disposition = response.headers["Content-Disposition"]
    assert "linkmsg-group-Launch-team-Q3-final.zip" in disposition
    text = archive.read("conversation.txt").decode()
    assert "Before Dee" in text and "Ava Ames added Dee Diaz" in text and "Cy Cole left" in text
    assert "After Cy left" not in text and "Q3" not in text.split("\n", 1)[1]
    assert "later.png" not in " ".join(archive.namelist())
    assert [n for n in archive.namelist() if n.startswith("attachments/")] == [
        next(a["path"] for m in document["messages"] for a in m.get("attachments", []))
    ]
    lines = [m["line"] for m in document["messages"] if "line" in m]
    assert lines == [
        "Ava Ames started the group “Launch team”",
        "Ava Ames added Dee Diaz",
        "Cy Cole left",
    ]

    _, archive, document = export(app, dee, thread_id)
    bodies = [m.get("body") for m in document["messages"] if "body" in m]
    assert bodies == ["After Cy left"]  # nothing from before Dee joined
    assert archive.read(document["messages"][-2]["attachments"][0]["path"]) == later
    assert "early.pdf" not in " ".join(archive.namelist())
    assert (
        document["messages"][-1]["line"] == "Ava Ames renamed the group “Launch / team: Q3 <final>”"
    )
    assert {m["handle"] for m in document["thread"]["members"]} == {
        ava.handle,
        ben.handle,
        dee.handle,
    }

    outsider = make_outsider(app)
    assert outsider.get(f"/messaging/t/{thread_id}/export").status_code == 404


def test_an_export_shows_a_blocked_members_messages_collapsed(app, crew):
    ava, ben, cy, _, thread_id = crew
    with app.app_context():
        blocking.block(cy.id, ben.id)
    say(app, ben, thread_id, "Hidden from Cy", uploads=[("secret.pdf", files.pdf())])
    response, archive, document = export(app, cy, thread_id)
    assert "linkmsg-group-Launch-team.zip" in response.headers["Content-Disposition"]
    text = archive.read("conversation.txt").decode()
    assert "Hidden from Cy" not in text and "A message from someone you blocked" in text
    assert not [n for n in archive.namelist() if n.startswith("attachments/")]
    _, archive, document = export(app, ava, thread_id)
    assert "Hidden from Cy" in archive.read("conversation.txt").decode()


def test_an_unnamed_groups_export_is_named_after_its_members(app, crew):
    ava, ben, cy, _, thread_id = crew
    act(app, "rename", ava, thread_id, "")
    response, _, _ = export(app, ben, thread_id)
    assert "linkmsg-group-Ava-Ames-and-Cy-Cole.zip" in response.headers["Content-Disposition"]
    act(app, "rename", ava, thread_id, "Équipe  ../../etc 🚀")
    response, _, _ = export(app, ben, thread_id)
    assert "linkmsg-group-Equipe-etc.zip" in response.headers["Content-Disposition"]
    act(app, "rename", ava, thread_id, "🚀🚀")
    response, _, _ = export(app, ben, thread_id)
    assert "linkmsg-group-conversation.zip" in response.headers["Content-Disposition"]


# ---------------------------------------------------------------- organising, per member


def test_mute_archive_labels_and_unread_are_each_members_own(app, crew):
    ava, ben, cy, _, thread_id = crew
    with app.app_context():
        # Ben has blocked someone else: his groups must not vanish from his lists.
        eve = make_member("Eve Else")
        blocking.block(ben.id, eve.id)
        assert messaging.unread_thread_count(ben.id) == 1
        assert messaging.unread_thread_count(cy.id) == 1
        assert messaging.unread_thread_count(ava.id) == 0

        organise.set_muted(ben.id, thread_id, True)
        assert messaging.unread_thread_count(ben.id) == 0  # muted: off the badge
        assert messaging.unread_thread_count(cy.id) == 1

        organise.set_archived(ben.id, thread_id, True)
        assert organise.archived_count(ben.id) == 1
        archived, _ = messaging.inbox(ben.id, archived=True)
        assert [r.membership.thread_id for r in archived] == [thread_id]
        assert messaging.inbox(ben.id)[0] == []
        assert [r.membership.thread_id for r in messaging.inbox(cy.id)[0]] == [thread_id]

        label = organise.create_label(ben.id, "Projects")
        organise.set_thread_labels(ben.id, thread_id, [label.id])
        labelled, _ = messaging.inbox(ben.id, label_id=label.id)
        assert [r.membership.thread_id for r in labelled] == [thread_id]
        assert messaging.inbox_row(cy.id, thread_id).labels == ()
    # A new message brings the thread back for Ben, still muted (no email), still labelled.
    say(app, ava, thread_id, "Back again")
    with app.app_context():
        row = messaging.inbox_row(ben.id, thread_id)
        assert not row.membership.archived and row.membership.muted
        assert [label.name for label in row.labels] == ["Projects"]
        owed = db.session.scalars(
            db.select(outbox.Outbox).where(outbox.Outbox.member_id == ben.id)
        ).all()
        assert {outbox.decide(o).reason for o in owed} == {"muted"}

        messaging.mark_read(cy.id, thread_id, row.last.id)
        assert messaging.unread_thread_count(cy.id) == 0
        organise.mark_unread(cy.id, thread_id)
        assert messaging.unread_thread_count(cy.id) == 1
        assert messaging.inbox_row(cy.id, thread_id).unread == 1
        assert messaging.inbox_row(ava.id, thread_id).unread == 0


def test_a_former_member_marks_unread_only_what_they_saw(app, crew):
    ava, ben, cy, _, thread_id = crew
    say(app, ben, thread_id, "While Cy is here")
    act(app, "leave", cy, thread_id)
    for body in ("after one", "after two"):
        say(app, ben, thread_id, body)
    with app.app_context():
        assert messaging.unread_thread_count(cy.id) == 0  # leaving read everything
        organise.mark_unread(cy.id, thread_id)
        row = messaging.inbox_row(cy.id, thread_id)
        assert row.unread == 1 and row.last.kind == "left"
        assert messaging.unread_thread_count(cy.id) == 1
        # Ben, still in it, has the later messages as his own; Ava has them unread.
        assert messaging.inbox_row(ava.id, thread_id).unread == 4


def test_the_badge_leaves_out_a_blocked_members_messages(app, crew):
    ava, ben, cy, _, thread_id = crew
    with app.app_context():
        messaging.mark_read(cy.id, thread_id, messaging.inbox_row(cy.id, thread_id).last.id)
        blocking.block(cy.id, ben.id)
    say(app, ben, thread_id, "Cy blocked me")
    with app.app_context():
        assert messaging.unread_thread_count(cy.id) == 0
        assert messaging.unread_thread_count(ava.id) == 1
    cys = logged_in(app, cy)
    assert not [
        b for b in by_testid(cys.get("/messaging"), "unread-badge") if b.get_text(strip=True)
    ]
