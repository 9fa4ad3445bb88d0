"""The Messaging list is one statement (issue 20), on SQLite and PostgreSQL: whatever the
number and kinds of its rows — one-to-one, InMail, a group named after its members with
stacked avatars, labels, a blocked member's message, files alone, unread counts — under
every filter and page, and for one thread's row for many members at once (live events).
Each row still shows exactly what the owner may see."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from linkmsg.extensions import db
from linkmsg.models import Label, Member, ThreadLabel, ThreadMember
from linkmsg.services import (
    attachments,
    billing,
    blocking,
    groups,
    inmail,
    messaging,
    organise,
)
from linkmsg.sql import json_rows

from .factories import Browser, by_testid, connect, make_member, texts
from .files import image
from .test_statement_budget import counted


def get(ref) -> Member:
    return db.session.get(Member, ref.id)


@pytest.fixture
def world(app):
    """Ava's list: Ben wrote twice (labels Work and Alpha), Ava sent Cy two files alone
    (then archived it), a group of six without a name whose last message is from Fay,
    whom Ava blocked, and an InMail from Gus."""
    with app.app_context():
        ava, ben, cy, dee, eve, fay, gus = (
            make_member(name)
            for name in (
                "Ava Ames",
                "Ben Bell",
                "Cy Cole",
                "Dee Diaz",
                "Eve Egan",
                "Fay Ford",
                "Gus Gray",
            )
        )
        for other in (ben, cy, dee, eve, fay):
            connect(ava, other)
        ben_thread = messaging.start(get(ben), get(ava), "First").thread_id
        messaging.reply(get(ben), ben_thread, "Second")
        work = organise.create_label(ava.id, "Work")
        alpha = organise.create_label(ava.id, "Alpha")
        organise.set_thread_labels(ava.id, ben_thread, [work.id, alpha.id])
        files = [attachments.Upload(f"p{n}.png", io.BytesIO(image("PNG"))) for n in (1, 2)]
        cy_thread = messaging.start(get(ava), get(cy), "", uploads=files).thread_id
        organise.set_archived(ava.id, cy_thread, True)
        group = messaging.start_group(
            get(ava), [ben.id, cy.id, dee.id, eve.id, fay.id], None, "Kick-off"
        ).thread_id
        blocking.block(ava.id, fay.id)
        messaging.reply(get(fay), group, "From Fay")
        billing.start_premium(gus.id)
        inmail.send(get(gus), get(ava), "A role", "Would you talk?")
        inmail_thread = messaging.inbox(ava.id, inmail_only=True)[0][0].membership.thread_id
        people = {m.name.split()[0].lower(): m for m in (ava, ben, cy, dee, eve, fay, gus)}
        threads = {"ben": ben_thread, "cy": cy_thread, "group": group, "inmail": inmail_thread}
        return people, threads, {"work": work.id, "alpha": alpha.id}


def one_statement(app, call):
    """What `call` returns, asserting it asked the database exactly once."""
    with counted(app) as seen:
        result = call()
    assert len(seen) == 1, "\n".join(seen)
    return result


def test_every_filter_and_page_of_the_list_is_one_statement(app, world):
    people, threads, labels = world
    ava = people["ava"].id
    with app.app_context():
        rows, cursor = one_statement(app, lambda: messaging.inbox(ava))
        assert cursor is None
        by_thread = {row.membership.thread_id: row for row in rows}
        assert list(by_thread) == [threads["inmail"], threads["group"], threads["ben"]]

        group = by_thread[threads["group"]]
        assert group.is_group and group.other is None
        assert group.group.name == "Ben Bell, Cy Cole and 3 others"
        assert [m.name for m in group.group.members] == ["Ben Bell", "Cy Cole", "Dee Diaz"]
        assert group.group.collapsed  # Fay's message, and Ava blocked Fay
        assert group.group.last_sender.name == "Fay Ford"
        assert group.unread == 0  # a blocked member's message counts as read

        ben = by_thread[threads["ben"]]
        assert ben.other.name == "Ben Bell" and ben.unread == 2
        assert [label.name for label in ben.labels] == ["Alpha", "Work"]
        assert ben.last.body == "Second" and ben.group is None

        assert by_thread[threads["inmail"]].kind == "inmail"

        unread, _ = one_statement(app, lambda: messaging.inbox(ava, unread_only=True))
        assert [row.membership.thread_id for row in unread] == [threads["inmail"], threads["ben"]]
        inmails, _ = one_statement(app, lambda: messaging.inbox(ava, inmail_only=True))
        assert [row.membership.thread_id for row in inmails] == [threads["inmail"]]
        archived, _ = one_statement(app, lambda: messaging.inbox(ava, archived=True))
        [files] = archived
        assert files.membership.thread_id == threads["cy"]
        assert files.last.body == "" and files.last.attachment_count == 2
        labelled, _ = one_statement(app, lambda: messaging.inbox(ava, label_id=labels["alpha"]))
        assert [row.membership.thread_id for row in labelled] == [threads["ben"]]

        first, cursor = one_statement(app, lambda: messaging.inbox(ava, limit=2))
        rest, end = one_statement(app, lambda: messaging.inbox(ava, limit=2, before=cursor))
        assert [r.membership.thread_id for r in first + rest] == list(by_thread)
        assert end is None


def test_one_threads_row_for_every_member_is_one_statement(app, world):
    people, threads, _ = world
    ids = [people[name].id for name in ("ava", "ben", "cy", "dee", "eve", "fay")]
    with app.app_context():
        rows = one_statement(app, lambda: messaging.inbox_rows_for(threads["group"], ids))
        assert sorted(rows) == sorted(ids)
        # Each row is its owner's: their own name for the group, their own blocks.
        assert rows[people["ava"].id].group.collapsed
        assert not rows[people["ben"].id].group.collapsed
        assert rows[people["ben"].id].group.name == "Ava Ames, Cy Cole and 3 others"
        assert rows[people["fay"].id].unread == 0  # her own message
        assert rows[people["fay"].id].group.members[0].name == "Ava Ames"
        row = one_statement(app, lambda: messaging.inbox_row(people["ava"].id, threads["ben"]))
        assert row.unread == 2


def test_the_page_shows_every_kind_of_row_from_the_one_statement(app, world):
    people, threads, _ = world
    browser = Browser(app)
    browser.login(people["ava"])
    inbox = browser.get("/messaging")
    rows = {int(row["data-thread-id"]): row for row in by_testid(inbox, "thread-row")}
    group = rows[threads["group"]]
    assert group.select_one('[data-testid="thread-name"]').text == "Ben Bell, Cy Cole and 3 others"
    assert len(group.select('.avatar-stack [data-testid="avatar"]')) == 3
    assert group.select_one('[data-testid="thread-preview"]').text == (
        "A message from someone you blocked"
    )
    ben = rows[threads["ben"]]
    assert [t.text for t in ben.select('[data-testid="thread-label"]')] == ["Alpha", "Work"]
    assert ben["data-unread"] == "2"
    assert rows[threads["inmail"]].select_one('[data-testid="inmail-badge"]') is not None
    archived = browser.get("/messaging?filter=archived")
    assert texts(archived, "thread-preview") == ["You: Sent 2 attachments"]


def test_a_member_reads_in_their_row_only_what_their_spans_cover(app, world):
    """Dee left, then the group went on; Gus-free Eve was added late to another group:
    the row's preview, unread count and members are what each may read now."""
    people, threads, _ = world
    group = threads["group"]
    with app.app_context():
        messaging.mark_read(people["dee"].id, group, 10**9)
        groups.leave(get(people["dee"]), group)
        messaging.reply(get(people["ben"]), group, "After Dee left")
        row = messaging.inbox_row(people["dee"].id, group)
        assert row.last.kind == "left" and row.unread == 0
        assert row.group.line == "You left"
        # The others no longer count her, and she is not among their stacked members.
        assert messaging.inbox_row(people["ava"].id, group).group.name == (
            "Ben Bell, Cy Cole and 2 others"
        )
        small = messaging.start_group(
            get(people["ava"]), [people["ben"].id, people["cy"].id], "Small", "Before Eve"
        ).thread_id
        messaging.reply(get(people["ben"]), small, "Still before Eve")
        groups.add(get(people["ava"]), small, [people["eve"].id])
        messaging.reply(get(people["ben"]), small, "Welcome, Eve")
        eve = messaging.inbox_row(people["eve"].id, small)
        assert eve.group.name == "Small"
        assert eve.unread == 2  # the line adding her and Ben's welcome, nothing before


def test_json_rows_lists_each_rows_own_rows_in_order(app, world):
    """The reusable construct: per outer row, a list of dicts in `order_by`'s order
    (whatever order the database aggregates in), [] for none."""
    people, threads, _ = world
    ava = people["ava"].id
    with app.app_context():
        names = json_rows(
            select(Label.name.label("name"), Label.id.label("id"))
            .join(ThreadLabel, ThreadLabel.label_id == Label.id)
            .where(ThreadLabel.thread_id == ThreadMember.thread_id)
            .correlate(ThreadMember),
            order_by=(Label.name_key.desc(),),
        )
        found = dict(
            db.session.execute(
                select(ThreadMember.thread_id, names).where(ThreadMember.member_id == ava)
            ).all()
        )
        assert [row["name"] for row in found[threads["ben"]]] == ["Work", "Alpha"]
        assert set(found[threads["ben"]][0]) == {"name", "id"}
        assert found[threads["group"]] == []
