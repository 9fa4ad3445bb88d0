"""GET /stream on both transports: private, replayable, nothing missed, nothing doubled."""

import threading
import time
from datetime import timedelta

import pytest

from linkmsg import realtime
from linkmsg.extensions import db
from linkmsg.models import Event, Member, utcnow
from linkmsg.services import events, messaging, profile_views

from .factories import Browser, connect, make_member
from .live import EventStream, LiveServer


def registry(app):
    with app.app_context():
        return realtime.registry()


def members(app):
    with app.app_context():
        ann, bob, cat = make_member("Ann Lee"), make_member("Bob Stone"), make_member("Cat Diaz")
        connect(ann, bob)
        return ann, bob, cat


def session_cookie(app, member) -> str:
    browser = Browser(app)
    browser.login(member)
    return browser.client.get_cookie("session").value


def send(app, sender, recipient, body):
    with app.app_context():
        return messaging.start(
            db.session.get(Member, sender.id), db.session.get(Member, recipient.id), body
        )


def latest(app, member) -> int:
    with app.app_context():
        return events.latest_seq(member.id)


def open_stream(server, app, member, **kwargs) -> EventStream:
    stream = EventStream(server.port, cookie=session_cookie(app, member), **kwargs)
    assert stream.status == 200
    first = stream.next(timeout=5, skip_comments=False)
    assert first is not None and "open" in first.comments  # the first bytes go out at once
    return stream


def test_an_event_reaches_the_recipients_open_stream(live_app):
    app, server = live_app
    ann, bob, _ = members(app)
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={latest(app, bob)}")
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.headers["X-Accel-Buffering"] == "no"
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    try:
        sent = send(app, ann, bob, "Live hello")
        event = stream.next(timeout=5)
        assert event.event == "update"
        assert "Live hello" in event.data
        assert f'data-message-id="{sent.message.id}"' in event.data
        with app.app_context():
            row = db.session.scalar(
                db.select(Event).where(Event.member_id == bob.id, Event.seq == int(event.id))
            )
            assert row.payload["message_id"] == sent.message.id
    finally:
        stream.close()


def test_a_member_only_ever_gets_their_own_events(live_app):
    app, server = live_app
    ann, bob, cat = members(app)
    # Bob asks for Ann's channel; flask-sse would honour ?channel=, we never do.
    stream = open_stream(
        server, app, bob, path=f"/stream?channel=member:{ann.id}&last_event_id={latest(app, bob)}"
    )
    try:
        with app.app_context():
            profile_views.record_view(cat.id, ann.id)  # an event for Ann only
        assert stream.next(timeout=2) is None
        with app.app_context():
            profile_views.record_view(cat.id, bob.id)  # and one for Bob
        event = stream.next(timeout=5)
        assert event is not None and "viewed your profile" in event.data
        with app.app_context():
            assert int(event.id) == events.latest_seq(bob.id)  # Bob's own numbering
    finally:
        stream.close()


def test_anonymous_gets_401(live_app):
    _, server = live_app
    stream = EventStream(server.port)
    assert stream.status == 401
    stream.close()


@pytest.mark.parametrize("how", ["header", "query"])
def test_replay_after_reconnect_delivers_exactly_the_missed_events_in_order(live_app, how):
    app, server = live_app
    ann, bob, _ = members(app)
    send(app, ann, bob, "before")
    resume_from = latest(app, bob)
    bodies = [f"missed {i}" for i in range(3)]
    for body in bodies:
        send(app, ann, bob, body)
    if how == "header":
        stream = open_stream(server, app, bob, headers={"Last-Event-ID": str(resume_from)})
    else:
        stream = open_stream(server, app, bob, path=f"/stream?last_event_id={resume_from}")
    try:
        replayed = stream.events(3)
        assert [int(e.id) for e in replayed] == sorted(int(e.id) for e in replayed)
        assert all(int(e.id) > resume_from for e in replayed)
        for event, body in zip(replayed, bodies, strict=True):
            assert body in event.data
        assert stream.next(timeout=1.5) is None  # nothing more, nothing doubled
        send(app, ann, bob, "live after replay")
        event = stream.next(timeout=5)
        assert "live after replay" in event.data and int(event.id) > int(replayed[-1].id)
    finally:
        stream.close()


