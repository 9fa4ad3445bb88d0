"""Group conversations through the rendered pages, on SQLite and PostgreSQL: the New
message page, a group's header and its actions, system lines, collapsed messages, rows."""

import io
import json
import zipfile

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member, Message, Thread
from linkmsg.services import blocking, groups, messaging

from .factories import Browser, by_testid, connect, is_fragment, soup, texts


@pytest.fixture
def crew(app, member_factory):
    """Ava is connected to Ben, Cy and Dee; Eve is a stranger to everyone; Fay is
    connected to Ben only."""
    ava, ben, cy, dee, eve, fay = (
        member_factory(name=n)
        for n in ("Ava Reed", "Ben Okoro", "Cy Lam", "Dee Park", "Eve Stone", "Fay Wu")
    )
    with app.app_context():
        for other in (ben, cy, dee):
            connect(ava, other)
        connect(ben, fay)
    return ava, ben, cy, dee, eve, fay


def member(ref) -> Member:
    db.session.expire_all()
    return db.session.get(Member, ref.id)


def start(app, creator, *others, name=None, body="Hello all"):
    with app.app_context():
        return messaging.start_group(member(creator), [o.id for o in others], name, body).thread_id


def as_member(app, ref) -> Browser:
    browser = Browser(app)
    browser.login(ref)
    return browser


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def new_form(browser, path="/messaging/new") -> dict:
    page = soup(browser.get(path))
    return {"idempotency_key": page.find("input", attrs={"name": "idempotency_key"})["value"]}


# ---------------------------------------------------------------- New message page


def test_inbox_links_to_the_new_message_page_which_lists_own_connections(app, crew):
    ava, ben, cy, dee, eve, fay = crew
    browser = as_member(app, ava)
    link = by_testid(browser.get("/messaging"), "new-message")[0]
    assert link["href"] == "/messaging/new"
    page = browser.get("/messaging/new")
    assert page.status_code == 200
    page_soup = soup(page)
    options = page_soup.select('[data-testid="recipient-option"]')
    names = [page_soup.find("label", attrs={"for": o["id"]}).text for o in options]
    assert names == ["Ben Okoro", "Cy Lam", "Dee Park"]
    assert all(o["type"] == "checkbox" for o in options)
    assert page_soup.find("label", string="Group name") is not None
    assert page_soup.find("textarea", attrs={"name": "body"}) is not None


def test_the_filter_narrows_the_list_and_keeps_the_picked_people(app, crew):
    ava, ben, cy, *_ = crew
    browser = as_member(app, ava)
    page = browser.get(f"/messaging/new?q=cy&member={ben.id}&name=Team&body=Draft")
    picked = soup(page).select('[data-testid="recipient-option"]')
    assert [(int(o["value"]), o.has_attr("checked")) for o in picked] == [
        (ben.id, True),
        (cy.id, False),
    ]
    assert soup(page).find("input", attrs={"name": "name"})["value"] == "Team"
    assert soup(page).find("textarea", attrs={"name": "body"}).text == "Draft"
    # htmx: the list alone.
    fragment = browser.get(f"/messaging/new?q=dee&member={ben.id}", htmx=True)
    assert is_fragment(fragment)
    values = [int(o["value"]) for o in by_testid(fragment, "recipient-option")]
    assert values == [ben.id, crew[3].id]


def test_one_pick_opens_the_one_to_one_thread_ignoring_the_name(app, crew):
    ava, ben, *_ = crew
    browser = as_member(app, ava)
    data = new_form(browser) | {"member": [str(ben.id)], "name": "Ignored", "body": "Hi Ben"}
    response = browser.post("/messaging/new", data)
    assert response.status_code == 303
    with app.app_context():
        thread = db.session.scalars(db.select(Thread)).one()
        assert thread.kind == "ordinary" and thread.name is None
    assert response.headers["Location"].startswith(f"/messaging/t/{thread.id}")
    assert texts(browser.get(f"/messaging/t/{thread.id}"), "message-body") == ["Hi Ben"]


