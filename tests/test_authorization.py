"""Every route the app registers, as anonymous, as an unrelated member and as the owner.

The table below must name every (endpoint, method) in `app.url_map`: a new route that
is not listed fails `test_every_route_is_listed`, so nothing escapes this walk.
"""

import io
import shutil

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import (
    accounts,
    attachments,
    billing,
    blocking,
    groups,
    inmail,
    messaging,
    network,
    organise,
    reports,
)

from .conftest import build_app, copy_of_postgres, throwaway_postgres
from .factories import Browser, connect, make_member
from .files import image

# (endpoint, method) -> (owner, path template, form, {anon, stranger, owner})
# Owners: "ann" (a thread with Bob, an attachment, an invitation and an InMail waiting),
# "dee" (Premium). The stranger, Eve, has no tie to anyone.
ROUTES = {
    ("home.index", "GET"): ("ann", "/", None, (200, 200, 200)),
    ("health.healthz", "GET"): ("ann", "/healthz", None, (200, 200, 200)),
    ("health.ping", "GET"): ("ann", "/ping", None, (200, 200, 200)),
    ("static", "GET"): ("ann", "/static/css/app.css", None, (200, 200, 200)),
    ("auth.login", "GET"): ("ann", "/login", None, (200, 302, 302)),
    ("auth.login", "POST"): ("ann", "/login", {}, (422, 302, 302)),
    ("auth.register", "GET"): ("ann", "/register", None, (200, 302, 302)),
    ("auth.register", "POST"): ("ann", "/register", {}, (422, 302, 302)),
    ("auth.logout", "POST"): ("ann", "/logout", {}, (302, 303, 303)),
    ("auth.forgot_password", "GET"): ("ann", "/password/forgot", None, (200, 200, 200)),
    ("auth.forgot_password", "POST"): (
        "ann",
        "/password/forgot",
        {"email": "someone@example.test"},
        (200, 200, 200),
    ),
    # A reset link is its own credential: without a valid token there is nothing to see.
    ("auth.reset_password", "GET"): ("ann", "/password/reset/1-forged", None, (404, 404, 404)),
    ("auth.reset_password", "POST"): (
        "ann",
        "/password/reset/1-forged",
        {"password": "lantern meadow quartz"},
        (404, 404, 404),
    ),
    ("profiles.show", "GET"): ("ann", "/in/{bob}", None, (200, 200, 200)),
    ("profiles.avatar", "GET"): ("ann", "/in/{bob}/avatar", None, (200, 200, 200)),
    ("profiles.edit", "GET"): ("ann", "/profile/edit", None, (302, 200, 200)),
    ("profiles.edit", "POST"): ("ann", "/profile/edit", {"name": ""}, (302, 422, 422)),
    ("network.index", "GET"): ("ann", "/network", None, (302, 200, 200)),
    ("network.viewers", "GET"): ("ann", "/profile/views", None, (302, 200, 200)),
    ("network.search", "GET"): ("ann", "/search?q=bob", None, (302, 200, 200)),
    ("network.invite", "GET"): ("ann", "/network/invite/{fay}", None, (302, 200, 200)),
    ("network.invite", "POST"): ("ann", "/network/invite/{fay}", {}, (302, 303, 303)),
    ("network.answer", "POST"): (
        "ann",
        "/network/invitations/{invitation}/accept",
        {},
        (302, 404, 303),
    ),
    ("network.remove", "POST"): ("ann", "/network/connections/{bob}/remove", {}, (302, 404, 303)),
    ("notifications.index", "GET"): ("ann", "/notifications", None, (302, 200, 200)),
    ("settings.index", "GET"): ("ann", "/settings", None, (302, 200, 200)),
    ("settings.index", "POST"): ("ann", "/settings", {"show_active": "y"}, (302, 303, 303)),
    ("settings.blocked", "GET"): ("ann", "/settings/blocked", None, (302, 200, 200)),
    ("settings.password", "GET"): ("ann", "/settings/password", None, (302, 200, 200)),
    ("settings.password", "POST"): (
        "ann",
        "/settings/password",
        {"current_password": "not it", "new_password": "lantern meadow quartz"},
        (302, 422, 422),
    ),
    ("settings.end_other_sessions", "POST"): (
        "ann",
        "/settings/sessions/end-others",
        {},
        (302, 303, 303),
    ),
    ("settings.block", "GET"): ("ann", "/block/{bob}", None, (302, 200, 200)),
    ("settings.block", "POST"): ("ann", "/block/{fay}", {}, (302, 303, 303)),
    ("settings.unblock", "POST"): ("ann", "/unblock/{gus}", {}, (302, 404, 303)),
    ("messaging.inbox", "GET"): ("ann", "/messaging", None, (302, 200, 200)),
    ("messaging.thread", "GET"): ("ann", "/messaging/t/{thread}", None, (302, 404, 200)),
    ("messaging.reply", "POST"): (
        "ann",
        "/messaging/t/{thread}",
        {"body": "hi", "idempotency_key": "walk-key-01"},
        (302, 404, 303),
    ),
    ("messaging.read", "POST"): (
        "ann",
        "/messaging/t/{thread}/read",
        {"up_to": "{message}"},
        (302, 404, 204),
    ),
    ("messaging.new", "GET"): ("ann", "/messaging/new/{bob}", None, (302, 403, 303)),
    ("messaging.new", "POST"): (
        "ann",
        "/messaging/new/{bob}",
        {"body": "hi", "idempotency_key": "walk-key-02"},
        (302, 403, 303),
    ),
    ("groups.new", "GET"): ("ann", "/messaging/new?q=bob", None, (302, 200, 200)),
    # One pick: Bob is Ann's connection (their thread), not Eve's (refused).
    ("groups.new", "POST"): (
        "ann",
        "/messaging/new",
        {"member": "{bob_id}", "body": "hi", "idempotency_key": "walk-key-04"},
        (302, 422, 303),
    ),
    ("groups.people", "GET"): ("ann", "/messaging/t/{group}/people", None, (302, 404, 200)),
    ("groups.people", "POST"): (
        "ann",
        "/messaging/t/{group}/people",
        {"member": "{ivy_id}"},
        (302, 404, 303),
    ),
    ("groups.rename", "POST"): (
        "ann",
        "/messaging/t/{group}/rename",
        {"name": "Walk"},
        (302, 404, 303),
    ),
    ("groups.leave", "POST"): ("ann", "/messaging/t/{group}/leave", {}, (302, 404, 303)),
    ("groups.remove", "POST"): (
        "ann",
        "/messaging/t/{group}/people/{hal_id}/remove",
        {},
        (302, 404, 303),
    ),
    ("messaging.download", "GET"): ("ann", "/messaging/files/{attachment}", None, (302, 404, 200)),
    ("messaging.thumbnail", "GET"): (
        "ann",
        "/messaging/files/{attachment}/thumbnail",
        None,
        (302, 404, 200),
    ),
    ("organise.archive", "POST"): ("ann", "/messaging/t/{thread}/archive", {}, (302, 404, 303)),
    ("organise.mute", "POST"): ("ann", "/messaging/t/{thread}/mute", {}, (302, 404, 303)),
    ("organise.unread", "POST"): ("ann", "/messaging/t/{thread}/unread", {}, (302, 404, 303)),
    ("organise.thread_labels", "POST"): (
        "ann",
        "/messaging/t/{thread}/labels",
        {"label": "{label}"},
        (302, 404, 303),
    ),
    ("organise.labels", "GET"): ("ann", "/messaging/labels", None, (302, 200, 200)),
    ("organise.labels", "POST"): ("ann", "/messaging/labels", {"name": "Walk"}, (302, 303, 303)),
    ("organise.rename_label", "POST"): (
        "ann",
        "/messaging/labels/{label}",
        {"name": "Renamed"},
        (302, 404, 303),
    ),
    ("organise.delete_label", "POST"): (
        "ann",
        "/messaging/labels/{label}/delete",
        {},
        (302, 404, 303),
    ),
    ("organise.search_messages", "GET"): (
        "ann",
        "/messaging/search?q=private",
        None,
        (302, 200, 200),
    ),
    ("organise.export_thread", "GET"): (
        "ann",
        "/messaging/t/{thread}/export",
        None,
        (302, 404, 200),
    ),
    ("inmail.new", "GET"): ("dee", "/inmail/new/{fay}", None, (302, 303, 200)),
    ("inmail.new", "POST"): (
        "dee",
        "/inmail/new/{fay}",
        {"subject": "Hi", "body": "Hello", "idempotency_key": "walk-key-03"},
        (302, 303, 303),
    ),
    ("inmail.decline", "POST"): ("ann", "/inmail/{inmail}/decline", {}, (302, 404, 303)),
    ("inmail.stats", "GET"): ("dee", "/inmail/stats", None, (302, 303, 200)),
    ("premium.index", "GET"): ("ann", "/premium", None, (302, 200, 200)),
    ("premium.start", "POST"): ("ann", "/premium/start", {}, (302, 303, 303)),
    ("premium.cancel", "POST"): ("dee", "/premium/cancel", {}, (302, 404, 303)),
    ("stream.stream", "GET"): ("ann", "/stream?last_event_id=999999", None, (401, 200, 200)),
    ("reporting.report_member", "GET"): ("ann", "/report/{bob}", None, (302, 200, 200)),
    ("reporting.report_member", "POST"): (
        "ann",
        "/report/{bob}",
        {"reason": "spam"},
        (302, 303, 303),
    ),
    ("reporting.report_message", "GET"): (
        "ann",
        "/report/message/{message}",
        None,
        (302, 404, 200),
    ),
    ("reporting.report_message", "POST"): (
        "ann",
        "/report/message/{message}",
        {"reason": "spam"},
        (302, 404, 303),
    ),
    ("admin.reports", "GET"): ("mod", "/admin/reports", None, (302, 404, 200)),
    ("admin.resolve", "POST"): ("mod", "/admin/reports/{report}/dismiss", {}, (302, 404, 303)),
}