def test_an_event_committed_between_subscribe_and_replay_arrives_once(live_app, monkeypatch):
    app, server = live_app
    ann, bob, cat = members(app)
    resume_from = latest(app, bob)
    original = events.since

    def since_with_a_concurrent_event(member_id, after_seq, limit=events.REPLAY_LIMIT):
        # Another request commits (and publishes) an event for Bob right now: after the
        # stream subscribed, before it reads the rows.
        worker = threading.Thread(target=lambda: send(app, ann, bob, "squeezed in"))
        worker.start()
        worker.join()
        return original(member_id, after_seq, limit)

    monkeypatch.setattr(events, "since", since_with_a_concurrent_event)
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={resume_from}")
    try:
        received = stream.events(2, timeout=2)
        assert len(received) == 1
        assert "squeezed in" in received[0].data
    finally:
        stream.close()


def test_past_the_retention_window_the_stream_asks_for_a_reload(live_app):
    app, server = live_app
    ann, bob, _ = members(app)
    send(app, ann, bob, "old news")
    old = latest(app, bob)
    with app.app_context():
        db.session.execute(db.update(Event).values(created_at=utcnow() - timedelta(days=60)))
        db.session.commit()
        assert events.prune(timedelta(days=30)) >= 1
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={old - 1}")
    try:
        event = stream.next(timeout=5)
        assert event.event == "reload"
    finally:
        stream.close()


def test_a_closed_clients_subscription_is_gone_after_the_next_keepalive(live_app):
    app, server = live_app
    _, bob, _ = members(app)
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={latest(app, bob)}")
    with app.app_context():
        channel = realtime.channel_for(bob.id)
        active = realtime.broker()
        assert active.subscriber_count(channel) == 1
    stream.close()
    deadline = time.monotonic() + 6
    with app.app_context():
        while active.subscriber_count(channel) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert active.subscriber_count(channel) == 0


def test_with_redis_down_a_send_succeeds_and_the_event_is_replayed_later(app_factory):
    app = app_factory(REDIS_URL="redis://127.0.0.1:1/0", SSE_KEEPALIVE_SECONDS=1)
    ann, bob, _ = members(app)
    resume_from = latest(app, bob)
    browser = Browser(app)
    browser.login(ann)
    page = browser.get(f"/messaging/new/{bob.handle}")
    from .factories import soup

    key = soup(page).find("input", attrs={"name": "idempotency_key"})["value"]
    response = browser.post(
        f"/messaging/new/{bob.handle}", {"body": "Redis is down", "idempotency_key": key}
    )
    assert response.status_code == 303
    with LiveServer(app) as server:
        stream = open_stream(server, app, bob, path=f"/stream?last_event_id={resume_from}")
        try:
            event = stream.next(timeout=5)
            assert "Redis is down" in event.data
        finally:
            stream.close()


def test_a_replay_coalesces_events_that_only_restate_a_thread(live_app):
    from linkmsg.services import organise

    app, server = live_app
    ann, bob, _ = members(app)
    sent = send(app, ann, bob, "mute me")
    resume_from = latest(app, bob)
    with app.app_context():
        for n in range(40):  # an abuser's toggles: each one an event for Bob
            organise.set_muted(bob.id, sent.thread_id, n % 2 == 0)
        newest = events.latest_seq(bob.id)
    assert newest == resume_from + 40
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={resume_from}")
    try:
        replayed = stream.events(40, timeout=2)
        assert [int(e.id) for e in replayed] == [newest]  # one, carrying the thread's state
        send(app, ann, bob, "after the toggles")
        event = stream.next(timeout=5)
        assert "after the toggles" in event.data and int(event.id) == newest + 1
    finally:
        stream.close()


def test_a_member_holds_at_most_the_cap_of_streams_and_the_oldest_goes(app_factory):
    app = app_factory(SSE_KEEPALIVE_SECONDS=1, SSE_STREAMS_PER_MEMBER=2)
    ann, bob, _ = members(app)
    with LiveServer(app) as server:
        first = open_stream(server, app, bob)
        second = open_stream(server, app, bob)
        try:
            assert registry(app).count(bob.id) == 2
            third = open_stream(server, app, bob)
            told = first.next(timeout=5)
            assert told is not None and told.event == "superseded"
            assert first.next(timeout=2) is None  # and the server closed it
            assert registry(app).count(bob.id) == 2
            sent = send(app, ann, bob, "to the newest two")
            for stream in (second, third):
                event = stream.next(timeout=5)
                assert f'data-message-id="{sent.message.id}"' in event.data
        finally:
            for stream in (first, second, third):
                stream.close()