def test_two_picks_start_a_group_with_its_name(app, crew):
    ava, ben, cy, *_ = crew
    browser = as_member(app, ava)
    data = new_form(browser) | {
        "member": [str(ben.id), str(cy.id)],
        "name": "Launch",
        "body": "Kick-off at 10",
    }
    response = browser.post("/messaging/new", data)
    assert response.status_code == 303
    with app.app_context():
        thread = db.session.scalars(db.select(Thread)).one()
        assert thread.kind == "group" and thread.name == "Launch"
    page = browser.get(response.headers["Location"])
    assert texts(page, "group-name") == ["Launch"]
    assert texts(page, "system-message")[0].startswith("You started the group “Launch”")
    assert texts(page, "message-body") == ["Kick-off at 10"]
    # A repeated submit of the same form sends nothing more.
    again = browser.post("/messaging/new", data)
    assert again.status_code == 303
    assert count(app, Thread) == 1


@pytest.mark.parametrize(
    "picks, fields, expected",
    [
        ([], {"body": "Hi"}, ["Pick at least one person to message."]),
        (["ben", "cy"], {"body": ""}, ["Write a message or attach a file before sending."]),
        (
            ["ben", "cy"],
            {"body": "Hi", "name": "x" * 101},
            ["A group's name can be at most 100 characters (this one has 101)."],
        ),
    ],
    ids=["nobody", "no-body", "name-too-long"],
)
def test_a_refused_new_message_shows_why_and_saves_nothing(app, crew, picks, fields, expected):
    ava, ben, cy, *_ = crew
    people = {"ben": ben, "cy": cy}
    browser = as_member(app, ava)
    data = new_form(browser) | {"member": [str(people[p].id) for p in picks]} | fields
    response = browser.post("/messaging/new", data)
    assert response.status_code == 422
    assert texts(response, "form-error") == expected
    assert count(app, Thread) == 0 and count(app, Message) == 0
    # The form keeps what was written and picked.
    kept = [
        int(o["value"]) for o in by_testid(response, "recipient-option") if o.has_attr("checked")
    ]
    assert kept == [people[p].id for p in picks]


def test_every_refused_pick_is_named(app, crew):
    ava, ben, cy, dee, eve, fay = crew
    with app.app_context():
        blocking.block(ava.id, dee.id)
    browser = as_member(app, ava)
    data = new_form(browser) | {
        "member": [str(ben.id), str(dee.id), str(eve.id), str(fay.id)],
        "body": "Hi",
    }
    response = browser.post("/messaging/new", data)
    assert response.status_code == 422
    [error] = texts(response, "form-error")
    assert "You blocked Dee Park" in error
    assert "Eve Stone isn't one" in error
    assert "Fay Wu isn't one" in error
    assert count(app, Thread) == 0


# ---------------------------------------------------------------- a group's page


def test_the_header_lists_current_members_with_degrees_and_the_starters_actions(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy)
    page = as_member(app, ava).get(f"/messaging/t/{thread_id}")
    members = by_testid(page, "thread-members")[0]
    links = members.select('[data-testid="thread-member"]')
    assert [a.text for a in links] == ["Ava Reed", "Ben Okoro", "Cy Lam"]
    assert [a["href"] for a in links][1] == f"/in/{ben.handle}"
    assert [b.text for b in members.select('[data-testid="degree-badge"]')] == ["1st", "1st"]
    assert texts(page, "group-name") == ["Ben Okoro and Cy Lam"]
    assert len(by_testid(page, "remove-member")) == 2
    assert by_testid(page, "add-people") and by_testid(page, "leave-group")
    assert by_testid(page, "rename-form")
    # Ben did not start it: no Remove; Ben and Cy are not connected: 2nd degree.
    ben_page = as_member(app, ben).get(f"/messaging/t/{thread_id}")
    assert by_testid(ben_page, "remove-member") == []
    badges = by_testid(ben_page, "thread-members")[0].select('[data-testid="degree-badge"]')
    assert [b.text for b in badges] == ["1st", "2nd"]


def test_messages_in_a_group_show_their_sender_and_system_lines_stand_alone(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy, name="Launch")
    with app.app_context():
        messaging.reply(member(ben), thread_id, "From Ben")
    page = as_member(app, cy).get(f"/messaging/t/{thread_id}")
    assert texts(page, "system-message")[0].startswith("Ava Reed started the group “Launch”")
    assert texts(page, "message-sender") == ["Ava Reed", "Ben Okoro"]
    assert all(
        s.find_parent(attrs={"data-testid": "message"}) is None
        for s in by_testid(page, "system-message")
    )


