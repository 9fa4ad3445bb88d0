"""The network service: degrees, invitations, connections, search, views, presence."""

from collections import deque
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkmsg.extensions import db
from linkmsg.models import Connection, Invitation, Member, Notification, ProfileView, utcnow
from linkmsg.services import (
    blocking,
    degrees,
    network,
    notifications,
    presence,
    profile_views,
)
from linkmsg.services.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from linkmsg.statements import counted

from .factories import connect, make_member


def chain(length: int):
    members = [make_member(f"Chain {i}") for i in range(length)]
    for a, b in zip(members, members[1:], strict=False):
        connect(a, b)
    return members


# ---------------------------------------------------------------- degrees


def test_degree_named_cases(ctx):
    a, b, c, d, e = chain(5)
    assert degrees.degree(a.id, a.id) is None  # self
    assert degrees.degree(a.id, b.id) == 1  # direct
    assert degrees.degree(a.id, c.id) == 2  # shared connection
    assert degrees.degree(a.id, d.id) == 3  # three hops
    assert degrees.degree(a.id, e.id) is None  # four hops: out of network
    assert degrees.degree(e.id, a.id) is None
    assert [degrees.degree_label(degrees.degree(a.id, x.id)) for x in (b, c, d, e)] == [
        "1st",
        "2nd",
        "3rd",
        "Out of network",
    ]


def test_degrees_of_a_page_are_one_statement_whatever_its_length(app, ctx):
    """A page of 1 to 5 members asks PostgreSQL the same statement (the ids as one
    array), which it can plan once and keep; SQLite spells the list out."""
    a, b, c, d, e = chain(5)
    pages = [[b.id], [b.id, c.id], [b.id, c.id, d.id], [b.id, c.id, d.id, e.id]]
    with counted(app) as seen:
        found = [degrees.degrees(a.id, page) for page in pages]
    assert found[-1] == {b.id: 1, c.id: 2, d.id: 3, e.id: None}
    assert all(found[-1][m] == result[m] for result in found for m in result)
    texts = set(seen)
    assert len(seen) == len(pages)
    assert len(texts) == (1 if db.engine.dialect.name == "postgresql" else len(pages))


def test_degree_after_removing_a_connection(ctx):
    a, b, c, d, _ = chain(5)
    network.remove_connection(c.id, b.id)
    assert degrees.degree(a.id, b.id) == 1
    assert degrees.degree(a.id, c.id) is None
    assert degrees.degree(a.id, d.id) is None


def test_shortest_path_wins(ctx):
    a, b, c, d, _ = chain(5)
    connect(a, d)
    assert degrees.degree(a.id, d.id) == 1
    assert degrees.degree(b.id, d.id) == 2


def test_blocking_ends_the_connection_and_the_degree_follows(ctx):
    a, b, c, *_ = chain(3)
    blocking.block(a.id, b.id)
    assert degrees.degree(a.id, b.id) is None
    assert degrees.degree(a.id, c.id) is None
    blocking.unblock(a.id, b.id)
    assert degrees.degree(a.id, b.id) is None  # unblocking does not reconnect


def bfs_degree(adjacency, start, goal):
    if start == goal:
        return None
    seen, queue = {start: 0}, deque([start])
    while queue:
        node = queue.popleft()
        if seen[node] >= 3:
            continue
        for nxt in adjacency.get(node, ()):
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                if nxt == goal:
                    return seen[nxt]
                queue.append(nxt)
    return None


graphs = st.integers(min_value=2, max_value=11).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] != e[1]),
            max_size=n * 3,
        ),
    )
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(graph=graphs)
def test_degree_agrees_with_breadth_first_search_on_random_graphs(ctx, graph):
    n, edges = graph
    db.session.execute(db.delete(Connection))
    db.session.commit()
    ids = _nodes(n)
    adjacency = {}
    rows = set()
    for x, y in edges:
        adjacency.setdefault(ids[x], set()).add(ids[y])
        adjacency.setdefault(ids[y], set()).add(ids[x])
        rows |= {(ids[x], ids[y]), (ids[y], ids[x])}
    db.session.add_all(Connection(member_id=m, other_id=o) for m, o in rows)
    db.session.commit()
    for a in ids:
        batch = degrees.degrees(a, ids)
        for b in ids:
            expected = bfs_degree(adjacency, a, b)
            assert degrees.degree(a, b) == expected, (a, b, edges)
            assert batch[b] == expected, (a, b, edges)


