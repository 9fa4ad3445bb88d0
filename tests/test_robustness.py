"""Odd input never becomes a 500, and list pages cost a bounded number of queries."""

import pytest
from sqlalchemy import event

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import messaging, network, profile_views, threads

from .factories import by_testid, connect, texts


@pytest.fixture
def thread(app, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        connect(ann, bob)
        thread_id = messaging.start(
            db.session.get(Member, ann.id), db.session.get(Member, bob.id), "hi"
        ).thread_id
    return ann, bob, thread_id


@pytest.mark.parametrize(
    "path",
    [
        "/messaging?before=²",
        "/messaging?before=99999999999999999999",
        "/messaging/t/{t}?before=2147483648",
        "/messaging/t/999999999999999999999999999999",
        "/notifications?before=³",
        "/network?after_name=a&after_id=²",
        "/search?q=a&after_name=a&after_id=9999999999",
        "/search?q=" + "x" * 5000,
        "/stream?last_event_id=9999999999",
        "/search?q=a%00b",
        "/network?after_name=a%00&after_id=1",
        "/messaging/files/99999999999",
    ],
)
def test_odd_query_values_never_cause_a_500(browser, thread, path):
    ann, _, thread_id = thread
    browser.login(ann)
    response = browser.get(path.format(t=thread_id), buffered=False)
    assert response.status_code in (200, 302, 400, 404), response.status_code
    response.close()


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/login", {"email": "a\x00@x.com", "password": "whatever1"}),
        ("/register", {"name": "A", "email": "a\x00b@x.com", "password": "whatever1"}),
        ("/messaging/t/{t}", {"body": "a\x00b", "idempotency_key": "nul-key-0001"}),
        ("/messaging/t/{t}/read", {"up_to": "²"}),
        ("/network/invitations/9999999999/accept", {}),
        ("/network/invite/bob-stone", {"note": "hi\x00"}),
    ],
)
def test_odd_form_values_never_cause_a_500(browser, thread, path, form):
    ann, _, thread_id = thread
    browser.login(ann)
    response = browser.post(path.format(t=thread_id), form)
    assert response.status_code in (303, 400, 401, 404, 422), response.status_code


def test_a_note_with_line_breaks_counts_each_break_once(app, browser, member_factory):
    ann, bob = member_factory(name="Ann"), member_factory(name="Bob")
    browser.login(ann)
    note = ("a" * 29 + "\r\n") * 10  # 300 characters as the member typed them
    response = browser.post(f"/network/invite/{bob.handle}", {"note": note})
    assert response.status_code == 303


def test_a_refused_htmx_reply_replaces_the_form_with_the_reason(app, browser, thread):
    ann, bob, thread_id = thread
    with app.app_context():
        network.remove_connection(ann.id, bob.id)
    browser.login(ann)
    response = browser.post(
        f"/messaging/t/{thread_id}",
        {"body": "still?", "idempotency_key": "refused-0001"},
        htmx=True,
    )
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#reply"
    assert texts(response, "reply-locked") == [
        "Connect with Bob Stone to message them, or send an InMail with Premium."
    ]


def count_queries(app, browser, path) -> int:
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = browser.get(path)
        assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    STATEMENTS[path] = [" ".join(s.split())[:90] for s in statements]
    return len(statements)


STATEMENTS: dict[str, list[str]] = {}


def test_page_costs_do_not_grow_with_the_number_of_rows(app, browser, member_factory):
    me = member_factory(name="Me")
    friends = [member_factory(name=f"Friend {i:02d}") for i in range(25)]
    with app.app_context():
        me_row = db.session.get(Member, me.id)
        for friend in friends:
            connect(me, friend)
            friend_row = db.session.get(Member, friend.id)
            for n in range(2):
                messaging.start(friend_row, me_row, f"hello {n}")
        big_thread = threads.find_thread(me.id, friends[0].id).id
        for n in range(40):
            messaging.reply(db.session.get(Member, friends[0].id), big_thread, f"more {n}")
            profile_views.record_view(friends[n % 25].id, me.id)
    browser.login(me)
    paths = (
        "/messaging",
        f"/messaging/t/{big_thread}",
        "/network",
        "/search?q=friend",
        "/notifications",
    )
    for path in paths:
        browser.get(path)  # the first visit marks things read (a write and a live event)
    costs = {path: count_queries(app, browser, path) for path in paths}
    assert len(by_testid(browser.get("/messaging"), "thread-row")) == 20
    # 20 threads, 30 messages, 25 connections, 25 results, 30 notifications per page:
    # a query per row would show here.
    for path, cost in costs.items():
        assert cost <= 16, "\n".join([path] + STATEMENTS[path])
