"""Email notifications through the outbox, against a real SMTP server on loopback."""

import asyncio
import email
import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from linkmsg import mail
from linkmsg.extensions import db
from linkmsg.models import Member, Outbox, utcnow
from linkmsg.services import blocking, groups, messaging, outbox

from .factories import Browser, connect, make_member, texts


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, sink
    controller.stop()


@pytest.fixture
def mail_app(app_factory, smtp):
    controller, _ = smtp
    return app_factory(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, PUBLIC_URL="http://linkmsg.test"
    )


def setup_pair(app):
    with app.app_context():
        ann, bob = make_member("Ann Lee"), make_member("Bob Stone")
        connect(ann, bob)
        return ann, bob


def send(app, sender, recipient, body):
    with app.app_context():
        return messaging.start(
            db.session.get(Member, sender.id), db.session.get(Member, recipient.id), body
        )


def run_worker(app, now=None):
    with app.app_context():
        return mail.send_due(now)


def text_part(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def test_a_burst_of_messages_sends_one_email_with_both_parts(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    for body in ("First", "Second", "Third <b>bold</b>"):
        send(mail_app, ann, bob, body)
    counts = run_worker(mail_app)
    assert counts == {"sent": 1, "skipped": 0, "postponed": 0, "retry": 0}
    with mail_app.app_context():
        assert db.session.scalars(db.select(Outbox.last_error).order_by(Outbox.id)).all() == [
            None,
            "covered by an email already sent",
            "covered by an email already sent",
        ]
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["To"] == bob.email
    assert message["Subject"] == "3 new messages from Ann Lee"
    types = sorted(part.get_content_type() for part in message.walk() if not part.is_multipart())
    assert types == ["text/html", "text/plain"]
    body = text_part(message)
    assert "> Third <b>bold</b>" in body
    html = (
        next(p for p in message.walk() if p.get_content_type() == "text/html")
        .get_payload(decode=True)
        .decode()
    )
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    # Later passes send nothing more.
    assert run_worker(mail_app) == {"sent": 0, "skipped": 0, "postponed": 0, "retry": 0}
    assert len(sink.messages) == 1


def pair_with_bob_active(app):
    """Ann and Bob, Bob active on the site this very moment (also returned)."""
    ann, bob = setup_pair(app)
    active_at = utcnow()
    with app.app_context():
        db.session.get(Member, bob.id).last_active_at = active_at
        db.session.commit()
    return ann, bob, active_at


def test_an_active_member_is_emailed_once_away_if_the_message_is_still_unread(mail_app, smtp):
    _, sink = smtp
    ann, bob, active_at = pair_with_bob_active(mail_app)
    send(mail_app, ann, bob, "Are you there?")
    assert run_worker(mail_app)["postponed"] == 1
    assert sink.messages == []
    with mail_app.app_context():
        row = db.session.scalar(db.select(Outbox))
        assert (row.status, row.last_error) == ("pending", "active")
        assert row.next_attempt_at == active_at + timedelta(seconds=300)
    # Still active a minute before then: nothing is due.
    assert run_worker(mail_app, now=active_at + timedelta(seconds=240))["postponed"] == 0
    # Bob left without reading it: the email goes once he has been away 5 minutes.
    assert run_worker(mail_app, now=active_at + timedelta(seconds=301))["sent"] == 1
    assert len(sink.messages) == 1 and "Are you there?" in text_part(sink.messages[0])


def test_an_active_member_who_reads_the_message_is_not_emailed_later(mail_app, smtp):
    _, sink = smtp
    ann, bob, active_at = pair_with_bob_active(mail_app)
    sent = send(mail_app, ann, bob, "Are you there?")
    assert run_worker(mail_app)["postponed"] == 1
    with mail_app.app_context():
        messaging.mark_read(bob.id, sent.thread_id, sent.message.id)
    later = active_at + timedelta(seconds=301)
    assert run_worker(mail_app, now=later) == {
        "sent": 0,
        "skipped": 1,
        "postponed": 0,
        "retry": 0,
    }
    assert sink.messages == []
    with mail_app.app_context():
        assert db.session.scalar(db.select(Outbox.last_error)) == "already read"


def test_no_email_when_turned_off(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    with mail_app.app_context():
        db.session.get(Member, bob.id).email_notifications = False
        db.session.commit()
    send(mail_app, ann, bob, "Hello")
    run_worker(mail_app)
    assert sink.messages == []
    with mail_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)) == 0


def test_no_email_when_the_message_was_read_first(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    sent = send(mail_app, ann, bob, "Hello")
    with mail_app.app_context():
        messaging.mark_read(bob.id, sent.thread_id, sent.message.id)
    run_worker(mail_app)
    assert sink.messages == []


def test_no_email_for_a_muted_thread_and_email_again_once_unmuted(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    first = send(mail_app, ann, bob, "Hello")
    browser = Browser(mail_app)
    browser.login(bob)
    assert browser.post(f"/messaging/t/{first.thread_id}/mute", {"muted": "1"}).status_code == 303
    with mail_app.app_context():
        # Logging in made Bob active; he has been away since.
        db.session.get(Member, bob.id).last_active_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    send(mail_app, ann, bob, "Muted, so no email")
    run_worker(mail_app)
    assert sink.messages == []
    with mail_app.app_context():
        assert set(db.session.scalars(db.select(Outbox.last_error))) == {"muted"}
    browser.post(f"/messaging/t/{first.thread_id}/mute", {"muted": "0"})
    with mail_app.app_context():
        db.session.get(Member, bob.id).last_active_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    send(mail_app, ann, bob, "Unmuted now")
    run_worker(mail_app)
    assert len(sink.messages) == 1 and "Unmuted now" in text_part(sink.messages[0])


def test_one_email_per_thread_per_quiet_period(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    send(mail_app, ann, bob, "One")
    run_worker(mail_app)
    send(mail_app, ann, bob, "Two")
    run_worker(mail_app)
    assert len(sink.messages) == 1
    send(mail_app, ann, bob, "Three")
    run_worker(mail_app, now=utcnow() + timedelta(minutes=16))
    assert len(sink.messages) == 2
    assert "> Three" in text_part(sink.messages[1])


def test_an_email_that_could_not_be_sent_is_retried_not_lost(app_factory):
    port = free_port()
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    ann, bob = setup_pair(app)
    send(app, ann, bob, "Are you there?")
    assert run_worker(app) == {"sent": 0, "skipped": 0, "postponed": 0, "retry": 1}
    with app.app_context():
        row = db.session.scalar(db.select(Outbox))
        assert row.status == "pending" and row.attempts == 1
        assert row.next_attempt_at > utcnow()
        retry_at = row.next_attempt_at
    assert run_worker(app) == {"sent": 0, "skipped": 0, "postponed": 0, "retry": 0}  # not due

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert run_worker(app, now=retry_at + timedelta(seconds=1))["sent"] == 1
    finally:
        controller.stop()
    assert len(sink.messages) == 1
    with app.app_context():
        assert db.session.scalar(db.select(Outbox.status)) == "sent"


def test_the_link_in_the_email_opens_the_thread(mail_app, smtp, browser):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    send(mail_app, ann, bob, "Please review the contract")
    run_worker(mail_app)
    link = re.search(r"Reply on LinkMsg: (\S+)", text_part(sink.messages[0])).group(1)
    assert link.startswith("http://linkmsg.test/messaging/t/")
    path = link.removeprefix("http://linkmsg.test")
    from .factories import Browser

    reader = Browser(mail_app)
    assert reader.get(path).status_code == 302  # log in first
    reader.login(bob)
    page = reader.get(path)
    assert page.status_code == 200
    assert texts(page, "message-body") == ["Please review the contract"]


def test_without_smtp_the_email_is_logged(app, caplog):
    ann, bob = setup_pair(app)
    send(app, ann, bob, "Logged, not sent")
    with caplog.at_level("INFO", logger="linkmsg.mail"):
        assert run_worker(app)["sent"] == 1
    assert "Logged, not sent" in caplog.text


# ---------------------------------------------------------------- decided at send time


def block_by_recipient(ann, bob):
    blocking.block(bob.id, ann.id)


def block_by_sender(ann, bob):
    blocking.block(ann.id, bob.id)


def suspend_sender(ann, bob):
    db.session.get(Member, ann.id).suspended_at = utcnow()
    db.session.commit()


@pytest.mark.parametrize(
    ("since", "reason"),
    [
        (block_by_recipient, "blocked"),
        (block_by_sender, "blocked"),
        (suspend_sender, "sender suspended"),
    ],
)
def test_no_email_about_a_message_whose_sender_is_blocked_or_suspended_since(
    mail_app, smtp, since, reason
):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    send(mail_app, ann, bob, "Something Bob should not get by email")
    with mail_app.app_context():
        since(ann, bob)
    assert run_worker(mail_app)["skipped"] == 1
    assert sink.messages == []
    with mail_app.app_context():
        assert db.session.scalar(db.select(Outbox.last_error)) == reason


# ---------------------------------------------------------------- several workers


def test_an_email_claimed_by_a_worker_that_died_is_sent_once_the_claim_runs_out(mail_app, smtp):
    _, sink = smtp
    ann, bob = setup_pair(mail_app)
    send(mail_app, ann, bob, "Claimed, then the worker died")
    with mail_app.app_context():
        stale = outbox.claim_next()  # a worker claims the email and dies
        stale_claim = stale.next_attempt_at
    assert run_worker(mail_app) == {"sent": 0, "skipped": 0, "postponed": 0, "retry": 0}
    assert run_worker(mail_app, now=stale_claim + timedelta(seconds=1))["sent"] == 1
    assert len(sink.messages) == 1
    with mail_app.app_context():
        # The first worker, back from the dead, can no longer record anything on it.
        stale = db.session.get(Outbox, stale.id)
        sent_at = stale.sent_at
        stale.next_attempt_at = stale_claim
        db.session.expunge(stale)
        outbox.mark_failed_attempt(stale, "late")
        row = db.session.get(Outbox, stale.id)
        assert (row.status, row.sent_at, row.last_error) == ("sent", sent_at, None)


class SlowSink(Sink):
    """An SMTP server that takes a little while per email, as real ones do."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_mail_workers_send_each_email_exactly_once(app_factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    sink = SlowSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port}
    apps = [app_factory(**settings), app_factory(**settings)]
    with apps[0].app_context():
        sender = make_member("Ann Lee")
        recipients = [make_member(f"Recipient {n}") for n in range(30)]
        for recipient in recipients:
            connect(sender, recipient)
    for recipient in recipients:
        send(apps[0], sender, recipient, f"Hello {recipient.name}")
    for recipient in recipients[:10]:  # a second message: the one email covers both
        send(apps[0], sender, recipient, f"Again, {recipient.name}")

    barrier = threading.Barrier(2)
    totals = []

    def still_open() -> int:
        count = db.session.scalar(
            db.select(db.func.count())
            .select_from(Outbox)
            .where(Outbox.status.in_(("pending", "sending")))
        )
        db.session.rollback()
        return count

    def worker(app):
        """Poll as `flask mail-worker` does, until nothing is left to send."""
        with app.app_context():
            barrier.wait(timeout=10)
            done = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                counts = mail.send_due()
                for key, value in counts.items():
                    done[key] = done.get(key, 0) + value
                if not any(counts.values()):
                    if not still_open():
                        break
                    time.sleep(0.01)
            totals.append(done)
            db.session.remove()

    try:
        threads = [threading.Thread(target=worker, args=(app,)) for app in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        controller.stop()
    received = sorted(message["To"] for message in sink.messages)
    assert received == sorted(recipient.email for recipient in recipients)
    assert sum(total["sent"] for total in totals) == 30
    assert all(total["sent"] for total in totals)  # both workers did some of the work
    with apps[0].app_context():
        statuses = db.session.scalars(db.select(Outbox.status)).all()
    assert sorted(set(statuses)) == ["sent", "skipped"] and statuses.count("sent") == 30


# ---------------------------------------------------------------- group conversations


def setup_group(app):
    """Ava starts "Launch team" with Ben and Cy (all away, all wanting email)."""
    with app.app_context():
        ava, ben, cy = make_member("Ava Ames"), make_member("Ben Bell"), make_member("Cy Cole")
        connect(ava, ben)
        connect(ava, cy)
        sent = messaging.start_group(
            db.session.get(Member, ava.id), [ben.id, cy.id], "Launch team", "Kick-off"
        )
        return ava, ben, cy, sent.thread_id


def say(app, sender, thread_id, body):
    with app.app_context():
        return messaging.reply(db.session.get(Member, sender.id), thread_id, body)


def act(app, what, actor, thread_id, *args):
    """A member acts on the group: "leave", "add", "remove", "rename"."""
    with app.app_context():
        getattr(groups, what)(db.session.get(Member, actor.id), thread_id, *args)


def emails_to(sink) -> dict[str, list]:
    found: dict[str, list] = {}
    for message in sink.messages:
        found.setdefault(message["To"], []).append(message)
    return found


def test_a_group_message_emails_each_other_member_once_naming_the_group(mail_app, smtp):
    _, sink = smtp
    ava, ben, cy, thread_id = setup_group(mail_app)
    assert run_worker(mail_app)["sent"] == 2
    sent = emails_to(sink)
    assert set(sent) == {ben.email, cy.email}  # not the sender
    for member in (ben, cy):
        (message,) = sent[member.email]
        assert message["Subject"] == "New message from Ava Ames in Launch team"
        body = text_part(message)
        assert "Ava Ames sent a message in Launch team" in body
        assert "> Kick-off" in body
        assert f"http://linkmsg.test/messaging/t/{thread_id}" in body
    # A reply from Ben, then one from Cy: Ava gets one email for both, naming no
    # single sender; Ben is in his quiet period for this conversation, and Cy read
    # Ben's by replying.
    say(mail_app, ben, thread_id, "Sounds good")
    say(mail_app, cy, thread_id, "Me too")
    counts = run_worker(mail_app)
    assert counts == {"sent": 1, "skipped": 1, "postponed": 1, "retry": 0}
    (to_ava,) = emails_to(sink)[ava.email]
    assert to_ava["Subject"] == "2 new messages in Launch team"
    body = text_part(to_ava).replace("\r\n", "\n")
    assert "Ben Bell:\n> Sounds good" in body and "Cy Cole:\n> Me too" in body
    with mail_app.app_context():
        reasons = set(
            db.session.scalars(
                db.select(Outbox.last_error).where(
                    Outbox.member_id == ben.id, Outbox.status == "pending"
                )
            )
        )
        assert reasons == {"emailed about this thread lately"}


def test_a_member_who_left_gets_no_email(mail_app, smtp):
    _, sink = smtp
    ava, ben, cy, thread_id = setup_group(mail_app)
    act(mail_app, "leave", cy, thread_id)
    say(mail_app, ava, thread_id, "After Cy left")
    run_worker(mail_app)
    assert set(emails_to(sink)) == {ben.email}
    with mail_app.app_context():
        reasons = db.session.scalars(
            db.select(Outbox.last_error).where(Outbox.member_id == cy.id)
        ).all()
        assert reasons == ["left the conversation"]  # the message sent before they left


def test_a_member_who_blocked_the_sender_is_not_emailed_about_them(mail_app, smtp):
    _, sink = smtp
    ava, ben, cy, thread_id = setup_group(mail_app)
    run_worker(mail_app)
    sink.messages.clear()
    with mail_app.app_context():
        blocking.add_block(cy.id, ben.id)
        db.session.commit()
    say(mail_app, ben, thread_id, "Cy blocked me")
    run_worker(mail_app, now=utcnow() + timedelta(hours=2))
    assert set(emails_to(sink)) == {ava.email}
    with mail_app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(Outbox)
                .where(Outbox.member_id == cy.id, Outbox.status == "pending")
            )
            == 0
        )
    # The block came after the email was owed: decided when sent, it is not sent.
    sink.messages.clear()
    say(mail_app, ava, thread_id, "From Ava")
    with mail_app.app_context():
        blocking.add_block(cy.id, ava.id)
        db.session.commit()
    run_worker(mail_app, now=utcnow() + timedelta(hours=4))
    assert cy.email not in emails_to(sink)


def test_a_member_added_again_is_not_emailed_what_was_said_while_away(mail_app, smtp):
    _, sink = smtp
    ava, ben, cy, thread_id = setup_group(mail_app)
    act(mail_app, "leave", cy, thread_id)
    say(mail_app, ava, thread_id, "Said while Cy was away")
    act(mail_app, "add", ava, thread_id, [cy.id])
    say(mail_app, ben, thread_id, "Welcome back Cy")
    run_worker(mail_app)
    (to_cy,) = emails_to(sink)[cy.email]
    body = text_part(to_cy)
    assert "Welcome back Cy" in body
    assert "Said while Cy was away" not in body
