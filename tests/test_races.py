"""Overlapping requests: each finding of a race that once minted credits, doubled a
refund or passed a cap, fired in parallel through a real server (real sockets, sessions
logged in through the form, CSRF tokens scraped from pages), then checked in the
database, in what members see, and by `flask check-integrity`.

PostgreSQL only: SQLite serialises every writer, so nothing overlaps there. Select these
alone with `pytest -m races`.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from linkmsg.extensions import db
from linkmsg.models import (
    Block,
    CreditEntry,
    InMail,
    Invitation,
    Label,
    Member,
    Message,
    Notification,
    ProfileView,
    Subscription,
    Thread,
    utcnow,
)
from linkmsg.services import billing, inmail, notifications, organise

from .factories import connect, make_member
from .parallel import (
    ENGINE_OPTIONS,
    LiveServer,
    assert_consistent,
    csrf_token,
    in_parallel,
    log_in,
    page,
    posting,
    statuses,
    tabs,
)

pytestmark = pytest.mark.races

PARALLEL = 8


@pytest.fixture
def race_app(app_factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer, so requests cannot overlap there")
    return app_factory(
        SQLALCHEMY_ENGINE_OPTIONS=ENGINE_OPTIONS,
        INVITATIONS_PER_WEEK=5,
        NEW_THREAD_RATE_LIMIT="3 per day",
        # The races are about the database deciding, not about the per-minute limits.
        ORGANISE_RATE_LIMIT="10000 per minute",
    )


@contextlib.contextmanager
def signed_in(app, member, path: str):
    """The app on a live server, the member's browser logged in there, and a CSRF token
    from `path`: (server, browser, token)."""
    with LiveServer(app) as server:
        browser = log_in(server.url, member)
        yield server, browser, csrf_token(browser, path)


def count(model, *where) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model).where(*where))


def shown(soup, testid: str) -> list[str]:
    return [el.get_text(" ", strip=True) for el in soup.select(f'[data-testid="{testid}"]')]


def post_all(clients, path: str, token: str, data: dict | None = None):
    """The same form posted from every client at once (one session's tabs, or several)."""
    return in_parallel(
        [posting(client, path, {"csrf_token": token, **(data or {})}) for client in clients]
    )


# ---------------------------------------------------------------- InMail answers


def _inmails_to(recipient, senders: int):
    """`senders` Premium members, each with one InMail waiting for `recipient`."""
    made = []
    for n in range(senders):
        sender = make_member(f"Sender {n}")
        billing.start_premium(sender.id)
        sent = inmail.send(
            db.session.get(Member, sender.id),
            db.session.get(Member, recipient.id),
            "An opportunity",
            "Would you like to talk?",
        )
        made.append((sender, sent.inmail.id, sent.thread_id))
    return made


@pytest.fixture
def waiting_inmails(race_app):
    """Rae with three InMails waiting for her (one race each), on a live server:
    (server, Rae's browser, [(sender, InMail id, thread id)])."""
    with race_app.app_context():
        rae = make_member("Rae Recipient")
        waiting = _inmails_to(rae, 3)
    with LiveServer(race_app) as server:
        yield server, log_in(server.url, rae), waiting


def refunds_of(inmail_id: int) -> int:
    return count(CreditEntry, CreditEntry.reason == "refund", CreditEntry.ref_id == inmail_id)


def test_parallel_declines_refund_an_inmail_once_and_tell_the_sender_once(
    race_app, waiting_inmails
):
    server, browser, waiting = waiting_inmails
    losers = []
    for sender, inmail_id, thread_id in waiting:
        token = csrf_token(browser, f"/messaging/t/{thread_id}")
        responses = post_all(tabs(browser, PARALLEL), f"/inmail/{inmail_id}/decline", token)
        assert statuses(responses)[303] == 1, statuses(responses)
        losers += [response.status_code for response in responses if response.status_code != 303]
        with race_app.app_context():
            assert refunds_of(inmail_id) == 1
            assert billing.balance(sender.id) == 15
            assert db.session.get(InMail, inmail_id).status == "declined"
        assert_consistent(race_app)
        sam = log_in(server.url, sender)
        assert shown(page(sam, "/premium"), "credits") == ["15"]
        kinds = [n["data-kind"] for n in page(sam, "/notifications").select("[data-kind]")]
        assert kinds.count("inmail_declined") == 1
    assert set(losers) == {409}  # "This InMail was already answered."


def test_replies_and_declines_at_once_answer_an_inmail_once(race_app, waiting_inmails):
    server, browser, waiting = waiting_inmails
    for round_, (sender, inmail_id, thread_id) in enumerate(waiting):
        token = csrf_token(browser, f"/messaging/t/{thread_id}")
        half = PARALLEL // 2
        decline = f"/inmail/{inmail_id}/decline"
        reply = f"/messaging/t/{thread_id}"
        calls = [posting(tab, decline, {"csrf_token": token}) for tab in tabs(browser, half)] + [
            posting(
                tab,
                reply,
                {
                    "csrf_token": token,
                    "body": f"Happy to talk ({n})",
                    "idempotency_key": f"race-reply-{round_}-{n:04d}",
                },
            )
            for n, tab in enumerate(tabs(browser, half))
        ]
        responses = in_parallel(calls)
        declines, replies = responses[:half], responses[half:]
        with race_app.app_context():
            assert refunds_of(inmail_id) == 1
            item = db.session.get(InMail, inmail_id)
            declined = statuses(declines)[303]
            assert set(statuses(declines)) <= {303, 409}, statuses(declines)
            assert set(statuses(replies)) <= {303, 403}, statuses(replies)
            # One answer won: a decline (then every reply was refused) or a reply (then
            # every decline found it answered); either way one refund.
            if item.status == "declined":
                assert declined == 1 and statuses(replies) == {403: half}
            else:
                assert item.status == "replied" and statuses(declines) == {409: half}
            replied = count(Message, Message.thread_id == thread_id, Message.sender_id != sender.id)
            assert replied == statuses(replies)[303]
            assert billing.balance(sender.id) == 15
            assert (
                count(
                    Notification,
                    Notification.member_id == sender.id,
                    Notification.kind == "inmail_declined",
                )
                == declined
            )
        assert_consistent(race_app)
        assert shown(page(log_in(server.url, sender), "/premium"), "credits") == ["15"]


# ---------------------------------------------------------------- Premium and its ledger


def test_parallel_pages_renew_a_plan_once_and_never_above_the_cap(race_app):
    """Three periods are due (nobody came by): 15 + 15 + 15 reaches the cap of 45, and
    every page refreshes the plan at once."""
    start = utcnow() - timedelta(days=91)
    with race_app.app_context():
        sam = make_member("Sam")
        billing.start_premium(sam.id, start)
    with LiveServer(race_app) as server:
        browser = log_in(server.url, sam)
        pages = in_parallel([lambda tab=tab: tab.get("/premium") for tab in tabs(browser, 8)])
        assert statuses(pages) == {200: 8}
        with race_app.app_context():
            assert billing.balance(sam.id) == 45
            allowances = db.session.scalars(
                db.select(CreditEntry.delta).where(CreditEntry.reason == "allowance")
            ).all()
            assert allowances == [15, 15, 15]
            renews_at = db.session.scalar(db.select(Subscription.renews_at))
            assert renews_at == start + 4 * billing.PERIOD
        assert_consistent(race_app)
        assert shown(page(browser, "/premium"), "credits") == ["45"]


def test_starting_and_canceling_premium_several_times_at_once(race_app):
    with race_app.app_context():
        sam = make_member("Sam")
    with signed_in(race_app, sam, "/premium") as (server, browser, token):
        for path in ("/premium/start", "/premium/cancel", "/premium/start"):
            responses = post_all(tabs(browser, PARALLEL), path, token)
            assert statuses(responses) == {303: 1, 409: PARALLEL - 1}, (path, statuses(responses))
            assert_consistent(race_app)
        with race_app.app_context():
            assert count(Subscription) == 1
            assert db.session.scalar(db.select(Subscription.status)) == "active"
            assert count(CreditEntry, CreditEntry.reason == "allowance") == 1
            assert billing.balance(sam.id) == 15
        premium = page(browser, "/premium")
        assert shown(premium, "credits") == ["15"]
        assert shown(premium, "cancel-premium")


# ---------------------------------------------------------------- caps


def test_parallel_invitations_stop_at_the_weekly_cap(race_app):
    with race_app.app_context():
        ann = make_member("Ann")
        others = [make_member(f"Other {n}") for n in range(14)]
    with signed_in(race_app, ann, "/network") as (server, browser, token):
        responses = in_parallel(
            [
                posting(tab, f"/network/invite/{other.handle}", {"csrf_token": token, "note": ""})
                for tab, other in zip(tabs(browser, len(others)), others, strict=True)
            ]
        )
        assert statuses(responses) == {303: 5, 429: 9}
        with race_app.app_context():
            assert count(Invitation, Invitation.sender_id == ann.id) == 5
        assert len(page(browser, "/network").select('[data-testid="sent-invitations"] li')) == 5
        assert_consistent(race_app)


def test_members_inviting_each_other_at_once_end_up_connected(race_app):
    with race_app.app_context():
        pairs = [(make_member(f"A{n}"), make_member(f"B{n}")) for n in range(4)]
    with LiveServer(race_app) as server:
        calls = []
        for a, b in pairs:
            for me, other in ((a, b), (b, a)):
                browser = log_in(server.url, me)
                token = csrf_token(browser, "/network")
                invite = f"/network/invite/{other.handle}"
                calls.append(posting(browser, invite, {"csrf_token": token, "note": ""}))
        responses = in_parallel(calls)
        assert statuses(responses) == {303: len(calls)}
        with race_app.app_context():
            for a, b in pairs:
                rows = db.session.scalars(
                    db.select(Invitation.status).where(
                        Invitation.pair_low == min(a.id, b.id),
                        Invitation.pair_high == max(a.id, b.id),
                    )
                ).all()
                assert rows == ["accepted"]
        for a, _ in pairs:
            connections = page(log_in(server.url, a), "/network")
            assert shown(connections, "connection-count")[0].startswith("1")
        assert_consistent(race_app)


def test_parallel_label_creates_stop_at_the_cap(race_app):
    cap = organise.LABELS_PER_MEMBER
    with race_app.app_context():
        ann = make_member("Ann")
        for n in range(cap - 2):
            organise.create_label(ann.id, f"Label {n:03d}")
    with signed_in(race_app, ann, "/messaging/labels") as (server, browser, token):
        for round_ in range(3):
            responses = in_parallel(
                [
                    posting(
                        tab, "/messaging/labels", {"csrf_token": token, "name": f"X{round_}-{n}"}
                    )
                    for n, tab in enumerate(tabs(browser, 10))
                ]
            )
            assert statuses(responses) == {303: 2, 422: 8}
            with race_app.app_context():
                assert count(Label, Label.member_id == ann.id) == cap
            rows = page(browser, "/messaging/labels").select('[data-testid="label-row"]')
            assert len(rows) == cap
            assert_consistent(race_app)
            with race_app.app_context():  # back to two below the cap for the next round
                for row in rows[:2]:
                    organise.delete_label(ann.id, int(row["data-label-id"]))


def test_one_label_name_created_from_many_tabs_at_once(race_app):
    with race_app.app_context():
        ann = make_member("Ann")
    with signed_in(race_app, ann, "/messaging/labels") as (server, browser, token):
        for n in range(4):
            responses = post_all(
                tabs(browser, PARALLEL), "/messaging/labels", token, {"name": f"Clients {n}"}
            )
            assert statuses(responses) == {303: 1, 422: PARALLEL - 1}
        with race_app.app_context():
            assert count(Label, Label.member_id == ann.id) == 4
        assert len(page(browser, "/messaging/labels").select('[data-testid="label-row"]')) == 4


def test_parallel_first_messages_stop_at_the_daily_cap(race_app):
    with race_app.app_context():
        ann = make_member("Ann")
        friends = [make_member(f"Friend {n}") for n in range(10)]
        for friend in friends:
            connect(friend, ann)  # each friend invites: Ann's weekly cap stays free
    with signed_in(race_app, ann, "/messaging") as (server, browser, token):
        responses = in_parallel(
            [
                posting(
                    tab,
                    f"/messaging/new/{friend.handle}",
                    {
                        "csrf_token": token,
                        "body": "Hello!",
                        "idempotency_key": f"race-first-{n:04d}",
                    },
                )
                for n, (tab, friend) in enumerate(zip(tabs(browser, 10), friends, strict=True))
            ]
        )
        assert statuses(responses) == {303: 3, 429: 7}
        assert all(r.headers.get("Retry-After") for r in responses if r.status_code == 429)
        with race_app.app_context():
            assert count(Thread) == 3 and count(Message) == 3
        assert len(page(browser, "/messaging").select('[data-testid="thread-row"]')) == 3
        assert_consistent(race_app)


# ---------------------------------------------------------------- a button clicked twice


def test_a_label_deleted_from_many_tabs_at_once_is_deleted_once(race_app):
    with race_app.app_context():
        ann = make_member("Ann")
        label_ids = [organise.create_label(ann.id, f"Old {n}").id for n in range(3)]
    with signed_in(race_app, ann, "/messaging/labels") as (server, browser, token):
        for label_id in label_ids:
            path = f"/messaging/labels/{label_id}/delete"
            responses = post_all(tabs(browser, PARALLEL), path, token)
            assert statuses(responses) == {303: 1, 404: PARALLEL - 1}
        assert page(browser, "/messaging/labels").select('[data-testid="label-row"]') == []
        assert_consistent(race_app)


def test_a_block_clicked_many_times_at_once_while_invitations_cross_it(race_app):
    """Ann blocks Bob from many tabs while Bob invites her: one block, and no open
    invitation or connection left between them, whatever came first."""
    with race_app.app_context():
        pairs = [(make_member(f"Ann {n}"), make_member(f"Bob {n}")) for n in range(3)]
    with LiveServer(race_app) as server:
        for ann, bob in pairs:
            blocker, inviter = log_in(server.url, ann), log_in(server.url, bob)
            block_token = csrf_token(blocker, f"/block/{bob.handle}")
            invite_token = csrf_token(inviter, "/network")
            block = f"/block/{bob.handle}"
            invite = f"/network/invite/{ann.handle}"
            calls = [
                posting(tab, block, {"csrf_token": block_token})
                for tab in tabs(blocker, PARALLEL - 2)
            ] + [
                posting(tab, invite, {"csrf_token": invite_token, "note": ""})
                for tab in tabs(inviter, 2)
            ]
            responses = in_parallel(calls)
            assert statuses(responses[: PARALLEL - 2]) == {303: PARALLEL - 2}
            assert set(statuses(responses[PARALLEL - 2 :])) <= {303, 404, 409}
            with race_app.app_context():
                assert count(Block, Block.blocker_id == ann.id) == 1
                assert (
                    count(
                        Invitation,
                        Invitation.sender_id == bob.id,
                        Invitation.status.in_(("pending", "ignored")),
                    )
                    == 0
                )
            assert shown(page(blocker, "/settings/blocked"), "member-row") != []
        assert_consistent(race_app)


def test_a_profile_opened_in_many_tabs_at_once_records_one_view_and_one_notification(
    race_app,
):
    """The view is one INSERT ... ON CONFLICT DO NOTHING: the tabs that lose to the unique
    (viewed, viewer, day) insert nothing and notify nobody, and every tab sees the page."""
    with race_app.app_context():
        ann, bob = make_member("Ann"), make_member("Bob")
        bob_handle = db.session.get(Member, bob.id).handle
    with signed_in(race_app, ann, "/") as (server, browser, token):
        responses = in_parallel(
            [lambda tab=tab: tab.get(f"/in/{bob_handle}") for tab in tabs(browser, PARALLEL)]
        )
        assert statuses(responses) == {200: PARALLEL}
    with race_app.app_context():
        assert count(ProfileView, ProfileView.viewed_id == bob.id) == 1
        assert (
            count(
                Notification,
                Notification.member_id == bob.id,
                Notification.kind == notifications.PROFILE_VIEWED,
            )
            == 1
        )
    assert_consistent(race_app)