def _nodes(n: int) -> list[int]:
    existing = list(db.session.scalars(db.select(Member.id).order_by(Member.id)))
    while len(existing) < n:
        existing.append(make_member().id)
    return existing[:n]


def test_mutual_connections_are_counted(ctx):
    a, b, c = (make_member(n) for n in ("A", "B", "C"))
    d = make_member("D")
    for shared in (b, c):
        connect(a, shared)
        connect(d, shared)
    assert degrees.mutual_count(a.id, d.id) == 2
    assert degrees.mutual_count(a.id, b.id) == 0


# ---------------------------------------------------------------- invitations


def open_invitations():
    return db.session.scalars(
        db.select(Invitation).where(Invitation.status.in_(("pending", "ignored")))
    ).all()


def test_invite_then_accept_connects_both_ways_and_notifies(ctx):
    a, b = make_member("Ann"), make_member("Bob")
    result = network.invite(a.id, b.id, "  Hello Bob \r\n")
    assert not result.connected
    assert result.invitation.note == "Hello Bob"
    assert [
        n.kind
        for n in db.session.scalars(db.select(Notification).where(Notification.member_id == b.id))
    ] == [notifications.INVITATION_RECEIVED]
    network.accept(b.id, result.invitation.id)
    assert degrees.are_connected(a.id, b.id) and degrees.are_connected(b.id, a.id)
    kinds = db.session.scalars(
        db.select(Notification.kind).where(Notification.member_id == a.id)
    ).all()
    assert kinds == [notifications.INVITATION_ACCEPTED]


def test_inviting_someone_who_invited_you_accepts_theirs(ctx):
    a, b = make_member(), make_member()
    network.invite(a.id, b.id)
    result = network.invite(b.id, a.id)
    assert result.connected
    assert degrees.are_connected(a.id, b.id)
    assert open_invitations() == []


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        ("self", ValidationFailed, "You can't invite yourself."),
        ("connected", Conflict, "You and Bob are already connected."),
        ("pending", Conflict, "Your invitation to Bob is pending."),
        ("ignored", Conflict, "Your invitation to Bob is pending."),
        ("i_blocked", Forbidden, "You blocked Bob. Unblock them in Settings to connect."),
        ("they_blocked", NotFound, "This member does not exist."),
        ("long_note", ValidationFailed, "Your note can be at most 300 characters."),
    ],
)
def test_invite_refusals(ctx, setup, error, message):
    a, b = make_member("Ann"), make_member("Bob")
    note, target = "", b.id
    if setup == "self":
        target = a.id
    elif setup == "connected":
        connect(a, b)
    elif setup in ("pending", "ignored"):
        invitation = network.invite(a.id, b.id).invitation
        if setup == "ignored":
            network.ignore(b.id, invitation.id)
    elif setup == "i_blocked":
        blocking.block(a.id, b.id)
    elif setup == "they_blocked":
        blocking.block(b.id, a.id)
    elif setup == "long_note":
        note = "x" * 301
    before = db.session.scalar(db.select(db.func.count(Invitation.id)))
    with pytest.raises(error) as info:
        network.invite(a.id, target, note)
    assert info.value.message == message
    assert db.session.scalar(db.select(db.func.count(Invitation.id))) == before


def test_note_of_exactly_300_characters_is_accepted(ctx):
    a, b = make_member(), make_member()
    assert len(network.invite(a.id, b.id, "n" * 300).invitation.note) == 300


def test_weekly_invitation_limit(ctx):
    ctx.config["INVITATIONS_PER_WEEK"] = 3
    a = make_member()
    others = [make_member() for _ in range(4)]
    for other in others[:3]:
        network.invite(a.id, other.id)
    with pytest.raises(RateLimited) as info:
        network.invite(a.id, others[3].id)
    assert "limit of 3 invitations a week" in info.value.message
    # Invitations older than a week no longer count.
    db.session.execute(db.update(Invitation).values(created_at=utcnow() - timedelta(days=8)))
    db.session.commit()
    network.invite(a.id, others[3].id)


