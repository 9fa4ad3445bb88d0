"""The messaging service: threads, sending, idempotency, the inbox, paging, read state."""

import threading

import pytest
import sqlalchemy as sa

from linkmsg.extensions import db
from linkmsg.models import Attachment, Member, Message, Thread
from linkmsg.services import blocking, messaging, network, threads
from linkmsg.services.errors import NotFound, ValidationFailed
from linkmsg.services.permission import MessagingRefused

from .factories import connect, make_member


def m(ref) -> Member:
    return db.session.get(Member, ref.id)


@pytest.fixture
def friends(ctx):
    ann, bob = make_member("Ann"), make_member("Bob")
    connect(ann, bob)
    return ann, bob


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_first_message_creates_one_thread_and_later_ones_reuse_it(friends):
    ann, bob = friends
    first = messaging.start(m(ann), m(bob), "Hello")
    second = messaging.start(m(bob), m(ann), "Hi back")
    assert first.thread_id == second.thread_id
    assert count(Thread) == 1
    assert threads.find_thread(bob.id, ann.id).id == first.thread_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write a message or attach a file before sending."),
        ("   \n\t ", "Write a message or attach a file before sending."),
        ("x" * 8001, "Your message can be at most 8,000 characters (this one has 8,001)."),
    ],
)
def test_bad_bodies_are_refused_and_nothing_is_saved(friends, body, message):
    ann, bob = friends
    with pytest.raises(ValidationFailed) as info:
        messaging.start(m(ann), m(bob), body)
    assert info.value.message == message
    assert count(Message) == 0 and count(Thread) == 0


def test_body_is_trimmed_keeps_newlines_and_8000_characters_fit(friends):
    ann, bob = friends
    sent = messaging.start(m(ann), m(bob), "  line one\r\nline two  \n")
    assert sent.message.body == "line one\nline two"
    assert len(messaging.start(m(ann), m(bob), "y" * 8000).message.body) == 8000


def test_the_same_idempotency_key_sends_one_message(friends):
    ann, bob = friends
    first = messaging.start(m(ann), m(bob), "Hello", idempotency_key="form-key-0001")
    again = messaging.start(m(ann), m(bob), "Hello", idempotency_key="form-key-0001")
    reply_again = messaging.reply(m(ann), first.thread_id, "Hello", idempotency_key="form-key-0001")
    assert again.message.id == first.message.id == reply_again.message.id
    assert not again.created and not reply_again.created
    assert count(Message) == 1


def test_refusals_save_nothing(ctx):
    ann, dee = make_member("Ann"), make_member("Dee")
    with pytest.raises(MessagingRefused) as info:
        messaging.start(m(ann), m(dee), "Hello")
    assert info.value.message == "Connect with Dee to message them, or send an InMail with Premium."
    assert info.value.status_code == 403
    assert count(Message) == 0 and count(Thread) == 0


def test_reply_after_the_connection_ends_is_refused_but_the_thread_stays_readable(friends):
    ann, bob = friends
    thread_id = messaging.start(m(ann), m(bob), "Hello").thread_id
    network.remove_connection(bob.id, ann.id)
    with pytest.raises(MessagingRefused):
        messaging.reply(m(ann), thread_id, "Still there?")
    view = threads.get_thread_for(ann.id, thread_id)
    assert not messaging.reply_permission(view, m(ann)).allowed
    assert [x.body for x in messaging.messages(thread_id).messages] == ["Hello"]


def test_a_block_hides_the_thread_from_both(friends):
    ann, bob = friends
    thread_id = messaging.start(m(ann), m(bob), "Hello").thread_id
    blocking.block(bob.id, ann.id)
    for member in (ann, bob):
        with pytest.raises(NotFound):
            threads.get_thread_for(member.id, thread_id)
        assert messaging.inbox(member.id)[0] == []
        assert messaging.unread_thread_count(member.id) == 0


def test_outsiders_cannot_see_or_write_in_a_thread(friends):
    ann, bob = friends
    eve = make_member("Eve")
    thread_id = messaging.start(m(ann), m(bob), "Hello").thread_id
    with pytest.raises(NotFound):
        threads.get_thread_for(eve.id, thread_id)
    with pytest.raises(NotFound):
        messaging.reply(m(eve), thread_id, "Let me in")
    with pytest.raises(NotFound):
        threads.get_thread_for(ann.id, thread_id + 1000)
    assert count(Message) == 1


