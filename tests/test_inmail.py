"""Premium and InMail: plan changes, the credit ledger, the single-message rule, refunds,
stats — through the services and the rendered pages, on SQLite and PostgreSQL."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from linkmsg.extensions import db
from linkmsg.models import CreditEntry, InMail, Member, Message, Thread, utcnow
from linkmsg.services import billing, blocking, degrees, inmail, threads
from linkmsg.services.errors import Conflict, NotFound, ValidationFailed
from linkmsg.services.inmail import InMailRefused

from .factories import by_testid, connect, make_member, soup, texts


def m(ref) -> Member:
    db.session.expire_all()
    return db.session.get(Member, ref.id)


def ledger_agrees(member_id: int) -> None:
    entries = db.session.scalars(
        db.select(CreditEntry.delta).where(CreditEntry.member_id == member_id)
    ).all()
    assert billing.balance(member_id) == sum(entries)


@pytest.fixture
def premium_pair(ctx):
    sam = make_member("Sam Sender")
    rae = make_member("Rae Recipient")
    billing.start_premium(sam.id)
    return sam, rae


def send(sender, recipient, subject="Hello", body="Would you like to talk?", **kwargs):
    return inmail.send(m(sender), m(recipient), subject, body, **kwargs)


# ---------------------------------------------------------------- plan and ledger


def test_upgrade_grants_the_allowance_and_cancel_keeps_premium_to_the_end_of_the_period(ctx):
    sam = make_member("Sam")
    start = utcnow()
    billing.start_premium(sam.id, start)
    assert m(sam).plan == "premium" and billing.balance(sam.id) == 15
    with pytest.raises(Conflict):
        billing.start_premium(sam.id, start)
    billing.cancel_premium(sam.id, start + timedelta(days=3))
    billing.refresh(sam.id, start + timedelta(days=29))
    assert m(sam).plan == "premium"
    billing.refresh(sam.id, start + timedelta(days=31))
    assert m(sam).plan == "free"
    assert billing.balance(sam.id) == 15  # no renewal after the cancellation
    ledger_agrees(sam.id)


def test_allowance_rolls_over_up_to_the_cap_across_renewals(ctx):
    sam = make_member("Sam")
    start = utcnow()
    billing.start_premium(sam.id, start)
    seen = []
    for month in range(1, 5):
        billing.refresh(sam.id, start + timedelta(days=30 * month + 1))
        seen.append(billing.balance(sam.id))
    assert seen == [30, 45, 45, 45]
    ledger_agrees(sam.id)
    # Several periods at once (nobody came by): each renewal applies, still capped.
    other = make_member("Other")
    billing.start_premium(other.id, start)
    billing.renew_all(start + timedelta(days=95))
    assert billing.balance(other.id) == 45


# ---------------------------------------------------------------- sending


def test_an_inmail_costs_one_credit_and_lands_in_an_inmail_thread(premium_pair):
    sam, rae = premium_pair
    sent = send(sam, rae, subject="Opportunity", body="Hi Rae")
    assert billing.balance(sam.id) == 14
    thread = db.session.get(Thread, sent.thread_id)
    assert thread.kind == "inmail"
    assert sent.inmail.subject == "Opportunity" and sent.inmail.status == "sent"
    ledger_agrees(sam.id)


def test_no_credits_no_send_and_nothing_saved(premium_pair):
    sam, rae = premium_pair
    db.session.add(CreditEntry(member_id=sam.id, delta=-15, reason="inmail"))
    db.session.commit()
    with pytest.raises(InMailRefused) as info:
        send(sam, rae)
    assert info.value.message.startswith("You have no InMail credits left.")
    assert info.value.remedy == "credits"
    assert db.session.scalar(db.select(db.func.count()).select_from(InMail)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)) == 0


@pytest.mark.parametrize(
    ("subject", "body", "field", "message"),
    [
        ("", "Hi", "subject", "Give your InMail a subject."),
        ("s" * 201, "Hi", "subject", "The subject can be at most 200 characters."),
        ("Hello", "", "body", "Write your InMail before sending."),
        (
            "Hello",
            "b" * 1901,
            "body",
            "An InMail can be at most 1,900 characters (this one has 1,901).",
        ),
    ],
)
def test_subject_and_body_limits(premium_pair, subject, body, field, message):
    sam, rae = premium_pair
    with pytest.raises(ValidationFailed) as info:
        send(sam, rae, subject=subject, body=body)
    assert (info.value.field, info.value.message) == (field, message)
    assert billing.balance(sam.id) == 15


def test_limits_at_their_edge_are_accepted(premium_pair):
    sam, rae = premium_pair
    sent = send(sam, rae, subject="s" * 200, body="b" * 1900)
    assert len(sent.inmail.subject) == 200


def test_the_single_message_rule(premium_pair):
    sam, rae = premium_pair
    send(sam, rae)
    with pytest.raises(Conflict) as info:
        send(sam, rae, subject="Again")
    assert "waiting for an answer" in info.value.message
    assert billing.balance(sam.id) == 14


def test_reply_refunds_and_opens_the_conversation_for_both(premium_pair):
    from linkmsg.services import messaging

    sam, rae = premium_pair
    sent = send(sam, rae)
    view = threads.get_thread_for(sam.id, sent.thread_id)
    assert not messaging.reply_permission(view, m(sam)).allowed  # the sender waits
    messaging.reply(m(rae), sent.thread_id, "Sure, let's talk")
    db.session.expire_all()
    item = db.session.get(InMail, sent.inmail.id)
    assert item.status == "replied" and item.refund_entry_id is not None
    assert billing.balance(sam.id) == 15
    # An ongoing conversation, though they are not connected.
    messaging.reply(m(sam), sent.thread_id, "Great!")
    messaging.reply(m(rae), sent.thread_id, "Talk soon")
    assert not degrees.are_connected(sam.id, rae.id)
    ledger_agrees(sam.id)


def test_decline_refunds_and_tells_the_sender(premium_pair):
    from linkmsg.services import messaging

    sam, rae = premium_pair
    sent = send(sam, rae)
    inmail.decline(rae.id, sent.inmail.id)
    assert billing.balance(sam.id) == 15
    view = threads.get_thread_for(sam.id, sent.thread_id)
    permission = messaging.reply_permission(view, m(sam))
    assert permission.reason.startswith("Rae Recipient declined your InMail politely.")
    with pytest.raises(Conflict):
        inmail.decline(rae.id, sent.inmail.id)  # once only: already answered
    send(sam, rae, subject="Second try")  # answered: another InMail is possible
    assert billing.balance(sam.id) == 14


def test_a_response_after_90_days_is_not_refunded(premium_pair):
    sam, rae = premium_pair
    start = utcnow()
    sent = send(sam, rae, now=start)
    inmail.decline(rae.id, sent.inmail.id, now=start + timedelta(days=91))
    assert billing.balance(sam.id) == 14
    ledger_agrees(sam.id)


@pytest.mark.parametrize(
    "case",
    ["blocked_by_recipient", "blocked_recipient", "not_accepting", "connected", "incomplete"],
)
def test_recipients_who_cannot_receive_inmail(ctx, case):
    sam = make_member("Sam")
    rae = make_member("Rae", full=case != "incomplete")
    billing.start_premium(sam.id)
    if case == "blocked_by_recipient":
        blocking.block(rae.id, sam.id)
    elif case == "blocked_recipient":
        blocking.block(sam.id, rae.id)
    elif case == "not_accepting":
        db.session.get(Member, rae.id).accepts_inmail = False
        db.session.commit()
    elif case == "connected":
        connect(sam, rae)
    expected = {
        "blocked_by_recipient": (NotFound, "This member does not exist."),
        "blocked_recipient": (
            InMailRefused,
            "You blocked Rae. Unblock them in Settings to message.",
        ),
        "not_accepting": (InMailRefused, "Rae doesn't accept InMail."),
        "connected": (InMailRefused, "You and Rae are connected: send a message instead."),
        "incomplete": (
            InMailRefused,
            "Rae hasn't completed their profile yet, so they can't receive InMail.",
        ),
    }[case]
    with pytest.raises(expected[0]) as info:
        send(sam, rae)
    assert info.value.message == expected[1]
    assert billing.balance(sam.id) == 15


def test_a_free_member_cannot_send(ctx):
    sam, rae = make_member("Sam"), make_member("Rae")
    with pytest.raises(InMailRefused) as info:
        send(sam, rae)
    assert info.value.remedy == "premium"


def test_stats_match_what_happened(premium_pair):
    from linkmsg.services import messaging

    sam, rae = premium_pair
    others = [make_member(f"Other {i}") for i in range(3)]
    first = send(sam, rae)
    sends = [send(sam, other) for other in others]
    inmail.mark_opened(first.thread_id, rae.id)
    messaging.reply(m(rae), first.thread_id, "Hi!")
    inmail.mark_opened(sends[0].thread_id, others[0].id)
    inmail.decline(others[1].id, sends[1].inmail.id)
    stats = inmail.stats(sam.id)
    assert (stats.sent, stats.opened, stats.responded) == (4, 3, 2)
    assert stats.open_rate == 0.75 and stats.response_rate == 0.5


def test_two_concurrent_sends_with_one_credit_spend_it_once(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    with app.app_context():
        sam = make_member("Sam")
        recipients = [make_member("Rae"), make_member("Ray")]
        billing.start_premium(sam.id)
        db.session.add(CreditEntry(member_id=sam.id, delta=-14, reason="inmail"))
        db.session.commit()
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt(recipient):
        with app.app_context():
            sender, target = db.session.get(Member, sam.id), db.session.get(Member, recipient.id)
            barrier.wait(timeout=10)
            try:
                inmail.send(sender, target, "Hello", "Hi there")
                outcomes.append("sent")
            except InMailRefused as error:
                outcomes.append(error.remedy)

    workers = [threading.Thread(target=attempt, args=(r,)) for r in recipients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(outcomes) == ["credits", "sent"]
    with app.app_context():
        assert billing.balance(sam.id) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(InMail)) == 1


# ---------------------------------------------------------------- pages


def form_key(page) -> str:
    return soup(page).find("input", attrs={"name": "idempotency_key"})["value"]


def test_premium_page_start_and_cancel(app, browser, member_factory):
    sam = member_factory(name="Sam")
    browser.login(sam)
    page = browser.get("/premium")
    assert texts(page, "credits") == ["0"]
    assert "free plan" in texts(page, "plan-status")[0]
    response = browser.post("/premium/start")
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == ["Welcome to Premium! You have 15 InMail credits."]
    assert texts(page, "credits") == ["15"]
    assert [row["data-reason"] for row in by_testid(page, "ledger-entry")] == ["allowance"]
    page = browser.get(browser.post("/premium/cancel").headers["Location"])
    assert "canceled" in texts(page, "plan-status")[0]


def test_profile_shows_inmail_for_premium_and_upsell_for_free(app, browser, member_factory):
    sam, rae, fred = (
        member_factory(name="Sam"),
        member_factory(name="Rae"),
        member_factory(name="Fred"),
    )
    with app.app_context():
        billing.start_premium(sam.id)
    browser.login(sam)
    page = browser.get(f"/in/{rae.handle}")
    assert by_testid(page, "message-locked")
    assert by_testid(page, "inmail-button")[0]["href"] == f"/inmail/new/{rae.handle}"
    browser.logout()
    browser.login(fred)
    page = browser.get(f"/in/{rae.handle}")
    assert by_testid(page, "premium-upsell")[0]["href"] == "/premium"
    assert not by_testid(page, "inmail-button")


def test_free_member_is_sent_to_premium_with_the_reason(browser, member_factory):
    fred, rae = member_factory(name="Fred"), member_factory(name="Rae")
    browser.login(fred)
    response = browser.get(f"/inmail/new/{rae.handle}")
    assert response.status_code == 303 and response.headers["Location"] == "/premium"
    assert texts(browser.get("/premium"), "flash")[0].startswith("InMail is part of Premium.")


def test_connected_member_is_pointed_to_ordinary_messaging(app, browser, member_factory):
    sam, rae = member_factory(name="Sam"), member_factory(name="Rae")
    with app.app_context():
        billing.start_premium(sam.id)
        connect(sam, rae)
    browser.login(sam)
    response = browser.get(f"/inmail/new/{rae.handle}")
    assert response.status_code == 403
    assert texts(response, "form-error") == ["You and Rae are connected: send a message instead."]


def test_compose_with_a_template_send_reply_and_stats_in_html(app, browser, member_factory):
    sam, rae = member_factory(name="Sam Sender"), member_factory(name="Rae Recipient")
    with app.app_context():
        billing.start_premium(sam.id)
    browser.login(sam)
    page = browser.get(f"/inmail/new/{rae.handle}?template=job")
    assert texts(page, "credits") == ["15"]
    assert (
        soup(page).find("input", attrs={"name": "subject"})["value"]
        == "An opportunity that fits your background"
    )
    assert "Hi Rae," in soup(page).find("textarea", attrs={"name": "body"}).get_text()
    bad = browser.post(
        f"/inmail/new/{rae.handle}",
        {"subject": "", "body": "Hi", "idempotency_key": form_key(page)},
    )
    assert bad.status_code == 422
    assert texts(bad, "form-error") == ["Give your InMail a subject."]
    response = browser.post(
        f"/inmail/new/{rae.handle}",
        {
            "subject": "Role at Northwind",
            "body": "Hi Rae",
            "template": "job",
            "idempotency_key": form_key(page),
        },
    )
    assert response.status_code == 303
    thread_url = response.headers["Location"]
    again = browser.get(f"/inmail/new/{rae.handle}")
    assert again.status_code == 409

    browser.logout()
    browser.login(rae)
    inbox = browser.get("/messaging?filter=inmail")
    rows = by_testid(inbox, "thread-row")
    assert len(rows) == 1 and rows[0].select_one('[data-testid="inmail-badge"]')
    thread = browser.get(thread_url)
    assert texts(thread, "inmail-subject") == ["Role at Northwind"]
    assert by_testid(thread, "decline-inmail")
    browser.post(thread_url, {"body": "Tell me more", "idempotency_key": form_key(thread)})

    browser.logout()
    browser.login(sam)
    stats = browser.get("/inmail/stats")
    assert [
        texts(stats, t)[0]
        for t in (
            "stat-sent",
            "stat-opened",
            "stat-responded",
            "stat-open-rate",
            "stat-response-rate",
        )
    ] == [
        "1",
        "1",
        "1",
        "100%",
        "100%",
    ]
    assert texts(stats, "credits") == ["15"]
    thread = browser.get(thread_url)
    assert by_testid(thread, "reply-form")  # an ongoing conversation now


def test_decline_from_the_thread_page(app, browser, member_factory):
    sam, rae = member_factory(name="Sam Sender"), member_factory(name="Rae Recipient")
    with app.app_context():
        billing.start_premium(sam.id)
        sent = inmail.send(
            db.session.get(Member, sam.id), db.session.get(Member, rae.id), "Hi", "Hello"
        )
    browser.login(rae)
    response = browser.post(f"/inmail/{sent.inmail.id}/decline")
    assert response.status_code == 303
    browser.logout()
    browser.login(sam)
    page = browser.get(f"/messaging/t/{sent.thread_id}")
    assert texts(page, "inmail-status") == ["Declined"]
    assert texts(page, "reply-locked")[0].startswith("Rae Recipient declined your InMail politely.")


def test_only_the_recipient_can_decline(app, browser, member_factory):
    sam, rae, eve = (member_factory(name=n) for n in ("Sam", "Rae", "Eve"))
    with app.app_context():
        billing.start_premium(sam.id)
        sent = inmail.send(
            db.session.get(Member, sam.id), db.session.get(Member, rae.id), "Hi", "Hello"
        )
    for who in (sam, eve):
        browser.login(who)
        assert browser.post(f"/inmail/{sent.inmail.id}/decline").status_code == 404
        browser.logout()


def test_stats_are_for_premium_members(browser, member_factory):
    browser.login(member_factory())
    response = browser.get("/inmail/stats")
    assert response.status_code == 303 and response.headers["Location"] == "/premium"


def test_a_live_reply_updates_the_senders_open_inmail(app):
    """Sam has the InMail open; Rae replies: the status and Sam's reply box change live,
    and the reply box works (its token comes from Sam's page, not from Rae's request)."""
    from linkmsg import live
    from linkmsg.models import Event

    from .factories import Browser

    with app.app_context():
        sam, rae = make_member("Sam Sender"), make_member("Rae Recipient")
        billing.start_premium(sam.id)
        sent = send(sam, rae)
        thread_id, inmail_message_id = sent.thread_id, sent.inmail.message_id
    rae_browser = Browser(app)
    rae_browser.login(rae)
    reply = rae_browser.post(
        f"/messaging/t/{thread_id}", {"body": "Happy to talk", "idempotency_key": "live-reply-1"}
    )
    assert reply.status_code == 303
    with app.test_request_context():
        event = db.session.scalars(
            db.select(Event).where(Event.member_id == sam.id).order_by(Event.id.desc())
        ).first()
        html = live.render(event)
    page = soup_of(html)
    original = page.find(id=f"message-{inmail_message_id}")
    assert original["hx-swap-oob"] == "outerHTML"
    assert original.find(attrs={"data-testid": "inmail-status"}).get_text() == "Replied"
    box = page.find(id="reply")
    assert box["hx-swap-oob"] == "outerHTML" and box.find(attrs={"data-testid": "reply-form"})
    assert not box.find("input", attrs={"name": "csrf_token"})
    key = box.find("input", attrs={"name": "idempotency_key"})["value"]
    sam_browser = Browser(app)
    sam_browser.login(sam)
    answer = sam_browser.post(
        f"/messaging/t/{thread_id}", {"body": "Great!", "idempotency_key": key}, htmx=True
    )
    assert answer.status_code == 200
    with app.app_context():
        count = db.select(db.func.count()).select_from(Message).where(Message.body == "Great!")
        assert db.session.scalar(count) == 1


def soup_of(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "lxml")


def test_a_decline_tells_the_sender_and_updates_their_open_inmail(app):
    from linkmsg import live
    from linkmsg.models import Event

    from .factories import Browser

    with app.app_context():
        sam, rae = make_member("Sam Sender"), make_member("Rae Recipient")
        billing.start_premium(sam.id)
        sent = send(sam, rae)
        thread_id, inmail_id = sent.thread_id, sent.inmail.id
        inmail_message_id = sent.inmail.message_id
    rae_browser = Browser(app)
    rae_browser.login(rae)
    page = rae_browser.get(f"/messaging/t/{thread_id}")
    decline = by_testid(page, "decline-inmail")[0].find_parent("form")
    assert rae_browser.post(decline["action"]).status_code == 303
    with app.test_request_context():
        event = db.session.scalars(
            db.select(Event).where(Event.member_id == sam.id).order_by(Event.id.desc())
        ).first()
        assert event.kind == "inmail_answered"
        html = soup_of(live.render(event))
    original = html.find(id=f"message-{inmail_message_id}")
    assert original.find(attrs={"data-testid": "inmail-status"}).get_text() == "Declined"
    assert html.find(id="reply").find(attrs={"data-testid": "reply-locked"})
    sam_browser = Browser(app)
    sam_browser.login(sam)
    notes = sam_browser.get("/notifications")
    declined = [n for n in by_testid(notes, "notification") if n["data-kind"] == "inmail_declined"]
    assert len(declined) == 1 and "Rae Recipient declined your InMail" in declined[0].get_text()
    with app.app_context():
        assert db.session.get(InMail, inmail_id).status == "declined"
