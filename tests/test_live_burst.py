"""Many members writing to one member at once: every event reaches each of that member's
open streams exactly once and in order, on both transports and both databases, and a
reconnect from the middle replays exactly the rest."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Event
from linkmsg.services import events

from .factories import connect, make_member
from .live import EventStream
from .parallel import in_parallel, log_in, page

SENDERS = 8
MESSAGES_EACH = 6


@pytest.fixture
def live_overrides():
    return {"MESSAGE_RATE_LIMIT": "1000 per minute", "NEW_THREAD_RATE_LIMIT": "1000 per day"}


def hidden_fields(document, testid: str) -> dict[str, str]:
    """The hidden fields (CSRF token, idempotency key) of a form on a page."""
    form = document.select_one(f'form[data-testid="{testid}"]')
    return {field["name"]: field.get("value", "") for field in form.select("input[type=hidden]")}


def seqs(received) -> list[int]:
    return [int(event.id) for event in received]


def test_a_burst_from_many_senders_arrives_once_in_order_on_every_stream(live_app):
    app, server = live_app
    with app.app_context():
        target = make_member("Tara Quinn")
        senders = [make_member(f"Sender {n}") for n in range(SENDERS)]
        for sender in senders:
            connect(sender, target)
        start = events.latest_seq(target.id)
    tara = log_in(server.url, target)
    streams = [
        EventStream(
            server.port, cookie=tara.cookies["session"], path=f"/stream?last_event_id={start}"
        )
        for _ in range(2)
    ]
    clients = [log_in(server.url, sender) for sender in senders]
    try:
        for stream in streams:
            assert stream.status == 200

        def write(client, name):
            # The first message starts the conversation; the rest are replies in it.
            path = f"/messaging/new/{target.handle}"
            form = "compose-form"
            for n in range(MESSAGES_EACH):
                fields = hidden_fields(page(client, path), form)
                response = client.post(path, data={**fields, "body": f"{name} says {n}"})
                assert response.status_code == 303, response.text[:300]
                path, form = response.headers["Location"].split("#")[0], "reply-form"

        in_parallel(
            [lambda c=c, s=s: write(c, s.name) for c, s in zip(clients, senders, strict=True)]
        )
        total = SENDERS * MESSAGES_EACH
        with app.app_context():
            assert events.latest_seq(target.id) == start + total
            rows = db.session.execute(
                db.select(Event.seq, Event.payload)
                .where(Event.member_id == target.id, Event.seq > start)
                .order_by(Event.seq)
            ).all()
        expected = list(range(start + 1, start + total + 1))
        assert [seq for seq, _ in rows] == expected  # dense: nothing skipped at commit
        with app.app_context():
            assert events.sequence_problems() == []
        for stream in streams:
            received = stream.events(total, timeout=10)
            assert seqs(received) == expected  # each once, in order
            assert stream.next(timeout=1.5) is None  # and nothing doubled after
            for event, (_, payload) in zip(received, rows, strict=True):
                assert f'data-message-id="{payload["message_id"]}"' in event.data

        middle = start + total // 2
        resumed = EventStream(
            server.port, cookie=tara.cookies["session"], headers={"Last-Event-ID": str(middle)}
        )
        try:
            rest = resumed.events(total - total // 2, timeout=10)
            assert seqs(rest) == list(range(middle + 1, start + total + 1))
            assert resumed.next(timeout=1.5) is None
        finally:
            resumed.close()
    finally:
        for stream in streams:
            stream.close()
        for client in [tara, *clients]:
            client.close()