def test_inbox_orders_by_latest_activity_with_preview_and_unread_counts(ctx):
    me = make_member("Me")
    others = [make_member(f"Friend {i}") for i in range(3)]
    threads = []
    for other in others:
        connect(me, other)
        threads.append(messaging.start(m(other), m(me), f"Hello from {other.name}").thread_id)
    messaging.start(m(others[0]), m(me), "And again")
    rows, cursor = messaging.inbox(me.id)
    assert [r.other.name for r in rows] == ["Friend 0", "Friend 2", "Friend 1"]
    assert [r.unread for r in rows] == [2, 1, 1]
    assert rows[0].last.body == "And again"
    assert cursor is None
    assert messaging.unread_thread_count(me.id) == 3

    messaging.mark_read(me.id, threads[0], rows[0].last.id)
    assert messaging.unread_thread_count(me.id) == 2
    unread_rows, _ = messaging.inbox(me.id, unread_only=True)
    assert [r.other.name for r in unread_rows] == ["Friend 2", "Friend 1"]
    # The sender's own messages never count as unread for them.
    assert messaging.unread_thread_count(others[0].id) == 0


def test_mark_read_keeps_messages_newer_than_what_was_seen_unread(friends):
    ann, bob = friends
    first = messaging.start(m(bob), m(ann), "one")
    messaging.start(m(bob), m(ann), "two")
    messaging.mark_read(ann.id, first.thread_id, first.message.id)
    rows, _ = messaging.inbox(ann.id)
    assert rows[0].unread == 1


def test_inbox_pages_are_keyset_paged(ctx):
    me = make_member("Me")
    for i in range(5):
        other = make_member(f"Friend {i}")
        connect(me, other)
        messaging.start(m(other), m(me), f"msg {i}")
    seen = []
    cursor = None
    while True:
        rows, cursor = messaging.inbox(me.id, before=cursor, limit=2)
        seen += [r.other.name for r in rows]
        if cursor is None:
            break
    assert seen == [f"Friend {i}" for i in reversed(range(5))]


def test_history_pages_return_every_message_exactly_once(friends):
    ann, bob = friends
    thread_id = None
    for i in range(23):
        sender, recipient = (ann, bob) if i % 2 else (bob, ann)
        thread_id = messaging.start(m(sender), m(recipient), f"message {i}").thread_id
    pages, before = [], None
    while True:
        page = messaging.messages(thread_id, before=before, limit=5)
        pages.append([x.body for x in page.messages])
        before = page.older_cursor
        if before is None:
            break
    assert pages[0] == [f"message {i}" for i in range(18, 23)]
    flat = [body for chunk in reversed(pages) for body in chunk]
    assert flat == [f"message {i}" for i in range(23)]
    assert len(pages) == 5