def test_ignore_is_silent_and_withdraw_ends_it(ctx):
    a, b = make_member(), make_member()
    invitation = network.invite(a.id, b.id).invitation
    network.ignore(b.id, invitation.id)
    assert network.relationship(a.id, b.id).state == "sent"  # the sender still sees it pending
    assert network.relationship(b.id, a.id).state == "none"
    assert notifications.unread_count(b.id) == 0
    network.withdraw(a.id, invitation.id)
    assert network.relationship(a.id, b.id).state == "none"
    network.invite(a.id, b.id)  # a new invitation is possible after withdrawing


def test_only_the_recipient_accepts_or_ignores_and_only_the_sender_withdraws(ctx):
    a, b, c = make_member(), make_member(), make_member()
    invitation = network.invite(a.id, b.id).invitation
    for action, actor in (
        (network.accept, a),
        (network.accept, c),
        (network.ignore, c),
        (network.withdraw, b),
    ):
        with pytest.raises(NotFound):
            action(actor.id, invitation.id)
    assert not degrees.are_connected(a.id, b.id)


def test_withdrawn_invitation_disappears_from_the_recipient(ctx):
    a, b = make_member(), make_member()
    invitation = network.invite(a.id, b.id).invitation
    assert network.received_invitations(b.id)
    network.withdraw(a.id, invitation.id)
    assert network.received_invitations(b.id) == []
    assert notifications.unread_count(b.id) == 0
    with pytest.raises(NotFound):
        network.accept(b.id, invitation.id)


def test_block_withdraws_open_invitations(ctx):
    a, b = make_member(), make_member()
    network.invite(a.id, b.id)
    blocking.block(b.id, a.id)
    assert open_invitations() == []


def test_connections_are_removable_from_either_side(ctx):
    a, b = make_member(), make_member()
    connect(a, b)
    network.remove_connection(b.id, a.id)
    assert not degrees.are_connected(a.id, b.id) and not degrees.are_connected(b.id, a.id)
    with pytest.raises(NotFound):
        network.remove_connection(a.id, b.id)


def test_connections_page_is_keyset_paged_by_name(ctx):
    me = make_member("Me")
    names = [f"Person {chr(65 + i)}" for i in range(5)]
    for name in names:
        connect(me, make_member(name))
    first, cursor = network.connections_page(me.id, limit=2)
    second, cursor2 = network.connections_page(me.id, after=cursor, limit=2)
    third, cursor3 = network.connections_page(me.id, after=cursor2, limit=2)
    assert [m.name for m in first + second + third] == names
    assert cursor3 is None


# ---------------------------------------------------------------- search


def test_search_matches_every_word_in_name_or_headline(ctx):
    me = make_member("Searcher")
    make_member("Dana Whitfield", headline="Talent Partner at Tailspin")
    make_member("Dan Brown", headline="Author")
    make_member("Priya Raman", headline="Engineer at Tailspin")
    names = lambda q: [m.name for m in network.search(me.id, q).members]  # noqa: E731
    assert names("dan") == ["Dan Brown", "Dana Whitfield"]
    assert names("tailspin") == ["Dana Whitfield", "Priya Raman"]
    assert names("DANA tailspin") == ["Dana Whitfield"]
    assert names("   ") == []
    assert names("100%") == []
    assert names("_") == []


def test_search_leaves_out_self_suspended_and_blocked_either_way(ctx):
    me = make_member("Dana Me")
    visible = make_member("Dana Visible")
    blocker = make_member("Dana Blocker")
    blocked = make_member("Dana Blocked")
    suspended = make_member("Dana Suspended")
    blocking.block(blocker.id, me.id)
    blocking.block(me.id, blocked.id)
    db.session.get(Member, suspended.id).suspended_at = utcnow()
    db.session.commit()
    assert [m.id for m in network.search(me.id, "dana").members] == [visible.id]


