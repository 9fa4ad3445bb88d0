"""Group conversations, service level, on SQLite and PostgreSQL: who may be added, who may
do what, and above all who reads what — added later, left, removed, re-added."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import (
    Connection,
    GroupSpan,
    Member,
    Message,
    Outbox,
    Thread,
    ThreadMember,
)
from linkmsg.services import blocking, groups, messaging, network, search, threads
from linkmsg.services.errors import Forbidden, NotFound, RateLimited, ValidationFailed

from .factories import MemberRef, connect, make_member


def m(ref) -> Member:
    db.session.expire_all()
    return db.session.get(Member, ref.id)


@pytest.fixture
def crew(ctx):
    """Ava is connected to Ben, Cy, Dee and Eve; nobody else is connected."""
    ava, ben, cy, dee, eve = (make_member(n) for n in ("Ava", "Ben", "Cy", "Dee", "Eve"))
    for other in (ben, cy, dee, eve):
        connect(ava, other)
    return ava, ben, cy, dee, eve


def start(creator, *others, name=None, body="Hello all"):
    return messaging.start_group(m(creator), [o.id for o in others], name, body)


def bodies(reader, thread_id) -> list[str]:
    view = threads.get_thread_for(reader.id, thread_id)
    page = messaging.messages(thread_id, kind=view.thread.kind, reader_id=reader.id)
    return [message.body for message in page.messages if not message.is_system]


def say(sender, thread_id, body):
    return messaging.reply(m(sender), thread_id, body)


def test_a_group_starts_with_its_members_a_line_and_the_first_message(crew):
    ava, ben, cy, *_ = crew
    sent = start(ava, ben, cy, name="  Launch   team ")
    thread = db.session.get(Thread, sent.thread_id)
    assert thread.kind == "group" and thread.name == "Launch team"
    assert thread.a_id is None and thread.b_id is None
    assert {x.id for x in groups.members(thread.id)} == {ava.id, ben.id, cy.id}
    kinds = [x.kind for x in db.session.scalars(db.select(Message).order_by(Message.id))]
    assert kinds == ["created", "text"]
    for reader in (ava, ben, cy):
        assert bodies(reader, thread.id) == ["Hello all"]
    # Ben and Cy have it unread (the line that started it and the message); Ava sent it.
    for reader, unread in ((ava, 0), (ben, 2), (cy, 2)):
        row = messaging.inbox_row(reader.id, thread.id)
        assert row.is_group and row.group.name == "Launch team"
        assert row.unread == unread
    assert messaging.unread_thread_count(ben.id) == 1


def test_a_group_needs_two_others_and_at_most_fifty_members(crew, app):
    ava, ben, *_ = crew
    with pytest.raises(ValidationFailed, match="at least two people"):
        start(ava, ben)
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 0


def crowd(around, count: int) -> list[MemberRef]:
    """`count` members with full profiles, each connected to `around` (written directly:
    the invitation flow is tested elsewhere, and fifty of them are slow)."""
    made = [
        Member(
            email=f"crowd{n}-{around.id}@example.test",
            password_hash="-",
            handle=f"crowd-{around.id}-{n}",
            name=f"Person {n:02d}",
            headline="Engineer",
            location="Lisbon",
        )
        for n in range(count)
    ]
    db.session.add_all(made)
    db.session.flush()
    for member in made:
        db.session.add_all(
            [
                Connection(member_id=around.id, other_id=member.id),
                Connection(member_id=member.id, other_id=around.id),
            ]
        )
    db.session.commit()
    return [MemberRef(x.id, x.handle, x.email, x.name) for x in made]


def test_fifty_members_at_most_counting_the_creator(ctx, app):
    ava = make_member("Ava")
    people = crowd(ava, 50)
    with pytest.raises(ValidationFailed, match="at most 50 members"):
        start(ava, *people)
    sent = start(ava, *people[:49])
    assert len(groups.members(sent.thread_id)) == 50
    with pytest.raises(ValidationFailed, match="room for 0 more"):
        groups.add(m(ava), sent.thread_id, [people[49].id])


def test_only_own_connections_with_a_full_profile_and_no_block_each_reason_named(crew):
    ava, ben, cy, dee, eve = crew
    stranger = make_member("Stranger")
    empty = make_member("Empty", full=False)
    connect(ava, empty)
    blocking.block(ava.id, dee.id)
    blocking.block(eve.id, ava.id)
    with pytest.raises(ValidationFailed) as refused:
        start(ava, ben, cy, stranger, empty, dee, eve)
    reason = str(refused.value)
    assert "Stranger isn't one" in reason
    assert "Empty hasn't completed their profile" in reason
    assert "You blocked Dee" in reason
    assert "You can't add Eve" in reason
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 0


def test_premium_does_not_open_groups_to_non_connections(ctx):
    ava = make_member("Ava", plan="premium")
    ben, cy = make_member("Ben"), make_member("Cy")
    connect(ava, ben)
    with pytest.raises(ValidationFailed, match="Cy isn't one"):
        start(ava, ben, cy)


def test_name_at_most_100_characters(crew):
    ava, ben, cy, *_ = crew
    with pytest.raises(ValidationFailed, match="at most 100 characters"):
        start(ava, ben, cy, name="x" * 101)
    assert start(ava, ben, cy, name="x" * 100).thread_id


def test_a_group_counts_toward_the_daily_cap_on_new_conversations(crew, app):
    ava, ben, cy, *_ = crew
    app.config["NEW_THREAD_RATE_LIMIT"] = "1 per day"
    start(ava, ben, cy)
    with pytest.raises(RateLimited):
        start(ava, ben, cy)


def test_several_groups_may_have_the_same_members(crew):
    ava, ben, cy, *_ = crew
    assert start(ava, ben, cy).thread_id != start(ava, ben, cy).thread_id


def test_added_later_reads_from_the_moment_they_joined(crew):
    ava, ben, cy, dee, _ = crew
    thread_id = start(ava, ben, cy, body="before Dee").thread_id
    groups.add(m(ava), thread_id, [dee.id])
    say(ben, thread_id, "after Dee")
    assert bodies(dee, thread_id) == ["after Dee"]
    assert bodies(cy, thread_id) == ["before Dee", "after Dee"]
    # Unread counts only what Dee may read: the line that added them and one message.
    assert messaging.inbox_row(dee.id, thread_id).unread == 2


def test_who_left_keeps_what_they_saw_and_gets_nothing_after(crew):
    ava, ben, cy, *_ = crew
    thread_id = start(ava, ben, cy, body="one").thread_id
    groups.leave(m(cy), thread_id)
    say(ben, thread_id, "two")
    assert bodies(cy, thread_id) == ["one"]
    assert bodies(ava, thread_id) == ["one", "two"]
    side = db.session.get(ThreadMember, (thread_id, cy.id))
    assert not side.active
    # Nothing after reaches their inbox row, badge or email.
    row = messaging.inbox_row(cy.id, thread_id)
    assert row.last.kind == "left" and row.unread == 0
    assert messaging.unread_thread_count(cy.id) == 0
    view = threads.get_thread_for(cy.id, thread_id)
    assert messaging.reply_permission(view, m(cy)).allowed is False
    second = db.session.scalar(db.select(Message.id).where(Message.body == "two"))
    emailed = {
        member_id
        for member_id, payload in db.session.execute(db.select(Outbox.member_id, Outbox.payload))
        if payload.get("message_id") == second
    }
    assert emailed == {ava.id}  # the one other current member, not Cy


def test_a_former_member_cannot_send_add_rename_or_leave_again(crew):
    ava, ben, cy, dee, _ = crew
    thread_id = start(ava, ben, cy).thread_id
    groups.leave(m(cy), thread_id)
    with pytest.raises(Exception, match="no longer in this conversation"):
        say(cy, thread_id, "hello?")
    for act in (
        lambda: groups.add(m(cy), thread_id, [dee.id]),
        lambda: groups.rename(m(cy), thread_id, "Mine"),
        lambda: groups.leave(m(cy), thread_id),
    ):
        with pytest.raises(Forbidden):
            act()


def test_removed_and_re_added_reads_both_stretches_and_not_the_gap(crew):
    ava, ben, cy, *_ = crew
    thread_id = start(ava, ben, cy, body="first").thread_id
    groups.remove(m(ava), thread_id, cy.id)
    say(ben, thread_id, "while Cy was out")
    connect(ben, cy)
    groups.add(m(ben), thread_id, [cy.id])
    say(ava, thread_id, "welcome back")
    assert bodies(cy, thread_id) == ["first", "welcome back"]
    spans = db.session.scalars(
        db.select(GroupSpan).where(GroupSpan.member_id == cy.id).order_by(GroupSpan.id)
    ).all()
    assert len(spans) == 2 and spans[0].last_message_id is not None
    assert spans[1].last_message_id is None
    # Search finds only what Cy may read.
    assert [hit.message.body for hit in search.search(cy.id, "while")] == []
    assert [hit.message.body for hit in search.search(ava.id, "while")] == ["while Cy was out"]


def test_only_the_starter_removes_and_anyone_adds_their_own_connections(crew):
    ava, ben, cy, dee, _ = crew
    thread_id = start(ava, ben, cy).thread_id
    with pytest.raises(Forbidden, match="Only the member who started"):
        groups.remove(m(ben), thread_id, cy.id)
    # Ben is not connected to Dee: he may not add her; Ava may.
    with pytest.raises(ValidationFailed, match="Dee isn't one"):
        groups.add(m(ben), thread_id, [dee.id])
    network.invite(ben.id, dee.id)
    connect(dee, ben)
    assert [x.id for x in groups.add(m(ben), thread_id, [dee.id])] == [dee.id]
    with pytest.raises(ValidationFailed, match="isn't in the conversation"):
        groups.add(m(ava), thread_id, [dee.id])


def test_rename_is_a_system_line_and_an_empty_name_falls_back_to_members(crew):
    ava, ben, cy, *_ = crew
    thread_id = start(ava, ben, cy).thread_id
    groups.rename(m(ben), thread_id, "Q3 plans")
    thread = db.session.get(Thread, thread_id)
    assert thread.name == "Q3 plans"
    groups.rename(m(cy), thread_id, "")
    db.session.refresh(thread)
    assert thread.name is None
    assert messaging.inbox_row(ava.id, thread_id).group.name == "Ben and Cy"
    lines = db.session.scalars(
        db.select(Message.kind).where(Message.thread_id == thread_id).order_by(Message.id)
    ).all()
    assert lines == ["created", "text", "renamed", "renamed"]
    with pytest.raises(ValidationFailed):
        groups.rename(m(ava), thread_id, "y" * 101)


def test_display_name_with_many_members(ctx):
    ava = make_member("Ava")
    people = [make_member(n) for n in ("Ben", "Cy", "Dee", "Eve", "Fay")]
    for person in people:
        connect(ava, person)
    thread_id = start(ava, *people).thread_id
    assert messaging.inbox_row(ava.id, thread_id).group.name == "Ben, Cy and 3 others"


def test_a_block_inside_a_group_removes_nobody_and_the_blocker_is_not_told(crew):
    ava, ben, cy, *_ = crew
    thread_id = start(ava, ben, cy).thread_id
    blocking.block(cy.id, ben.id)
    assert {x.id for x in groups.members(thread_id)} == {ava.id, ben.id, cy.id}
    messaging.mark_read(cy.id, thread_id, 10**9)
    say(ben, thread_id, "from Ben")
    row = messaging.inbox_row(cy.id, thread_id)
    assert row.group.collapsed and row.unread == 0
    assert messaging.unread_thread_count(cy.id) == 0
    owed = [
        member_id
        for member_id, payload in db.session.execute(db.select(Outbox.member_id, Outbox.payload))
        if payload.get("message_id") == row.last.id
    ]
    assert owed == [ava.id]
    # Still both in it: Ben's messages reach Ava as usual.
    assert messaging.inbox_row(ava.id, thread_id).unread >= 1


def test_a_group_does_not_exist_for_someone_never_in_it(crew):
    ava, ben, cy, dee, _ = crew
    thread_id = start(ava, ben, cy).thread_id
    with pytest.raises(NotFound):
        threads.get_thread_for(dee.id, thread_id)


def test_removing_a_connection_or_suspension_removes_nobody(crew):
    ava, ben, cy, *_ = crew
    thread_id = start(ava, ben, cy).thread_id
    network.remove_connection(ava.id, ben.id)
    assert {x.id for x in groups.members(thread_id)} == {ava.id, ben.id, cy.id}
    say(ben, thread_id, "still here")
    member = m(cy)
    member.suspended_at = member.created_at
    db.session.commit()
    assert bodies(ava, thread_id)[-1] == "still here"
    view = threads.get_thread_for(cy.id, thread_id)
    assert not messaging.reply_permission(view, m(cy)).allowed


def test_one_to_one_threads_keep_one_per_pair(crew):
    ava, ben, cy, *_ = crew
    start(ava, ben, cy)
    first = messaging.start(m(ava), m(ben), "just us")
    again = messaging.start(m(ava), m(ben), "still just us")
    assert first.thread_id == again.thread_id
    assert db.session.get(Thread, first.thread_id).kind == "ordinary"