def test_close_streams_ends_every_open_stream_at_once(app_factory):
    app = app_factory(SSE_KEEPALIVE_SECONDS=30)
    _, bob, cat = members(app)
    with LiveServer(app) as server:
        streams = [open_stream(server, app, bob), open_stream(server, app, cat)]
        try:
            started = time.monotonic()
            assert registry(app).count(bob.id) == registry(app).count(cat.id) == 1
            assert realtime.close_streams() >= 2  # this app's and any other's in the process
            for stream in streams:
                assert stream.next(timeout=5) is None
                assert stream.lines.get(timeout=1) is None  # the connection ended
            assert time.monotonic() - started < 5  # not at the 30 s keep-alive
        finally:
            for stream in streams:
                stream.close()


def test_an_event_whose_publish_is_lost_arrives_at_the_next_keepalive(live_app, monkeypatch):
    from linkmsg.realtime import transport

    app, server = live_app
    ann, bob, _ = members(app)
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={latest(app, bob)}")
    try:
        # The transport swallows this one publish, as a Redis that drops it would.
        cls = type(app.extensions[transport.EXTENSION])
        monkeypatch.setattr(cls, "publish", lambda self, channel, message: None)
        monkeypatch.setattr(cls, "publish_many", lambda self, items: None)
        sent = send(app, ann, bob, "published into the void")
        monkeypatch.undo()
        event = stream.next(timeout=5)  # the keep-alive is 1 s here
        assert f'data-message-id="{sent.message.id}"' in event.data
        assert int(event.id) == latest(app, bob)
    finally:
        stream.close()