def test_every_route_is_listed(app):
    registered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert registered == set(ROUTES)


def build_world(app) -> dict:
    with app.app_context():
        people = {
            key: make_member(name)
            for key, name in (
                ("ann", "Ann Owner"),
                ("bob", "Bob Friend"),
                ("cat", "Cat Inviter"),
                ("dee", "Dee Premium"),
                ("eve", "Eve Stranger"),
                ("fay", "Fay Faraway"),
                ("gus", "Gus Blocked"),
                ("mod", "Mo Moderator"),
                ("hal", "Hal Member"),
                ("ivy", "Ivy Joiner"),
                ("kim", "Kim Former"),
                ("lee", "Lee Outside"),
            )
        }
        ann, bob = (db.session.get(Member, people[k].id) for k in ("ann", "bob"))
        connect(people["ann"], people["bob"])
        accounts.update_profile(
            people["bob"].id,
            accounts.ProfileInput(
                "Bob Friend",
                "Engineer",
                "Lisbon",
                "",
                avatar=attachments.Upload("me.png", io.BytesIO(image("PNG"))),
            ),
        )
        sent = messaging.start(
            bob, ann, "private", uploads=[attachments.Upload("photo.png", io.BytesIO(image("PNG")))]
        )
        invitation = network.invite(people["cat"].id, people["ann"].id).invitation.id
        billing.start_premium(people["dee"].id)
        mail = inmail.send(db.session.get(Member, people["dee"].id), ann, "Hello", "Hi Ann")
        blocking.block(people["ann"].id, people["gus"].id)
        db.session.get(Member, people["mod"].id).role = "admin"
        db.session.commit()
        report = reports.report(people["fay"].id, people["cat"].id, "spam", "selling things")
        label = organise.create_label(people["ann"].id, "Jobs")
        group = build_group(people)
        return {
            **group,
            "report": report.id,
            "label": label.id,
            "people": people,
            "thread": sent.thread_id,
            "message": sent.message.id,
            "attachment": sent.message.attachments[0].id,
            "invitation": invitation,
            "inmail": mail.inmail.id,
            **{key: ref.handle for key, ref in people.items()},
            **{f"{key}_id": ref.id for key, ref in people.items()},
        }


