"""Anti-spam limits: over the limit a 429 page says when to try again, and nothing is sent."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member, Message, Thread
from linkmsg.services import messaging

from .factories import Browser, connect, soup, texts


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(db.select(db.func.count()).select_from(Message)),
            db.session.scalar(db.select(db.func.count()).select_from(Thread)),
        )


def key(page) -> str:
    return soup(page).find("input", attrs={"name": "idempotency_key"})["value"]


@pytest.fixture
def limited(app_factory):
    return app_factory(MESSAGE_RATE_LIMIT="3 per minute", NEW_THREAD_RATE_LIMIT="1 per day")


def make_friends(app, *names):
    from .factories import make_member

    with app.app_context():
        members = [make_member(name) for name in names]
        for other in members[1:]:
            connect(members[0], other)
        return members


def test_messages_per_minute(limited):
    ann, bob = make_friends(limited, "Ann", "Bob")
    with limited.app_context():
        thread_id = messaging.start(
            db.session.get(Member, ann.id), db.session.get(Member, bob.id), "first"
        ).thread_id
    browser = Browser(limited)
    browser.login(ann)
    page = browser.get(f"/messaging/t/{thread_id}")
    for n in range(3):
        assert (
            browser.post(
                f"/messaging/t/{thread_id}",
                {"body": f"m{n}", "idempotency_key": f"limit-key-{n:04d}"},
            ).status_code
            == 303
        )
    before = counts(limited)
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "one too many", "idempotency_key": key(page)}
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"]
    message = texts(response, "error")[0]
    assert message.startswith("You're doing that too often. Nothing was sent; try again in ")
    assert counts(limited) == before
    fragment = browser.post(
        f"/messaging/t/{thread_id}",
        {"body": "again", "idempotency_key": "limit-key-9999"},
        htmx=True,
    )
    assert fragment.status_code == 429 and "<html" not in fragment.get_data(as_text=True)


def test_new_conversations_per_day(limited):
    ann, bob, cat = make_friends(limited, "Ann", "Bob", "Cat")
    browser = Browser(limited)
    browser.login(ann)
    first = browser.post(
        f"/messaging/new/{bob.handle}", {"body": "hi", "idempotency_key": "thread-key-0001"}
    )
    assert first.status_code == 303
    response = browser.post(
        f"/messaging/new/{cat.handle}", {"body": "hi", "idempotency_key": "thread-key-0002"}
    )
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 24 * 3600
    assert texts(response, "refusal")[0].startswith(
        "You've started 1 new conversation in the last day. Nothing was sent; "
        "you can start another after "
    )
    assert counts(limited) == (1, 1)
    # Writing again into the conversation already started is not a new one.
    again = browser.post(
        f"/messaging/new/{bob.handle}", {"body": "again", "idempotency_key": "thread-key-0003"}
    )
    assert again.status_code == 303
    assert counts(limited) == (2, 1)