def test_add_people_offers_only_own_connections_not_in_the_group(app, crew):
    ava, ben, cy, dee, eve, fay = crew
    thread_id = start(app, ava, ben, cy)
    page = as_member(app, ava).get(f"/messaging/t/{thread_id}/people")
    assert [int(o["value"]) for o in by_testid(page, "recipient-option")] == [dee.id]
    # Ben's own connections: Fay (and Ava, already in it).
    ben_page = as_member(app, ben).get(f"/messaging/t/{thread_id}/people")
    assert [int(o["value"]) for o in by_testid(ben_page, "recipient-option")] == [fay.id]


def test_adding_someone_shows_a_line_and_they_read_from_there(app, crew):
    ava, ben, cy, dee, *_ = crew
    thread_id = start(app, ava, ben, cy, body="Before Dee")
    browser = as_member(app, ava)
    response = browser.post(f"/messaging/t/{thread_id}/people", {"member": [str(dee.id)]})
    assert response.status_code == 303
    assert "You added Dee Park" in " ".join(
        texts(browser.get(f"/messaging/t/{thread_id}"), "system-message")
    )
    dee_page = as_member(app, dee).get(f"/messaging/t/{thread_id}")
    assert texts(dee_page, "message-body") == []
    assert texts(dee_page, "system-message")[0].startswith("Ava Reed added you")


def test_adding_a_stranger_is_refused_with_the_reason(app, crew):
    ava, ben, cy, dee, eve, fay = crew
    thread_id = start(app, ava, ben, cy)
    response = as_member(app, ava).post(
        f"/messaging/t/{thread_id}/people", {"member": [str(eve.id)]}
    )
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "You can only add your own connections; Eve Stone isn't one."
    ]


def test_rename_and_clear_the_name(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy)
    browser = as_member(app, ben)
    assert browser.post(f"/messaging/t/{thread_id}/rename", {"name": "Q3"}).status_code == 303
    page = browser.get(f"/messaging/t/{thread_id}")
    assert texts(page, "group-name") == ["Q3"]
    assert any(t.startswith("You renamed the group “Q3”") for t in texts(page, "system-message"))
    browser.post(f"/messaging/t/{thread_id}/rename", {"name": ""})
    ava_page = as_member(app, ava).get(f"/messaging/t/{thread_id}")
    assert any(
        t.startswith("Ben Okoro removed the group's name")
        for t in texts(ava_page, "system-message")
    )
    assert texts(ava_page, "group-name") == ["Ben Okoro and Cy Lam"]


def test_a_name_too_long_is_refused_on_the_thread_page(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy, name="Keep")
    response = as_member(app, ava).post(f"/messaging/t/{thread_id}/rename", {"name": "n" * 101})
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "A group's name can be at most 100 characters (this one has 101)."
    ]
    with app.app_context():
        assert db.session.get(Thread, thread_id).name == "Keep"


def test_leaving_makes_the_thread_read_only_without_group_actions(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy, body="Seen by Cy")
    browser = as_member(app, cy)
    assert browser.post(f"/messaging/t/{thread_id}/leave").status_code == 303
    with app.app_context():
        messaging.reply(member(ava), thread_id, "After Cy left")
    page = browser.get(f"/messaging/t/{thread_id}")
    assert texts(page, "message-body") == ["Seen by Cy"]
    assert texts(page, "reply-locked") == ["You're no longer in this conversation."]
    assert by_testid(page, "reply-form") == []
    for hook in ("add-people", "leave-group", "rename-form", "remove-member"):
        assert by_testid(page, hook) == []
    assert texts(as_member(app, ava).get(f"/messaging/t/{thread_id}"), "system-message")[
        -1
    ].startswith("Cy Lam left")
    # Anything a former member tries is refused with the reason.
    for path, form in (
        ("/people", {"member": [str(ben.id)]}),
        ("/rename", {"name": "x"}),
        ("/leave", {}),
        ("", {"body": "still here?", "idempotency_key": "former-member-1"}),
    ):
        response = browser.post(f"/messaging/t/{thread_id}{path}", form)
        assert response.status_code == 403, path
    assert texts(browser.get(f"/messaging/t/{thread_id}/people"), "refusal") == [
        "You're no longer in this conversation."
    ]