def build_group(people) -> dict:
    """A group Ann started with Bob, Hal and Kim; Kim left after Hal sent a file, and Hal
    sent one more after. Ivy (Ann's) and Lee (Bob's) are connections who may be added."""

    def get(key):
        return db.session.get(Member, people[key].id)

    for key in ("hal", "ivy", "kim"):
        connect(people["ann"], people[key])
    connect(people["bob"], people["lee"])
    for key in ("hal", "ivy", "kim", "lee"):
        accounts.update_profile(
            people[key].id, accounts.ProfileInput(people[key].name, "Analyst", "Porto", "")
        )
    started = messaging.start_group(
        get("ann"), [people[k].id for k in ("bob", "hal", "kim")], "Walk group", "hello"
    )
    thread_id = started.thread_id
    before = messaging.reply(
        get("hal"),
        thread_id,
        "seen by Kim",
        uploads=[attachments.Upload("before.png", io.BytesIO(image("PNG")))],
    ).message
    groups.leave(get("kim"), thread_id)
    after = messaging.reply(
        get("hal"),
        thread_id,
        "after Kim left",
        uploads=[attachments.Upload("after.png", io.BytesIO(image("PNG")))],
    ).message
    kim_label = organise.create_label(people["kim"].id, "Old")
    bob_label = organise.create_label(people["bob"].id, "Team")
    return {
        "group": thread_id,
        "group_before": before.id,
        "group_after": after.id,
        "group_file_before": before.attachments[0].id,
        "group_file_after": after.attachments[0].id,
        "kim_label": kim_label.id,
        "bob_label": bob_label.id,
    }