def test_concurrent_first_messages_end_in_one_thread(app, database_url):
    """Two members write to each other at the same moment: one thread (PostgreSQL only,
    where the two transactions really run at once)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    with app.app_context():
        ann, bob = make_member("Ann"), make_member("Bob")
        connect(ann, bob)
    barrier = threading.Barrier(8)
    errors = []

    def send(sender_id, recipient_id, n):
        try:
            with app.app_context():
                sender, recipient = (
                    db.session.get(Member, sender_id),
                    db.session.get(Member, recipient_id),
                )
                barrier.wait(timeout=10)
                messaging.start(sender, recipient, f"hello {n}")
        except Exception as error:  # collected and asserted below
            errors.append(error)

    workers = [
        threading.Thread(target=send, args=((ann.id, bob.id) if n % 2 else (bob.id, ann.id)) + (n,))
        for n in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Thread)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 8
        last = db.session.scalar(sa.select(Message).order_by(Message.id.desc()).limit(1))
        for member in (ann, bob):
            rows, _ = messaging.inbox(member.id)
            assert len(rows) == 1 and rows[0].last.id == last.id
            # Whoever wrote last has read everything; the other has their messages unread.
            assert (rows[0].unread == 0) == (last.sender_id == member.id)


def _thread_of_45_messages_with_files(a, b, bodies=None) -> Thread:
    """An ordinary thread of 45 messages, each with none, one or two files."""
    thread = threads.get_or_create_thread(a.id, b.id)
    db.session.commit()
    for n in range(45):
        body = bodies[n % len(bodies)] if bodies else f"m{n}"
        message = Message(thread_id=thread.id, sender_id=(a, b)[n % 2].id, body=body)
        db.session.add(message)
        db.session.flush()
        for k in range(n % 3):  # none, one or two files
            db.session.add(
                Attachment(
                    message_id=message.id,
                    storage_key=f"key-{n}-{k}",
                    name=f"file-{n}-{k}.txt",
                    content_type="text/plain",
                    size=n + k,
                    sha256="0" * 64,
                    width=n if k else None,
                )
            )
    db.session.commit()
    return thread


def _columns(instance) -> tuple:
    """Every column attribute of a mapped instance, by name."""
    return tuple(
        (prop.key, getattr(instance, prop.key)) for prop in sa.inspect(type(instance)).column_attrs
    )


def test_an_ordinary_threads_pages_carry_every_message_with_its_files_in_order(friends):
    """An ordinary thread's pages are read through Core (messaging._core_page): each page
    holds the messages the ORM finds, newest page first, with their files in id order."""
    a, b = friends
    thread = _thread_of_45_messages_with_files(a, b)
    everything = db.session.scalars(
        sa.select(Message).where(Message.thread_id == thread.id).order_by(Message.id)
    ).all()
    spelled = lambda messages: [  # noqa: E731
        (m.id, m.body, m.sender_id, m.created_at, [(f.id, f.name) for f in m.attachments])
        for m in messages
    ]
    expected = spelled(everything)
    db.session.expunge_all()

    newest = messaging.messages(thread.id, limit=20, kind=thread.kind)
    assert spelled(newest.messages) == expected[-20:]
    assert all(m.inmail is None for m in newest.messages)
    older = messaging.messages(thread.id, before=newest.older_cursor, limit=20, kind=thread.kind)
    assert spelled(older.messages) == expected[-40:-20]
    oldest = messaging.messages(thread.id, before=older.older_cursor, limit=20, kind=thread.kind)
    assert spelled(oldest.messages) == expected[:-40] and oldest.older_cursor is None
    newer = messaging.messages(thread.id, after=expected[9][0], limit=20, kind=thread.kind)
    assert spelled(newer.messages) == expected[10:30]
    around = messaging.messages(thread.id, at=expected[25][0], limit=20, kind=thread.kind)
    # Six up to the message opened (itself included), then the rest of the page after it.
    assert spelled(around.messages) == expected[20:40]


@pytest.mark.parametrize("count_shown", [45, 30, 3, 0])
def test_a_thread_opens_with_its_newest_page_as_the_orm_reads_it(friends, count_shown):
    """Opening a thread reads its newest page in the view's statement, as JSON
    (messaging.open_thread): every column of every message and file comes back as the
    ORM loads it (timestamps to the microsecond, text as written), in order, and the
    cursor to older messages only when there are more than a page."""
    a, b = friends
    bodies = ['say "hi" \\ <b>', "naïve café 🎉", "line\nbreak\ttab \u2028", "x" * 8000]
    thread_id = _thread_of_45_messages_with_files(a, b, bodies).id
    # Fewer messages: the newest ones removed.
    extra = db.session.scalars(
        sa.select(Message.id).where(Message.thread_id == thread_id).order_by(Message.id)
    ).all()[count_shown:]
    db.session.execute(sa.delete(Attachment).where(Attachment.message_id.in_(extra)))
    db.session.execute(sa.delete(Message).where(Message.id.in_(extra)))
    db.session.commit()
    db.session.expunge_all()

    def spelled(page):
        return (
            [(_columns(m), [_columns(f) for f in m.attachments]) for m in page.messages],
            page.older_cursor,
            page.newest,
        )

    # Another ordinary thread of Ann's, with newer messages, and a group: neither's
    # messages come with this thread's.
    cleo = make_member("Cleo")
    connect(a, cleo)
    other = messaging.start(m(a), m(cleo), "Elsewhere").thread_id
    messaging.reply(m(cleo), other, "Newer, and not in the opened thread")
    group = messaging.start_group(m(a), [b.id, cleo.id], "Team", "In the group").thread_id
    db.session.expunge_all()

    expected = messaging.messages(thread_id, reader_id=a.id)  # the ORM's, any kind
    view, opened = messaging.open_thread(a.id, thread_id)
    assert all(message.thread_id == thread_id for message in opened.messages)
    assert view.thread.id == thread_id and view.other.id == b.id
    assert spelled(opened) == spelled(expected)
    assert len(opened.messages) == min(count_shown, messaging.THREAD_PAGE_SIZE)
    assert (opened.older_cursor is not None) == (count_shown > messaging.THREAD_PAGE_SIZE)
    assert all(m.inmail is None for m in opened.messages)
    assert any(m.attachments for m in opened.messages) == (count_shown > 1)
    # A group's messages are read as before (who may read what), not with its view.
    group_view, group_page = messaging.open_thread(a.id, group)
    assert group_view.is_group and group_page is None


def test_a_thread_opened_is_refused_as_get_thread_for_refuses_it(friends):
    """Opening a thread with its messages answers who may see it as the view does: a
    stranger and a member behind a block get NotFound, and no message."""
    a, b = friends
    stranger = make_member("Cleo")
    sent = messaging.start(m(a), m(b), "Hello")
    with pytest.raises(NotFound):
        messaging.open_thread(stranger.id, sent.thread_id)
    blocking.block(b.id, a.id)
    db.session.commit()
    for member in (a, b):
        with pytest.raises(NotFound):
            messaging.open_thread(member.id, sent.thread_id)