def test_the_starter_removes_a_member_and_others_may_not(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy)
    refused = as_member(app, ben).post(f"/messaging/t/{thread_id}/people/{cy.id}/remove")
    assert refused.status_code == 403
    assert texts(refused, "refusal") == [
        "Only the member who started this conversation can remove people."
    ]
    browser = as_member(app, ava)
    assert browser.post(f"/messaging/t/{thread_id}/people/{cy.id}/remove").status_code == 303
    page = browser.get(f"/messaging/t/{thread_id}")
    assert any(t.startswith("You removed Cy Lam") for t in texts(page, "system-message"))
    members = by_testid(page, "thread-members")[0]
    assert [a.text for a in members.select('[data-testid="thread-member"]')] == [
        "Ava Reed",
        "Ben Okoro",
    ]
    cy_page = as_member(app, cy).get(f"/messaging/t/{thread_id}")
    assert any(t.startswith("Ava Reed removed you") for t in texts(cy_page, "system-message"))
    assert texts(cy_page, "reply-locked") == ["You're no longer in this conversation."]


def test_a_non_member_gets_404_on_every_group_route(app, crew):
    ava, ben, cy, dee, eve, fay = crew
    thread_id = start(app, ava, ben, cy)
    browser = as_member(app, dee)
    for path in ("", "/people"):
        assert browser.get(f"/messaging/t/{thread_id}{path}").status_code == 404
    for path in ("/people", "/rename", "/leave", f"/people/{ben.id}/remove"):
        assert browser.post(f"/messaging/t/{thread_id}{path}", {"name": "x"}).status_code == 404


def test_group_routes_are_404_on_a_one_to_one_thread(app, crew):
    ava, ben, *_ = crew
    with app.app_context():
        thread_id = messaging.start(member(ava), member(ben), "Hi").thread_id
    browser = as_member(app, ava)
    assert browser.get(f"/messaging/t/{thread_id}/people").status_code == 404
    for path in ("/rename", "/leave", f"/people/{ben.id}/remove"):
        assert browser.post(f"/messaging/t/{thread_id}{path}", {"name": "x"}).status_code == 404


def test_a_blocked_members_messages_show_collapsed_to_the_blocker(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy)
    with app.app_context():
        blocking.block(cy.id, ben.id)
        sent = messaging.reply(member(ben), thread_id, "Secret from Ben").message
    page = as_member(app, cy).get(f"/messaging/t/{thread_id}")
    collapsed = page.get_data(as_text=True)
    assert "Secret from Ben" not in collapsed
    item = soup(page).find(id=f"message-{sent.id}")
    assert item["data-testid"] == "message"
    assert item.select_one('[data-testid="message-collapsed"]').text == (
        "A message from someone you blocked"
    )
    row = by_testid(as_member(app, cy).get("/messaging"), "thread-preview")[0]
    assert row.text == "A message from someone you blocked"
    # Ava did not block Ben: she reads it.
    assert "Secret from Ben" in texts(
        as_member(app, ava).get(f"/messaging/t/{thread_id}"), "message-body"
    )


# ---------------------------------------------------------------- rows, search, organise


def test_a_group_row_has_its_name_stacked_avatars_and_the_senders_preview(app, crew):
    ava, ben, cy, dee, *_ = crew
    thread_id = start(app, ava, ben, cy, dee)
    with app.app_context():
        messaging.reply(member(ben), thread_id, "Lunch?")
    row = by_testid(as_member(app, ava).get("/messaging"), "thread-row")[0]
    assert row["data-group"] == "true"
    assert row.select_one('[data-testid="thread-name"]').text == "Ben Okoro, Cy Lam and Dee Park"
    assert len(row.select('.avatar-stack [data-testid="avatar"]')) == 3
    assert row.select_one('[data-testid="thread-preview"]').text == "Ben Okoro: Lunch?"
    own = by_testid(as_member(app, ben).get("/messaging"), "thread-preview")[0]
    assert own.text == "You: Lunch?"
    with app.app_context():
        groups.leave(member(dee), thread_id)
    preview = by_testid(as_member(app, ava).get("/messaging"), "thread-preview")[0]
    assert preview.text == "Dee Park left"