def _built_world(app, folder):
    """The world built once on a database, whose connections are then closed: (world,
    the database's upload folder)."""
    world = build_world(app)
    with app.app_context():
        db.engine.dispose()
    return world, folder / "uploads"


@pytest.fixture(scope="module")
def sqlite_world(sqlite_template, tmp_path_factory):
    """The world on SQLite, built once for the module: (database file, uploads, world)."""
    folder = tmp_path_factory.mktemp("world-sqlite")
    path = folder / "world.sqlite3"
    shutil.copyfile(sqlite_template, path)
    world, uploads = _built_world(build_app(f"sqlite:///{path}", folder), folder)
    return path, uploads, world


@pytest.fixture(scope="module")
def postgres_world(tmp_path_factory):
    """The world on PostgreSQL, built once for the module: (database URL, uploads, world)."""
    folder = tmp_path_factory.mktemp("world-postgresql")
    with throwaway_postgres("linkmsg_world", folder) as url:
        world, uploads = _built_world(build_app(url, folder), folder)
        yield url, uploads, world


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """This test's own copy of the world's database and uploaded files, on each backend in
    turn: every test starts from the same world, as if build_world had just run, without
    paying for building it (members, images, a thread, an InMail...) again per route."""
    if request.param == "sqlite":
        path, uploads, world = request.getfixturevalue("sqlite_world")
        shutil.copyfile(path, tmp_path / "linkmsg.sqlite3")
        shutil.copytree(uploads, tmp_path / "uploads")
        request.node.world = world
        yield f"sqlite:///{tmp_path / 'linkmsg.sqlite3'}"
        return
    url, uploads, world = request.getfixturevalue("postgres_world")
    shutil.copytree(uploads, tmp_path / "uploads")
    request.node.world = world
    with copy_of_postgres(url, "linkmsg_walk") as copy:
        yield copy


@pytest.fixture
def world(request, database_url) -> dict:
    """What build_world returned for this test's database (ids, handles, members)."""
    return request.node.world


def fill(template: str, world: dict) -> str:
    return template.format(**{k: v for k, v in world.items() if k != "people"})


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[1]} {r[0]}")
def test_route_answers_each_role_as_expected(app, world, route):
    owner, template, form, expected = ROUTES[route]
    endpoint, method = route
    path = fill(template, world)
    roles = (
        ("anon", None),
        ("stranger", world["people"]["eve"]),
        ("owner", world["people"][owner]),
    )
    for (role, member), status in zip(roles, expected, strict=True):
        browser = Browser(app)
        if member is not None:
            browser.login(member)
        if method == "GET":
            response = browser.get(path, buffered=False)
        else:
            data = {k: fill(v, world) for k, v in (form or {}).items()}
            response = browser.post(path, data)
        assert response.status_code == status, f"{role}: {method} {path} -> {response.status_code}"
        response.close()


POSTS = sorted(route for route in ROUTES if route[1] == "POST")


@pytest.mark.parametrize("route", POSTS, ids=lambda r: r[0])
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(app, world, route, htmx):
    owner, template, form, _ = ROUTES[route]
    browser = Browser(app)
    if route != ("auth.login", "POST") and route != ("auth.register", "POST"):
        browser.login(world["people"][owner])
    data = {k: fill(v, world) for k, v in (form or {}).items()}
    response = browser.post(fill(template, world), data, csrf=False, htmx=htmx)
    assert response.status_code == 400, f"{route}: {response.status_code}"


