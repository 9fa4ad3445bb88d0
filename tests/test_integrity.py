"""`flask check-integrity`: OK on what the services build, and each broken invariant
named when rows are written behind the services' back."""

from datetime import timedelta

from linkmsg.extensions import db
from linkmsg.models import (
    CreditEntry,
    GroupSpan,
    Invitation,
    Label,
    Message,
    Thread,
    ThreadMember,
    utcnow,
)
from linkmsg.services import billing, groups, inmail, integrity, messaging, organise

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
    a_group(ann, bob)
    return ann, bob, sam, rae, sent.thread_id, answered.inmail.id


def a_group(ann, bob):
    """A group whose members come and go: added, left, removed, added again, renamed.
    Returns Gil and Hal, its other members, and the group's id."""
    gil, hal = make_member("Gil"), make_member("Hal")
    connect(ann, gil)
    connect(ann, hal)
    group = messaging.start_group(get_member(ann.id), [bob.id, gil.id], "Crew", "Hi all")
    groups.add(get_member(ann.id), group.thread_id, [hal.id])
    groups.leave(get_member(gil.id), group.thread_id)
    messaging.reply(get_member(hal.id), group.thread_id, "Hello from Hal")
    groups.remove(get_member(ann.id), group.thread_id, hal.id)
    groups.add(get_member(ann.id), group.thread_id, [gil.id, hal.id])
    groups.rename(get_member(bob.id), group.thread_id, "Crew 2")
    messaging.reply(get_member(gil.id), group.thread_id, "Back again")
    return gil, hal, group.thread_id


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


def test_broken_group_invariants_are_listed(ctx, runner):
    ann, bob, *_ = a_busy_network()
    _, hal, group_id = a_group(ann, bob)
    eve = make_member("Eve")

    def span_of(member):
        return db.session.scalar(
            db.select(GroupSpan)
            .where(GroupSpan.thread_id == group_id, GroupSpan.member_id == member.id)
            .order_by(GroupSpan.first_message_id.desc())
        )

    newest = db.session.get(Thread, group_id).last_message_id
    # Bob is in it, but his span was closed; Hal's second span overlaps her first.
    span_of(bob).last_message_id = newest
    first_of_hal = db.session.scalars(
        db.select(GroupSpan.first_message_id).where(
            GroupSpan.thread_id == group_id, GroupSpan.member_id == hal.id
        )
    ).first()
    span_of(hal).first_message_id = first_of_hal
    # Ann's side names another member.
    db.session.get(ThreadMember, (group_id, ann.id)).other_id = bob.id
    db.session.commit()
    # Eve, never a member, wrote in it (behind the services' back).
    message = Message(thread_id=group_id, sender_id=eve.id, body="Sneaked in")
    db.session.add(message)
    db.session.flush()
    db.session.execute(
        db.update(Thread).where(Thread.id == group_id).values(last_message_id=message.id)
    )
    db.session.execute(
        db.update(ThreadMember)
        .where(ThreadMember.thread_id == group_id, ThreadMember.active.is_(True))
        .values(last_message_id=message.id)
    )
    db.session.commit()
    code, output = check(runner)
    assert code == 1
    lines = output.splitlines()
    prefix = f"group_members: group {group_id}: member"
    expected = [
        f"{prefix} {bob.id} is in it but has 0 open spans, not the last one",
        f"{prefix} {hal.id}: spans overlap or are out of order at {first_of_hal}",
        f"{prefix} {ann.id}'s side names another member",
        f"group_members: message {message.id}: sender {eve.id} was not in group {group_id} then",
    ]
    for line in expected:
        assert line in lines, output
    assert not any(line.startswith("threads_and_sides") for line in lines), output