@pytest.fixture
def hung_redis():
    """A server that accepts connections and never answers: a Redis that hangs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


def test_a_hung_redis_costs_a_send_seconds_not_its_hang_and_the_event_is_replayed(
    app_factory, hung_redis
):
    app = app_factory(REDIS_URL=hung_redis, REDIS_SOCKET_TIMEOUT=0.5, SSE_KEEPALIVE_SECONDS=1)
    ann, bob, _ = members(app)
    resume_from = latest(app, bob)
    timings = []
    for body in ("first while Redis hangs", "second while Redis hangs"):
        started = time.monotonic()
        send_result = send(app, ann, bob, body)
        timings.append(time.monotonic() - started)
        assert send_result.message.id
    assert timings[0] < 5  # a publish gives up after the socket timeout
    assert timings[1] < 1  # and publishing pauses after a failure instead of waiting again
    with app.app_context():
        assert events.latest_seq(bob.id) == resume_from + 2
    # Bob's page, served by an app whose transport works, replays both.
    healthy = app_factory(SSE_KEEPALIVE_SECONDS=1)
    with LiveServer(healthy) as server:
        stream = open_stream(server, healthy, bob, path=f"/stream?last_event_id={resume_from}")
        try:
            replayed = stream.events(2, timeout=5)
            assert [int(e.id) for e in replayed] == [resume_from + 1, resume_from + 2]
            assert "first while Redis hangs" in replayed[0].data
        finally:
            stream.close()


def test_the_integrity_check_notices_a_hole_in_a_members_event_numbers(ctx):
    ann, bob, _ = members(ctx)
    for body in ("one", "two", "three"):
        send(ctx, ann, bob, body)
    assert events.sequence_problems() == []
    newest = events.latest_seq(bob.id)
    db.session.execute(db.delete(Event).where(Event.member_id == bob.id, Event.seq == newest - 1))
    db.session.commit()
    assert events.sequence_problems() == [
        f"member {bob.id}: events 1..{newest} have gaps ({newest - 1} rows kept)"
    ]


def test_lost_publishes_to_several_streams_all_arrive_at_the_next_keepalive(live_app, monkeypatch):
    """The keep-alive checks of a process's streams are batched into one query; each
    stream that is behind still gets its own missed event within one keep-alive."""
    from linkmsg.realtime import transport

    app, server = live_app
    ann, bob, cat = members(app)
    with app.app_context():
        connect(db.session.get(Member, ann.id), db.session.get(Member, cat.id))
    streams = {
        who.id: open_stream(server, app, who, path=f"/stream?last_event_id={latest(app, who)}")
        for who in (bob, cat)
    }
    try:
        cls = type(app.extensions[transport.EXTENSION])
        monkeypatch.setattr(cls, "publish", lambda self, channel, message: None)
        monkeypatch.setattr(cls, "publish_many", lambda self, items: None)
        sent = {who.id: send(app, ann, who, f"lost to {who.name}") for who in (bob, cat)}
        monkeypatch.undo()
        for who in (bob, cat):
            event = streams[who.id].next(timeout=5)  # the keep-alive is 1 s here
            assert f'data-message-id="{sent[who.id].message.id}"' in event.data
            assert int(event.id) == latest(app, who)
    finally:
        for stream in streams.values():
            stream.close()


def test_keepalive_checks_close_together_share_one_query(app):
    """Streams whose keep-alives fall within the window ask the database once for all."""
    from linkmsg.realtime.stream import Registry

    from .test_group_bulk_writes import statements

    ann, bob, cat = members(app)
    send(app, ann, bob, "one")
    send(app, bob, ann, "two")
    expected = {who.id: latest(app, who) for who in (ann, bob, cat)}
    registry_ = Registry()
    found = {}

    def check(member_id):
        with app.app_context():
            try:
                found[member_id] = registry_.newest(member_id)
            finally:
                db.session.remove()

    with app.app_context(), statements() as seen:
        threads = [threading.Thread(target=check, args=(m,)) for m in expected]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
    assert found == expected
    assert len([sql for _, sql in seen if "event_sequence" in sql]) == 1


def test_a_replay_is_one_query_and_refuses_what_it_cannot_replay_exactly(app):
    from .test_group_bulk_writes import statements

    ann, bob, _ = members(app)
    start = latest(app, bob)
    for n in range(3):
        send(app, ann, bob, f"missed {n}")
    with app.app_context():
        newcomer = make_member("Dee New")
        with statements() as seen:
            rows = events.since(bob.id, start)
        assert [row.seq for row in rows] == [start + 1, start + 2, start + 3]
        assert len(seen) == 1
        assert events.since(bob.id, start + 3) == []
        assert events.since(bob.id, start + 4) is None  # a number Bob never reached
        assert events.since(bob.id, start, limit=2) is None  # too many to replay
        assert events.since(newcomer.id, 0) == []  # no events yet: nothing to replay
        assert events.since(newcomer.id, 1) is None


def test_opening_a_stream_does_not_mark_the_member_active(live_app):
    """A stream (re)opens after a restart or an outage, for every open page at once: it
    says nothing about the member, unlike a page they load."""
    from datetime import timedelta

    app, server = live_app
    _, bob, _ = members(app)
    cookie = session_cookie(app, bob)
    earlier = utcnow() - timedelta(hours=2)
    with app.app_context():
        db.session.get(Member, bob.id).last_active_at = earlier
        db.session.commit()
    stream = EventStream(server.port, cookie=cookie)
    try:
        assert stream.status == 200
        assert "open" in stream.next(timeout=5, skip_comments=False).comments
        with app.app_context():
            assert db.session.get(Member, bob.id).last_active_at == earlier
    finally:
        stream.close()
    import http.client

    page = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    page.request("GET", "/", headers={"Cookie": f"session={cookie}"})
    assert page.getresponse().status == 200
    page.close()
    with app.app_context():
        assert db.session.get(Member, bob.id).last_active_at > earlier


def test_a_keepalive_check_the_database_cannot_answer_leaves_the_stream_open(live_app, monkeypatch):
    """In a reconnect storm every pooled connection can be busy: the check fails, and the
    stream stays open (ending it would add its client to the storm); the next check runs."""
    import sqlalchemy.exc

    app, server = live_app
    ann, bob, _ = members(app)
    stream = open_stream(server, app, bob, path=f"/stream?last_event_id={latest(app, bob)}")
    try:

        def busy(member_ids):
            raise sqlalchemy.exc.TimeoutError("QueuePool limit reached (injected)")

        monkeypatch.setattr(events, "latest_seqs", busy)
        keepalives = [stream.next(timeout=3, skip_comments=False) for _ in range(2)]
        assert all(k is not None and "keep-alive" in k.comments for k in keepalives)
        monkeypatch.undo()
        sent = send(app, ann, bob, "after the busy spell")
        event = stream.next(timeout=5)
        assert f'data-message-id="{sent.message.id}"' in event.data
    finally:
        stream.close()


def test_streams_open_through_a_gate_and_one_that_waits_too_long_is_told_to_retry(app_factory):
    # In a reconnect storm thousands of streams open at once: a few at a time use the
    # database, the others wait for a turn holding nothing, and one that waits past
    # STREAM_OPEN_WAIT_SECONDS gets an honest 503 (and retries) instead of a pool timeout.
    from linkmsg.realtime.stream import OPENING

    app = app_factory(SSE_KEEPALIVE_SECONDS=1, STREAM_OPENS_AT_ONCE=1, STREAM_OPEN_WAIT_SECONDS=1)
    ann, bob, _ = members(app)
    cookie = session_cookie(app, bob)
    with LiveServer(app) as server:
        gate = app.extensions[OPENING]
        assert gate.acquire(timeout=1)  # another stream opening
        try:
            started = time.monotonic()
            refused = EventStream(server.port, cookie=cookie)
            waited = time.monotonic() - started
            assert refused.status == 503 and refused.headers["Retry-After"] == "3"
            said = iter(lambda: refused.lines.get(timeout=5), None)  # the body, to its end
            assert "try again shortly" in " ".join(said)
            assert 0.9 < waited < 5
            refused.close()
            # A stream that waits for less than the limit opens once the turn is free.
            threading.Timer(0.3, gate.release).start()
            stream = EventStream(server.port, cookie=cookie)
        except BaseException:
            gate.release()
            raise
        try:
            assert stream.status == 200
            assert "open" in stream.next(timeout=5, skip_comments=False).comments
            sent = send(app, ann, bob, "through the gate")
            assert f'data-message-id="{sent.message.id}"' in stream.next(timeout=5).data
        finally:
            stream.close()
        # The gate is free again (every opening gave its turn back).
        assert gate.acquire(timeout=1)
        gate.release()


def test_opening_a_stream_does_not_count_as_using_the_session(live_app):
    # "Active …" on the sessions list is the session being used. A stream reopening after
    # a restart is not, and every open page does it at once: it writes nothing.
    from linkmsg.models import MemberSession

    app, server = live_app
    _, bob, _ = members(app)
    cookie = session_cookie(app, bob)
    earlier = utcnow() - timedelta(hours=2)
    with app.app_context():
        db.session.execute(db.update(MemberSession).values(last_seen_at=earlier))
        db.session.commit()
    stream = EventStream(server.port, cookie=cookie)
    try:
        assert stream.status == 200
        assert "open" in stream.next(timeout=5, skip_comments=False).comments
    finally:
        stream.close()
    with app.app_context():
        assert db.session.scalars(db.select(MemberSession.last_seen_at)).all() == [earlier]
    page = Browser(app)
    page.client.set_cookie("session", cookie)
    assert page.get("/messaging").status_code == 200
    with app.app_context():
        assert db.session.scalars(db.select(MemberSession.last_seen_at)).one() > earlier


def test_a_stream_that_fails_to_open_leaves_no_subscription_behind(app_factory, monkeypatch):
    # Subscribed, then the replay could not be read (the database busy or down): the
    # request fails, and nothing may keep a queue for that stream in the transport.
    from sqlalchemy.exc import OperationalError

    from linkmsg.realtime import broker, channel_for

    app = app_factory(SSE_KEEPALIVE_SECONDS=1)
    ann, bob, _ = members(app)
    cookie = session_cookie(app, bob)

    def down(member_id):
        raise OperationalError("SELECT", {}, Exception("the database went away"))

    monkeypatch.setattr(events, "latest_seq", down)
    with LiveServer(app) as server:
        failed = EventStream(server.port, cookie=cookie)
        try:
            assert failed.status == 503
        finally:
            failed.close()
        with app.app_context():
            assert broker().subscriber_count(channel_for(bob.id)) == 0
            # and the gate was given back
            from linkmsg.realtime.stream import OPENING

            gate = app.extensions[OPENING]
            assert all(gate.acquire(timeout=1) for _ in range(4))