# Group conversations: every route that takes a thread, a message or a file, walked over
# the group as Eve (never in it), Kim (left it: reads what she saw, does nothing) and Bob
# (in it, did not start it). (endpoint, method, path, form, htmx, (eve, kim, bob))
GROUP_WALK = [
    ("messaging.thread", "GET", "/messaging/t/{group}", None, False, (404, 200, 200)),
    (
        "messaging.thread",
        "GET",
        "/messaging/t/{group}?before={group_after}",
        None,
        True,
        (404, 200, 200),
    ),
    (
        "messaging.reply",
        "POST",
        "/messaging/t/{group}",
        {"body": "hi", "idempotency_key": "walk-group-01"},
        False,
        (404, 403, 303),
    ),
    (
        "messaging.reply",
        "POST",
        "/messaging/t/{group}",
        {"body": "hi", "idempotency_key": "walk-group-02"},
        True,
        (404, 403, 200),
    ),
    (
        "messaging.read",
        "POST",
        "/messaging/t/{group}/read",
        {"up_to": "{group_after}"},
        False,
        (404, 204, 204),
    ),
    (
        "messaging.download",
        "GET",
        "/messaging/files/{group_file_before}",
        None,
        False,
        (404, 200, 200),
    ),
    (
        "messaging.download",
        "GET",
        "/messaging/files/{group_file_after}",
        None,
        False,
        (404, 404, 200),
    ),
    (
        "messaging.thumbnail",
        "GET",
        "/messaging/files/{group_file_before}/thumbnail",
        None,
        False,
        (404, 200, 200),
    ),
    (
        "messaging.thumbnail",
        "GET",
        "/messaging/files/{group_file_after}/thumbnail",
        None,
        False,
        (404, 404, 200),
    ),
    ("organise.archive", "POST", "/messaging/t/{group}/archive", {}, False, (404, 303, 303)),
    ("organise.mute", "POST", "/messaging/t/{group}/mute", {}, False, (404, 303, 303)),
    ("organise.unread", "POST", "/messaging/t/{group}/unread", {}, False, (404, 303, 303)),
    ("organise.thread_labels", "POST", "/messaging/t/{group}/labels", {}, False, (404, 303, 303)),
    ("organise.export_thread", "GET", "/messaging/t/{group}/export", None, False, (404, 200, 200)),
    (
        "reporting.report_message",
        "GET",
        "/report/message/{group_before}",
        None,
        False,
        (404, 200, 200),
    ),
    (
        "reporting.report_message",
        "GET",
        "/report/message/{group_after}",
        None,
        False,
        (404, 404, 200),
    ),
    (
        "reporting.report_message",
        "POST",
        "/report/message/{group_before}",
        {"reason": "spam"},
        False,
        (404, 303, 303),
    ),
    ("groups.people", "GET", "/messaging/t/{group}/people", None, False, (404, 403, 200)),
    ("groups.people", "GET", "/messaging/t/{group}/people?q=l", None, True, (404, 403, 200)),
    (
        "groups.people",
        "POST",
        "/messaging/t/{group}/people",
        {"member": "{lee_id}"},
        False,
        (404, 403, 303),
    ),
    ("groups.rename", "POST", "/messaging/t/{group}/rename", {"name": "X"}, False, (404, 403, 303)),
    ("groups.leave", "POST", "/messaging/t/{group}/leave", {}, False, (404, 403, 303)),
    (
        "groups.remove",
        "POST",
        "/messaging/t/{group}/people/{hal_id}/remove",
        {},
        False,
        (404, 403, 403),
    ),
]


def test_every_route_on_a_thread_message_or_file_is_walked_over_a_group():
    on_a_thread = {
        route
        for route, (_, path, _, _) in ROUTES.items()
        if any(key in path for key in ("{thread}", "{message}", "{attachment}", "{group}"))
    }
    assert on_a_thread <= {(endpoint, method) for endpoint, method, *_ in GROUP_WALK}


@pytest.mark.parametrize(
    "case", GROUP_WALK, ids=lambda c: f"{c[1]} {c[0]} {c[2]}{' htmx' if c[4] else ''}"
)
def test_group_routes_answer_non_members_former_members_and_members(app, world, case):
    endpoint, method, template, form, htmx, expected = case
    path = fill(template, world)
    for role, status in zip(("eve", "kim", "bob"), expected, strict=True):
        browser = Browser(app)
        browser.login(world["people"][role])
        if method == "GET":
            response = browser.get(path, htmx=htmx, buffered=False)
        else:
            data = {k: fill(v, world) for k, v in (form or {}).items()}
            response = browser.post(path, data, htmx=htmx)
        assert response.status_code == status, f"{role}: {method} {path} -> {response.status_code}"
        response.close()
