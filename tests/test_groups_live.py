"""Group conversations live, on both event transports: every current member's open
pages get each message (rendered for them), a member who left gets the line of their
leaving and then nothing, one added later gets events from their joining on, and a
reconnecting stream replays what it missed."""

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import groups, messaging

from .factories import connect, launch_team
from .test_live_stream import latest, open_stream


def crew(app):
    with app.app_context():
        return launch_team()


def say(app, sender, thread_id, body):
    with app.app_context():
        return messaging.reply(db.session.get(Member, sender.id), thread_id, body).message.id


def act(app, what, actor, thread_id, *args):
    with app.app_context():
        getattr(groups, what)(db.session.get(Member, actor.id), thread_id, *args)


def stream_for(server, app, member, resume_from=None):
    resume_from = latest(app, member) if resume_from is None else resume_from
    return open_stream(server, app, member, path=f"/stream?last_event_id={resume_from}")


def test_every_current_member_gets_the_message_rendered_for_them(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    streams = {m.name: stream_for(server, app, m) for m in (ava, ben, cy)}
    try:
        message_id = say(app, ben, thread_id, "Ship it Friday?")
        for name, stream in streams.items():
            event = stream.next(timeout=5)
            assert event is not None and event.event == "update", name
            assert f'data-message-id="{message_id}"' in event.data
            assert "Ship it Friday?" in event.data
            assert f'id="thread-row-{thread_id}"' in event.data  # the row moves up
            if name == "Ben Bell":  # the sender's own pages: no announcement
                assert "live-announcer" not in event.data
            else:
                assert "New message from Ben Bell in Launch team: Ship it Friday?" in event.data
                # The sender is named as Ben, not as anyone's other member.
                assert "Ben Bell" in event.data.split('data-testid="message-sender"')[1][:40]
    finally:
        for stream in streams.values():
            stream.close()


def test_a_group_without_a_name_is_announced_by_its_members(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    act(app, "rename", ava, thread_id, "")
    stream = stream_for(server, app, cy)
    try:
        say(app, ben, thread_id, "Hello")
        event = stream.next(timeout=5)
        assert "New message from Ben Bell in Ava Ames and Ben Bell: Hello" in event.data
    finally:
        stream.close()


def test_a_member_who_left_gets_the_line_of_their_leaving_and_then_nothing(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    cys, bens = stream_for(server, app, cy), stream_for(server, app, ben)
    try:
        act(app, "leave", cy, thread_id)
        for stream in (cys, bens):
            left = stream.next(timeout=5)
            assert left is not None and f'id="thread-row-{thread_id}"' in left.data
        say(app, ava, thread_id, "After Cy left")
        event = bens.next(timeout=5)
        assert "After Cy left" in event.data
        assert cys.next(timeout=1.5) is None
        act(app, "rename", ava, thread_id, "Secret plans")
        assert bens.next(timeout=5) is not None
        assert cys.next(timeout=1.5) is None
    finally:
        cys.close()
        bens.close()


def test_a_removed_member_gets_nothing_after(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    bens = stream_for(server, app, ben)
    try:
        act(app, "remove", ava, thread_id, ben.id)
        assert bens.next(timeout=5) is not None  # the line of Ben's removal
        say(app, ava, thread_id, "Without Ben")
        assert bens.next(timeout=1.5) is None
    finally:
        bens.close()


def test_a_member_added_later_gets_events_from_their_joining_on(live_app):
    app, server = live_app
    ava, ben, _, dee, thread_id = crew(app)
    say(app, ben, thread_id, "Before Dee")
    dees = stream_for(server, app, dee)
    try:
        act(app, "add", ava, thread_id, [dee.id])
        joined = dees.next(timeout=5)
        assert joined is not None and f'id="thread-row-{thread_id}"' in joined.data
        assert "Before Dee" not in joined.data
        say(app, ben, thread_id, "Welcome Dee")
        event = dees.next(timeout=5)
        assert "New message from Ben Bell in Launch team: Welcome Dee" in event.data
        assert dees.next(timeout=1.5) is None
    finally:
        dees.close()


def test_a_member_who_blocked_the_sender_gets_no_event(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    with app.app_context():
        connect(ben, cy)
        from linkmsg.services import blocking

        blocking.add_block(cy.id, ben.id)
        db.session.commit()
    cys = stream_for(server, app, cy)
    try:
        say(app, ben, thread_id, "Cy won't hear this live")
        assert cys.next(timeout=1.5) is None
        say(app, ava, thread_id, "From Ava")
        assert "From Ava" in cys.next(timeout=5).data
    finally:
        cys.close()


def test_a_reconnecting_stream_replays_the_group_events_it_missed(live_app):
    app, server = live_app
    ava, ben, cy, _, thread_id = crew(app)
    resume_from = latest(app, cy)
    bodies = ["one", "two", "three"]
    for body in bodies:
        say(app, ava, thread_id, body)
    act(app, "leave", cy, thread_id)
    say(app, ava, thread_id, "after leaving")
    stream = open_stream(server, app, cy, headers={"Last-Event-ID": str(resume_from)})
    try:
        replayed = stream.events(4)
        assert [int(e.id) for e in replayed] == list(range(resume_from + 1, resume_from + 5))
        for event, body in zip(replayed, bodies, strict=False):
            assert f"New message from Ava Ames in Launch team: {body}" in event.data
        assert stream.next(timeout=1.5) is None  # the leaving was the last
    finally:
        stream.close()