# ---------------------------------------------------------------- profile views


def test_a_view_is_recorded_once_per_viewer_per_day(ctx):
    a, b = make_member(), make_member()
    assert profile_views.record_view(a.id, b.id) is True
    assert profile_views.record_view(a.id, b.id) is False
    assert profile_views.record_view(b.id, b.id) is False
    assert db.session.scalar(db.select(db.func.count(ProfileView.id))) == 1
    db.session.execute(db.update(ProfileView).values(day=(utcnow() - timedelta(days=1)).date()))
    db.session.commit()
    assert profile_views.record_view(a.id, b.id) is True


def test_a_view_across_a_block_either_way_is_not_recorded_nor_notified(ctx):
    """The block is checked inside the INSERT itself: nothing recorded, nobody told."""
    a, b, c = make_member(), make_member(), make_member()
    blocking.block(a.id, b.id)  # a blocked b
    assert profile_views.record_view(a.id, b.id) is False
    assert profile_views.record_view(b.id, a.id) is False
    assert profile_views.record_view(c.id, b.id) is True  # others are not affected
    db.session.commit()
    views = db.session.execute(db.select(ProfileView.viewer_id, ProfileView.viewed_id)).all()
    assert views == [(c.id, b.id)]
    assert (
        db.session.scalar(
            db.select(db.func.count()).where(
                Notification.kind == notifications.PROFILE_VIEWED, Notification.actor_id != c.id
            )
        )
        == 0
    )


def _views_from(viewed, count, *, days_ago=0):
    viewers = []
    for i in range(count):
        viewer = make_member(f"Viewer {days_ago}-{i}")
        when = utcnow() - timedelta(days=days_ago, minutes=count - i)
        db.session.add(
            ProfileView(viewer_id=viewer.id, viewed_id=viewed.id, day=when.date(), viewed_at=when)
        )
        viewers.append(viewer)
    db.session.commit()
    return viewers


def test_free_member_sees_last_five_viewers_premium_sees_ninety_days(ctx):
    me = make_member("Me")
    recent = _views_from(me, 7)
    _views_from(me, 2, days_ago=30)
    _views_from(me, 3, days_ago=91)
    free = profile_views.viewers(db.session.get(Member, me.id))
    assert [m.id for m, _ in free.shown] == [v.id for v in reversed(recent)][:5]
    assert free.total == 9 and free.limited

    db.session.get(Member, me.id).plan = "premium"
    db.session.commit()
    premium = profile_views.viewers(db.session.get(Member, me.id))
    assert len(premium.shown) == 9 and not premium.limited
    # Premium pages through them: every viewer once, newest first, by keyset.
    seen, after = [], None
    while True:
        page = profile_views.viewers(db.session.get(Member, me.id), after=after, limit=4)
        seen += [m.id for m, _ in page.shown]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [m.id for m, _ in premium.shown]


# ---------------------------------------------------------------- presence


def test_last_active_is_written_at_most_once_a_minute(ctx):
    member = db.session.get(Member, make_member().id)
    now = utcnow()
    assert presence.touch_active(member, now) is True
    assert presence.touch_active(member, now + timedelta(seconds=30)) is False
    assert presence.touch_active(member, now + timedelta(seconds=61)) is True


def test_active_status_labels_and_privacy(ctx):
    member = db.session.get(Member, make_member().id)
    viewer = db.session.get(Member, make_member().id)
    now = utcnow()
    member.last_active_at = now - timedelta(minutes=1)
    assert presence.active_status(member, viewer, now) == "Active now"
    member.last_active_at = now - timedelta(minutes=12)
    assert presence.active_status(member, viewer, now) == "Active 12m ago"
    member.last_active_at = now - timedelta(hours=3)
    assert presence.active_status(member, viewer, now) == "Active 3h ago"
    assert presence.active_status(member, None, now) is None  # visitors never see it
    member.show_active = False
    assert presence.active_status(member, viewer, now) is None
    member.show_active, viewer.show_active = True, False
    assert presence.active_status(member, viewer, now) is None  # shared both ways or not at all
