"""Overlapping requests on group conversations, through a real server (see
tests/test_races.py for the method): the 50-member cap, a leave in the middle of sends,
a group started from many tabs at once. PostgreSQL only (SQLite serialises writers)."""

from __future__ import annotations

import pytest

from linkmsg.extensions import db
from linkmsg.models import Event, GroupSpan, Member, Message, Outbox, Thread, ThreadMember
from linkmsg.services import messaging

from .factories import connect, make_member
from .parallel import (
    ENGINE_OPTIONS,
    LiveServer,
    assert_consistent,
    csrf_token,
    in_parallel,
    log_in,
    posting,
    statuses,
    tabs,
)

pytestmark = pytest.mark.races


@pytest.fixture
def race_app(app_factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer, so requests cannot overlap there")
    return app_factory(
        SQLALCHEMY_ENGINE_OPTIONS=ENGINE_OPTIONS,
        NEW_THREAD_RATE_LIMIT="1000 per day",
        MESSAGE_RATE_LIMIT="10000 per minute",
    )


def count(model, *where) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model).where(*where))


def _group(creator, others, name="Race team") -> int:
    return messaging.start_group(
        db.session.get(Member, creator.id), [o.id for o in others], name, "Hello"
    ).thread_id


def test_adds_at_once_never_pass_fifty_members(race_app):
    with race_app.app_context():
        ava = make_member("Ava")
        others = [make_member(f"Member {n}") for n in range(44)]
        for other in others:
            connect(other, ava)
        thread_id = _group(ava, others)  # 45 members
        adders = others[:8]
        newcomers = []
        for n, adder in enumerate(adders):
            pair = [make_member(f"Newcomer {n}-{k}") for k in range(2)]
            for person in pair:
                connect(person, adder)
            newcomers.append(pair)
    with LiveServer(race_app) as server:
        browsers = [log_in(server.url, adder) for adder in adders]
        path = f"/messaging/t/{thread_id}/people"
        calls = [
            posting(
                browser,
                path,
                {"csrf_token": csrf_token(browser, path), "member": [p.id for p in pair]},
            )
            for browser, pair in zip(browsers, newcomers, strict=True)
        ]
        responses = in_parallel(calls)
    codes = statuses(responses)
    # Room for five: two adds of two fit, every later one is refused whole.
    assert codes == {303: 2, 422: 6}, codes
    with race_app.app_context():
        active = count(
            ThreadMember, ThreadMember.thread_id == thread_id, ThreadMember.active.is_(True)
        )
        assert active == 49
        assert count(GroupSpan, GroupSpan.thread_id == thread_id) == 49
    assert_consistent(race_app)


def test_a_leave_among_sends_splits_them_cleanly(race_app):
    with race_app.app_context():
        ava, ben, cy = make_member("Ava"), make_member("Ben"), make_member("Cy")
        connect(ben, ava)
        connect(cy, ava)
        connect(ben, cy)
        thread_id = _group(ava, [ben, cy])
    with LiveServer(race_app) as server:
        senders = tabs(log_in(server.url, ava), 4) + tabs(log_in(server.url, ben), 4)
        cy_browser = log_in(server.url, cy)
        path = f"/messaging/t/{thread_id}"
        calls = [
            posting(
                tab,
                path,
                {
                    "csrf_token": csrf_token(tab, path),
                    "body": f"message {n}",
                    "idempotency_key": f"race-leave-{n:04d}",
                },
            )
            for n, tab in enumerate(senders)
        ]
        leave_token = csrf_token(cy_browser, path)
        calls.insert(4, posting(cy_browser, f"{path}/leave", {"csrf_token": leave_token}))
        responses = in_parallel(calls)
    assert all(r.status_code in (200, 303) for r in responses), statuses(responses)
    with race_app.app_context():
        span = db.session.scalar(
            db.select(GroupSpan).where(
                GroupSpan.thread_id == thread_id, GroupSpan.member_id == cy.id
            )
        )
        assert span.last_message_id is not None
        texts = db.session.scalars(
            db.select(Message.id).where(Message.thread_id == thread_id, Message.kind == "text")
        ).all()
        assert len(texts) == 9
        readable = {m for m in texts if m <= span.last_message_id}
        told = {
            event.payload["message_id"]
            for event in db.session.scalars(
                db.select(Event).where(Event.member_id == cy.id, Event.kind == "message")
            )
        }
        # Cy heard of exactly the messages sent while they were in it, and nothing after.
        assert told & set(texts) == readable
        side = db.session.get(ThreadMember, (thread_id, cy.id))
        assert side.last_message_id == span.last_message_id and not side.active
        emailed = {
            row.payload["message_id"]
            for row in db.session.scalars(db.select(Outbox).where(Outbox.member_id == cy.id))
        }
        assert not emailed - readable
    assert_consistent(race_app)


def test_a_group_started_from_many_tabs_at_once_is_started_once(race_app):
    with race_app.app_context():
        ava, ben, cy = make_member("Ava"), make_member("Ben"), make_member("Cy")
        connect(ben, ava)
        connect(cy, ava)
    with LiveServer(race_app) as server:
        browser = log_in(server.url, ava)
        token = csrf_token(browser, "/messaging/new")
        form = {
            "csrf_token": token,
            "member": [ben.id, cy.id],
            "name": "Once",
            "body": "Hello both",
            "idempotency_key": "race-group-start-0001",
        }
        responses = in_parallel([posting(tab, "/messaging/new", form) for tab in tabs(browser, 8)])
    assert statuses(responses) == {303: 8}
    assert len({r.headers["Location"].split("#")[0] for r in responses}) == 1
    with race_app.app_context():
        assert count(Thread, Thread.kind == "group") == 1
        assert count(Message, Message.kind == "text") == 1
    assert_consistent(race_app)