def test_search_hits_in_a_group_show_its_name(app, crew):
    ava, ben, cy, *_ = crew
    start(app, ava, ben, cy, name="Launch", body="quarterly numbers")
    hits = by_testid(as_member(app, ben).get("/messaging/search?q=quarterly"), "search-result")
    assert len(hits) == 1
    assert hits[0].select_one(".thread-name").text == "Launch"


@pytest.mark.parametrize(
    "path, form, said",
    [
        ("archive", {"archived": "1"}, "Your conversation with Launch is archived."),
        ("mute", {"muted": "1"}, "Muted Launch"),
        ("unread", {}, "Your conversation with Launch is marked unread."),
    ],
)
def test_organising_a_group_names_it(app, crew, path, form, said):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy, name="Launch")
    browser = as_member(app, ben)
    response = browser.post(f"/messaging/t/{thread_id}/{path}", form)
    assert response.status_code == 303
    flashes = texts(browser.get(response.headers["Location"]), "flash")
    assert any(said in f for f in flashes)


def test_older_pages_of_a_group_stay_within_what_the_reader_may_read(app, crew):
    ava, ben, cy, dee, *_ = crew
    thread_id = start(app, ava, ben, cy, body="first")
    with app.app_context():
        for n in range(40):
            messaging.reply(member(ben), thread_id, f"before {n}")
        groups.add(member(ava), thread_id, [dee.id])
        for n in range(35):
            messaging.reply(member(ben), thread_id, f"after {n}")
    browser = as_member(app, dee)
    page = browser.get(f"/messaging/t/{thread_id}")
    older = by_testid(page, "load-older")
    assert older
    rest = browser.get(older[0]["href"], htmx=True)
    # (The older page also sends again, in place, the message that headed the page.)
    bodies = dict.fromkeys(texts(page, "message-body") + texts(rest, "message-body"))
    assert not any(b.startswith("before") or b == "first" for b in bodies)
    assert sorted(bodies) == sorted(f"after {n}" for n in range(35))


def test_a_former_members_export_holds_only_what_they_saw(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy, name="Launch", body="Seen by Cy")
    with app.app_context():
        blocking.block(cy.id, ben.id)
        messaging.reply(member(ben), thread_id, "Blocked words")
        groups.leave(member(cy), thread_id)
        messaging.reply(member(ava), thread_id, "After Cy left")
    response = as_member(app, cy).get(f"/messaging/t/{thread_id}/export")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    document = json.loads(archive.read("conversation.json"))
    bodies = [m.get("body") for m in document["messages"] if "body" in m]
    assert bodies == ["Seen by Cy", None]  # Ben's message, collapsed: no body
    assert [m.get("collapsed") for m in document["messages"] if "body" in m] == [None, True]
    assert [m["line"] for m in document["messages"] if "line" in m] == [
        "Ava Reed started the group “Launch”",
        f"{cy.name} left",
    ]
    text = archive.read("conversation.txt").decode()
    assert "After Cy left" not in text and "Blocked words" not in text
    assert "A message from someone you blocked" in text


def test_a_group_message_is_reported_with_its_sender(app, crew):
    ava, ben, cy, *_ = crew
    thread_id = start(app, ava, ben, cy)
    with app.app_context():
        sent = messaging.reply(member(ben), thread_id, "Spam here").message
    browser = as_member(app, cy)
    page = browser.get(f"/messaging/t/{thread_id}")
    item = soup(page).find(id=f"message-{sent.id}")
    assert item.select_one('[data-testid="report-message"]') is not None
    response = browser.post(f"/report/message/{sent.id}", {"reason": "spam"})
    assert response.status_code == 303
    flashes = texts(browser.get(response.headers["Location"]), "flash")
    assert any("You reported Ben Okoro" in f for f in flashes)
