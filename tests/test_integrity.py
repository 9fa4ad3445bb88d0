"""`flask check-integrity`: OK on what the services build, and each broken invariant
named when rows are written behind the services' back."""

from datetime import timedelta

from linkmsg.extensions import db
from linkmsg.models import CreditEntry, Invitation, Label, ThreadMember, utcnow
from linkmsg.services import billing, inmail, integrity, messaging, organise

from .factories import connect, get_member, make_member


def check(runner):
    result = runner.invoke(args=["check-integrity"])
    return result.exit_code, result.output


def a_busy_network():
    """Members who message, InMail, decline, renew and label, all through the services."""
    ann, bob, sam, rae = (make_member(name) for name in ("Ann", "Bob", "Sam", "Rae"))
    connect(ann, bob)
    sent = messaging.start(get_member(ann.id), get_member(bob.id), "Hello Bob")
    messaging.reply(get_member(bob.id), sent.thread_id, "Hi Ann")
    billing.start_premium(sam.id, utcnow() - timedelta(days=65))
    answered = inmail.send(get_member(sam.id), get_member(rae.id), "Hello", "Shall we talk?")
    inmail.decline(rae.id, answered.inmail.id)
    organise.create_label(ann.id, "Clients")
    return ann, bob, sam, rae, sent.thread_id, answered.inmail.id


def test_what_the_services_build_is_consistent(ctx, runner):
    a_busy_network()
    code, output = check(runner)
    assert (code, output.splitlines()) == (0, [f"OK: {len(integrity.CHECKS)} checks passed."])


def test_each_broken_invariant_is_listed_and_the_exit_status_is_not_zero(ctx, runner):
    ann, bob, sam, rae, thread_id, inmail_id = a_busy_network()
    waiting = inmail.send(get_member(sam.id), get_member(ann.id), "Hi", "A question")
    db.session.add_all(
        [
            # A refund for an InMail nobody answered.
            CreditEntry(member_id=sam.id, delta=1, reason="refund", ref_id=waiting.inmail.id),
            # A second allowance inside the current period, taking Sam above the cap.
            CreditEntry(member_id=sam.id, delta=15, reason="allowance", created_at=utcnow()),
            CreditEntry(member_id=bob.id, delta=-3, reason="inmail"),
        ]
        + [
            Label(member_id=rae.id, name=f"L{n}", name_key=f"l{n}")
            for n in range(organise.LABELS_PER_MEMBER + 1)
        ]
    )
    db.session.execute(
        db.delete(ThreadMember).where(
            ThreadMember.thread_id == thread_id, ThreadMember.member_id == bob.id
        )
    )
    db.session.commit()
    code, output = check(runner)
    assert code == 1
    lines = output.splitlines()
    expected = [
        f"ledger_balances: member {bob.id}: balance -3 is below zero",
        f"inmail_refunds: InMail {waiting.inmail.id}: refunded but not answered",
        f"label_cap: member {rae.id}: 101 labels, above the cap of 100",
        f"threads_and_sides: thread {thread_id}: 1 member sides instead of 2",
    ]
    for line in expected:
        assert line in lines, output
    assert any(
        line.startswith(f"allowances: member {sam.id}: two allowances within one period")
        for line in lines
    ), output
    assert any(
        line.startswith("ledger_balances: ledger entry") and f"InMail {waiting.inmail.id}" in line
        for line in lines
    ), output
    assert not any(line.startswith("OK") for line in lines)


def test_invitations_over_the_weekly_cap_are_listed(app_factory):
    app = app_factory(INVITATIONS_PER_WEEK=2)
    with app.app_context():
        ann = make_member("Ann")
        others = [make_member(f"Other {n}") for n in range(3)]
        db.session.add_all(
            Invitation(
                sender_id=ann.id,
                recipient_id=other.id,
                pair_low=min(ann.id, other.id),
                pair_high=max(ann.id, other.id),
            )
            for other in others
        )
        db.session.commit()
        code, output = check(app.test_cli_runner())
    assert code == 1
    assert f"invitation_cap: member {ann.id}: 3 invitations within 7 days" in output
