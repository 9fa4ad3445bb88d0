"""Organising threads through the rendered pages: archive, mute, mark unread, labels,
search and export — without JavaScript, and with htmx swapping the row in place."""

import io
import json
import zipfile

import pytest

from linkmsg.extensions import db
from linkmsg.models import Label, Member, Message, ThreadLabel, ThreadMember
from linkmsg.services import attachments, blocking, messaging, outbox

from .factories import Browser, by_testid, connect, is_fragment, make_member, soup, texts
from .files import image, pdf


@pytest.fixture
def trio(app):
    """Ann with two connections, Bob and Cat, and one thread with each."""
    with app.app_context():
        ann, bob, cat = make_member("Ann Lee"), make_member("Bob Stone"), make_member("Cat Moss")
        connect(ann, bob)
        connect(ann, cat)
    bob_thread = send(app, bob, ann, "Hello Ann, are you free on Monday?")
    cat_thread = send(app, cat, ann, "Quarterly planning notes attached soon")
    return ann, bob, cat, bob_thread, cat_thread


def send(app, sender, recipient, body, files=()):
    with app.app_context():
        uploads = [attachments.Upload(name, io.BytesIO(data)) for name, data in files]
        return messaging.start(
            db.session.get(Member, sender.id),
            db.session.get(Member, recipient.id),
            body,
            uploads=uploads,
        ).thread_id


def rows(response) -> dict[int, object]:
    return {int(row["data-thread-id"]): row for row in by_testid(response, "thread-row")}


def badge(response) -> int:
    found = by_testid(response, "unread-badge")
    text = found[0].get_text(strip=True) if found else ""
    return int(text) if text.isdigit() else 0


def side(app, member, thread_id) -> ThreadMember:
    with app.app_context():
        found = db.session.get(ThreadMember, (thread_id, member.id))
        db.session.expunge(found)
        return found


# ---------------------------------------------------------------- archive


def test_archive_moves_a_thread_out_of_the_list_until_a_new_message(app, browser, trio):
    ann, bob, _, bob_thread, cat_thread = trio
    browser.login(ann)
    response = browser.post(f"/messaging/t/{bob_thread}/archive", {"archived": "1"})
    assert response.status_code == 303 and response.headers["Location"] == "/messaging"
    inbox = browser.get("/messaging")
    assert list(rows(inbox)) == [cat_thread]
    assert "archived" in texts(inbox, "flash")[0]
    archived = browser.get("/messaging?filter=archived")
    assert list(rows(archived)) == [bob_thread]
    assert by_testid(archived, "archived-badge")
    assert by_testid(archived, "unarchive-button")
    # A new message from Bob brings the thread back to the top of the main list.
    send(app, bob, ann, "One more thing")
    assert list(rows(browser.get("/messaging"))) == [bob_thread, cat_thread]
    assert by_testid(browser.get("/messaging?filter=archived"), "empty")


def test_a_list_emptied_by_archiving_points_to_the_archive(app, browser, trio):
    ann, _, _, bob_thread, cat_thread = trio
    browser.login(ann)
    for thread in (bob_thread, cat_thread):
        browser.post(f"/messaging/t/{thread}/archive", {"archived": "1"})
    empty = by_testid(browser.get("/messaging"), "empty")[0]
    assert "2 archived" in empty.get_text()
    assert empty.find("a")["href"] == "/messaging?filter=archived"


def test_unarchive_brings_a_thread_back_and_archive_is_private(app, browser, trio):
    ann, bob, _, bob_thread, cat_thread = trio
    browser.login(ann)
    browser.post(f"/messaging/t/{bob_thread}/archive", {"archived": "1"})
    response = browser.post(f"/messaging/t/{bob_thread}/archive", {"archived": "0"})
    assert response.status_code == 303
    assert set(rows(browser.get("/messaging"))) == {bob_thread, cat_thread}
    # Bob's own side of the thread was never touched.
    browser.post(f"/messaging/t/{bob_thread}/archive", {"archived": "1"})
    assert side(app, bob, bob_thread).archived is False
    bobs = Browser(app)
    bobs.login(bob)
    assert bob_thread in rows(bobs.get("/messaging"))


def pressed(button) -> tuple[str, dict]:
    """What a browser (or htmx) posts when `button` is pressed: to its `formaction` or its
    form's action, the form's hidden fields (but the token) and the button's own value."""
    form = button.find_parent("form")
    fields = {i["name"]: i["value"] for i in form.find_all("input") if i["name"] != "csrf_token"}
    if button.get("name"):
        fields[button["name"]] = button["value"]
    return button.get("formaction") or form["action"], fields


def test_archive_from_a_row_with_htmx_removes_the_row_in_place(app, browser, trio):
    ann, _, _, bob_thread, _ = trio
    browser.login(ann)
    inbox = browser.get("/messaging")
    button = rows(inbox)[bob_thread].find("button", attrs={"data-testid": "archive-button"})
    action, fields = pressed(button)
    assert action == f"/messaging/t/{bob_thread}/archive"
    assert button.find_parent("form")["hx-post"] == action
    response = browser.post(action, fields, htmx=True)
    assert response.status_code == 200 and is_fragment(response)
    page = soup(response)
    assert not page.find(attrs={"data-testid": "thread-row"})  # gone from the main list
    assert page.find(id=f"thread-row-{bob_thread}")["hx-swap-oob"] == "delete"
    # Undo: a plain form that puts it back and returns to the list.
    undo = page.find(attrs={"data-testid": "undo-button"}).find_parent("form")
    undo_fields = {
        i["name"]: i["value"] for i in undo.find_all("input") if i["name"] != "csrf_token"
    }
    assert undo_fields == {"archived": "0", "next": "/messaging"}
    assert not undo.has_attr("hx-post")
    back = browser.post(undo["action"], undo_fields)
    assert back.status_code == 303 and back.headers["Location"] == "/messaging"
    assert bob_thread in rows(browser.get("/messaging"))
    browser.post(action, fields, htmx=True)  # archived again for what follows
    assert "archived" in page.find(id="flashes").get_text()  # shown, and announced
    # From the Archived list, "Move to inbox" removes it there too.
    archived = browser.get("/messaging?filter=archived", htmx=True)
    assert is_fragment(archived)
    button = rows(archived)[bob_thread].find("button", attrs={"data-testid": "unarchive-button"})
    action, fields = pressed(button)
    assert fields["list"] == "archived" and fields["archived"] == "0"
    response = browser.post(action, fields, htmx=True)
    assert not soup(response).find(attrs={"data-testid": "thread-row"})
    assert soup(response).find(id=f"filed-row-{bob_thread}")["hx-swap-oob"] == "delete"
    assert side(app, ann, bob_thread).archived is False


def test_each_button_of_a_rows_menu_does_its_own_action(app, browser, trio):
    # The row's actions are one form; each button posts to its own action with its own
    # value, with JavaScript (htmx follows `formaction`) and without.
    ann, _, _, bob_thread, _ = trio
    browser.login(ann)
    browser.get(f"/messaging/t/{bob_thread}")  # read: "Mark unread" is offered

    def press(testid, htmx):
        row = rows(browser.get("/messaging"))[bob_thread]
        action, fields = pressed(row.find("button", attrs={"data-testid": testid}))
        response = browser.post(action, fields, htmx=htmx)
        assert response.status_code == (200 if htmx else 303), testid
        return side(app, ann, bob_thread)

    assert press("mute-button", htmx=True).muted is True
    assert press("unmute-button", htmx=False).muted is False
    after = press("mark-unread-button", htmx=False)
    assert after.last_read_message_id < after.last_message_id and after.muted is False
    assert press("archive-button", htmx=False).archived is True


# ---------------------------------------------------------------- mute


def test_mute_takes_a_thread_off_the_badge_and_out_of_email(app, browser, trio):
    ann, bob, _, bob_thread, cat_thread = trio
    browser.login(ann)
    assert badge(browser.get("/messaging")) == 2
    response = browser.post(f"/messaging/t/{bob_thread}/mute", {"muted": "1"}, htmx=True)
    row = soup(response).find(attrs={"data-testid": "thread-row"})
    assert row["data-muted"] == "1" and row.find(attrs={"data-testid": "muted-badge"})
    assert row.find(attrs={"data-testid": "unmute-button"})
    inbox = browser.get("/messaging")
    assert badge(inbox) == 1  # the muted thread does not count
    assert rows(inbox)[bob_thread]["data-unread"] == "1"  # but still shows as unread
    # No email for a muted thread: the outbox decides not to send.
    send(app, bob, ann, "Are you there?")
    with app.app_context():
        from linkmsg.models import Outbox, utcnow

        pending = db.session.scalars(
            db.select(Outbox).where(Outbox.member_id == ann.id, Outbox.thread_id == bob_thread)
        ).all()
        assert pending
        later = utcnow().replace(year=utcnow().year + 1)
        assert {outbox.decide(row, later).reason for row in pending} == {"muted"}
        assert outbox.decide(
            db.session.scalars(db.select(Outbox).where(Outbox.thread_id == cat_thread)).first(),
            later,
        ).send
    # The thread still updates: the new message is there when opened.
    page = browser.get(f"/messaging/t/{bob_thread}")
    assert "Are you there?" in texts(page, "message-body")
    browser.post(f"/messaging/t/{bob_thread}/mute", {"muted": "0"})
    send(app, bob, ann, "Ping")
    assert badge(browser.get("/messaging")) == 2


# ---------------------------------------------------------------- mark unread


def test_mark_unread_counts_the_thread_again_from_the_newest_message(app, browser, trio):
    ann, bob, _, bob_thread, _ = trio
    send(app, bob, ann, "Second message")
    browser.login(ann)
    browser.get(f"/messaging/t/{bob_thread}")  # read
    inbox = browser.get("/messaging")
    assert rows(inbox)[bob_thread]["data-unread"] == "0" and badge(inbox) == 1
    response = browser.post(f"/messaging/t/{bob_thread}/unread")
    assert response.status_code == 303 and response.headers["Location"] == "/messaging"
    inbox = browser.get("/messaging")
    assert rows(inbox)[bob_thread]["data-unread"] == "1"  # the newest message only
    assert badge(inbox) == 2
    # Opening the thread reads it again.
    browser.get(f"/messaging/t/{bob_thread}")
    assert rows(browser.get("/messaging"))[bob_thread]["data-unread"] == "0"


def test_mark_unread_after_my_own_reply_still_marks_the_thread(app, browser, trio):
    ann, bob, _, bob_thread, _ = trio
    send(app, ann, bob, "My reply")
    browser.login(ann)
    response = browser.post(f"/messaging/t/{bob_thread}/unread", {"list": "all"}, htmx=True)
    row = soup(response).find(attrs={"data-testid": "thread-row"})
    assert row["data-unread"] == "1" and "unread" in row["class"]
    assert not row.find(attrs={"data-testid": "mark-unread-button"})


# ---------------------------------------------------------------- labels


def create_label(browser, name):
    return browser.post("/messaging/labels", {"name": name})


def label_ids(app, member) -> dict[str, int]:
    with app.app_context():
        return {
            label.name: label.id
            for label in db.session.scalars(db.select(Label).where(Label.member_id == member.id))
        }


def test_labels_are_created_renamed_deleted_with_clear_errors(app, browser, trio):
    ann, *_ = trio
    browser.login(ann)
    assert create_label(browser, "  Recruiters ").status_code == 303
    page = browser.get("/messaging/labels")
    assert texts(page, "label-name") == ["Recruiters"]
    duplicate = create_label(browser, "recruiters")
    assert duplicate.status_code == 422
    assert "already have a label" in texts(duplicate, "form-error")[0]
    too_long = create_label(browser, "x" * 41)
    assert too_long.status_code == 422 and "at most 40" in texts(too_long, "form-error")[0]
    empty = create_label(browser, "   ")
    assert empty.status_code == 422 and texts(empty, "form-error") == ["Give the label a name."]
    assert label_ids(app, ann).keys() == {"Recruiters"}  # nothing half-saved
    create_label(browser, "Atlas")
    ids = label_ids(app, ann)
    clash = browser.post(f"/messaging/labels/{ids['Atlas']}", {"name": "RECRUITERS"})
    assert clash.status_code == 422 and by_testid(clash, "form-error")
    assert (
        browser.post(f"/messaging/labels/{ids['Atlas']}", {"name": "Project Atlas"}).status_code
        == 303
    )
    assert texts(browser.get("/messaging/labels"), "label-name") == ["Project Atlas", "Recruiters"]
    assert browser.post(f"/messaging/labels/{ids['Atlas']}/delete").status_code == 303
    assert texts(browser.get("/messaging/labels"), "label-name") == ["Recruiters"]


def test_threads_filed_under_labels_are_listed_by_label(app, browser, trio):
    ann, _, _, bob_thread, cat_thread = trio
    browser.login(ann)
    create_label(browser, "Jobs")
    create_label(browser, "Friends")
    ids = label_ids(app, ann)
    response = browser.post(
        f"/messaging/t/{bob_thread}/labels", {"label": [str(ids["Jobs"]), str(ids["Friends"])]}
    )
    assert response.status_code == 303
    browser.post(f"/messaging/t/{cat_thread}/labels", {"label": [str(ids["Jobs"])]})
    jobs = browser.get("/messaging?label=jobs")  # any case
    assert set(rows(jobs)) == {bob_thread, cat_thread}
    assert [a.get_text() for a in by_testid(jobs, "filter-label") if a.get("aria-current")] == [
        "Jobs"
    ]
    friends = browser.get("/messaging?label=Friends")
    assert list(rows(friends)) == [bob_thread]
    assert texts(friends, "thread-label") == ["Friends", "Jobs"]
    thread = browser.get(f"/messaging/t/{bob_thread}")
    # In the conversation's header (the list beside it shows them on the row too).
    header = soup(thread).select_one('[data-testid="thread-header"]')
    assert [a.get_text() for a in header.select('[data-testid="thread-label"]')] == [
        "Friends",
        "Jobs",
    ]
    checked = [
        box["value"] for box in by_testid(thread, "label-checkbox") if box.has_attr("checked")
    ]
    assert sorted(checked) == sorted([str(ids["Jobs"]), str(ids["Friends"])])
    # Un-filing: the label list changes, the thread stays in Messaging.
    browser.post(f"/messaging/t/{bob_thread}/labels", {"label": [str(ids["Friends"])]})
    assert list(rows(browser.get("/messaging?label=Jobs"))) == [cat_thread]
    # An archived thread stays under its labels.
    browser.post(f"/messaging/t/{cat_thread}/archive", {"archived": "1"})
    assert list(rows(browser.get("/messaging?label=Jobs"))) == [cat_thread]
    # Deleting a label leaves its threads alone.
    browser.post(f"/messaging/labels/{ids['Friends']}/delete")
    assert bob_thread in rows(browser.get("/messaging"))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ThreadLabel)) == 1


def test_labels_are_private_to_their_owner(app, browser, trio):
    ann, bob, cat, bob_thread, _ = trio
    browser.login(ann)
    create_label(browser, "Secret plans")
    secret = label_ids(app, ann)["Secret plans"]
    browser.post(f"/messaging/t/{bob_thread}/labels", {"label": [str(secret)]})
    bobs = Browser(app)
    bobs.login(bob)
    # Bob sees nothing of Ann's label on the thread they share...
    assert not by_testid(bobs.get("/messaging"), "thread-label")
    assert "Secret plans" not in bobs.get(f"/messaging/t/{bob_thread}").get_data(as_text=True)
    # ...cannot list by it, rename it, delete it or file his threads under it.
    assert bobs.get("/messaging?label=Secret plans").status_code == 404
    assert bobs.post(f"/messaging/labels/{secret}", {"name": "Mine"}).status_code == 404
    assert bobs.post(f"/messaging/labels/{secret}/delete").status_code == 404
    assert (
        bobs.post(f"/messaging/t/{bob_thread}/labels", {"label": [str(secret)]}).status_code == 303
    )
    with app.app_context():
        names = db.session.scalars(db.select(Label.name).where(Label.member_id == ann.id)).all()
        assert names == ["Secret plans"]
        assert db.session.scalar(db.select(db.func.count()).select_from(ThreadLabel)) == 1
    # And a stranger cannot file someone else's thread at all.
    with app.app_context():
        eve = make_member("Eve Out")
    eves = Browser(app)
    eves.login(eve)
    assert eves.post(f"/messaging/t/{bob_thread}/labels", {"label": []}).status_code == 404
    assert texts(eves.get("/messaging/labels"), "label-name") == []
    # Cat, who shares another thread with Ann, sees nothing of the label either.
    cats = Browser(app)
    cats.login(cat)
    assert cats.get("/messaging?label=Secret plans").status_code == 404
    assert not by_testid(cats.get("/messaging"), "thread-label")


# ---------------------------------------------------------------- search


def search(browser, q):
    response = browser.get("/messaging/search", query_string={"q": q})
    assert response.status_code == 200
    return response


def hit_ids(response) -> list[int]:
    return [int(hit["data-message-id"]) for hit in by_testid(response, "search-result")]


def message_id(app, body) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Message.id).where(Message.body == body))


def test_search_ranks_a_whole_word_above_a_partial_one(app, browser, trio):
    ann, bob, cat, *_ = trio
    send(app, bob, ann, "The planning meeting moved to Tuesday")
    send(app, cat, ann, "Here is the plan for the launch")
    send(app, bob, ann, "Nothing to see here")
    browser.login(ann)
    found = hit_ids(search(browser, "plan"))
    exact = message_id(app, "Here is the plan for the launch")
    partial = {
        message_id(app, "The planning meeting moved to Tuesday"),
        message_id(app, "Quarterly planning notes attached soon"),
    }
    assert found[0] == exact
    assert set(found[1:]) == partial
    page = search(browser, "plan")
    assert [m.get_text() for m in soup(page).select("[data-testid=search-snippet] mark")][
        0
    ] == "plan"
    # Every word must match; a word that appears nowhere finds nothing.
    assert hit_ids(search(browser, "planning tuesday")) == [
        message_id(app, "The planning meeting moved to Tuesday")
    ]
    assert by_testid(search(browser, "zebra"), "empty")


def test_search_finds_the_other_members_name_and_attachment_names(app, browser, trio):
    ann, bob, cat, bob_thread, _ = trio
    send(app, cat, ann, "", files=[("budget-2027.pdf", pdf())])
    browser.login(ann)
    by_name = search(browser, "stone")
    assert [hit["data-thread-id"] for hit in by_testid(by_name, "search-result")] == [
        str(bob_thread)
    ]
    assert by_testid(by_name, "search-result")[0]["data-matched"] == "name"
    by_file = search(browser, "budget")
    assert len(hit_ids(by_file)) == 1 and texts(by_file, "search-file") == ["📎 budget-2027.pdf"]


def test_search_never_shows_other_members_or_blocked_threads(app, browser, trio):
    ann, bob, cat, bob_thread, _ = trio
    with app.app_context():
        dan = make_member("Dan Other")
        connect(bob, dan)
    send(app, bob, dan, "The password for the vault is hunter2")
    send(app, bob, ann, "vault meeting at noon")
    browser.login(ann)
    assert hit_ids(search(browser, "vault")) == [message_id(app, "vault meeting at noon")]
    assert not hit_ids(search(browser, "hunter2"))
    assert not hit_ids(search(browser, "Dan"))  # not even the name of someone else's contact
    with app.app_context():
        blocking.block(ann.id, bob.id)
    assert not hit_ids(search(browser, "vault"))
    assert not hit_ids(search(browser, "stone"))
    # The other side of a block cannot find the hidden thread either.
    bobs = Browser(app)
    bobs.login(bob)
    assert not hit_ids(search(bobs, "Monday"))
    assert hit_ids(search(bobs, "hunter2"))  # his own thread with Dan is still his


def test_search_escapes_what_members_wrote(app, browser, trio):
    ann, bob, *_ = trio
    send(app, bob, ann, 'meeting <script>alert("x")</script> <img src=x onerror=alert(1)>')
    browser.login(ann)
    page = search(browser, "<script> meeting")
    assert hit_ids(page)
    html = page.get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_a_search_result_opens_the_thread_at_that_message(app, browser, trio):
    ann, bob, _, bob_thread, _ = trio
    for n in range(60):
        send(app, bob if n % 2 else ann, ann if n % 2 else bob, f"numbered message {n:02d}")
    send(app, bob, ann, "a needle in the haystack")
    for n in range(60, 100):
        send(app, bob, ann, f"numbered message {n:02d}")
    target = message_id(app, "numbered message 30")
    browser.login(ann)
    page = search(browser, "numbered 30")
    link = by_testid(page, "search-result-link")[0]["href"]
    assert link == f"/messaging/t/{bob_thread}?at={target}#message-{target}"
    thread = browser.get(link.split("#")[0])
    shown = [int(m["data-message-id"]) for m in by_testid(thread, "message")]
    assert target in shown and shown == sorted(shown)
    assert "highlight" in soup(thread).select_one(f"#message-{target}")["class"]
    assert by_testid(thread, "load-older") and by_testid(thread, "load-newer")
    # Walking newer pages from there reaches the newest message, each message once.
    seen = list(shown)
    newer = by_testid(thread, "load-newer")
    while newer:
        page = browser.get(newer[0]["href"])
        seen += [int(m["data-message-id"]) for m in by_testid(page, "message")]
        newer = by_testid(page, "load-newer")
    with app.app_context():
        ids = db.session.scalars(
            db.select(Message.id).where(Message.thread_id == bob_thread, Message.id >= shown[0])
        ).all()
    assert seen == sorted(ids)
    # A thread the member is not in cannot be opened at one of its messages.
    with app.app_context():
        eve = make_member("Eve Out")
    eves = Browser(app)
    eves.login(eve)
    assert eves.get(f"/messaging/t/{bob_thread}?at={target}").status_code == 404


# ---------------------------------------------------------------- export


def test_export_holds_the_conversation_and_its_files_byte_for_byte(app, browser, trio):
    ann, bob, _, bob_thread, _ = trio
    picture, document = image("PNG", (300, 200)), pdf()
    send(app, ann, bob, "Here are the files\nsecond line", files=[("plan.png", picture)])
    send(app, bob, ann, "", files=[("../../etc/passwd.pdf", document)])
    send(app, bob, ann, "Thanks — ünïcode & <tags>")
    browser.login(ann)
    page = browser.get(f"/messaging/t/{bob_thread}")
    assert by_testid(page, "export-link")[0]["href"] == f"/messaging/t/{bob_thread}/export"
    response = browser.get(f"/messaging/t/{bob_thread}/export", buffered=True)
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert bob.handle in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    document_json = json.loads(archive.read("conversation.json"))
    with app.app_context():
        stored = db.session.scalars(
            db.select(Message).where(Message.thread_id == bob_thread).order_by(Message.id)
        ).all()
        expected = [
            (m.id, m.body, [(a.name, a.size, a.sha256) for a in m.attachments]) for m in stored
        ]
    assert [
        (m["id"], m["body"], [(a["name"], a["size"], a["sha256"]) for a in m["attachments"]])
        for m in document_json["messages"]
    ] == expected
    assert {m["handle"] for m in document_json["thread"]["members"]} == {ann.handle, bob.handle}
    files = [a for m in document_json["messages"] for a in m["attachments"]]
    assert [archive.read(f["path"]) for f in files] == [picture, document]
    assert all(f["path"].startswith("attachments/") and ".." not in f["path"] for f in files)
    text = archive.read("conversation.txt").decode()
    for body in ("Hello Ann, are you free on Monday?", "second line", "ünïcode & <tags>"):
        assert body in text
    assert text.index("Here are the files") < text.index("ünïcode")


def test_export_is_only_for_the_two_members(app, trio):
    ann, bob, cat, bob_thread, _ = trio
    cats = Browser(app)
    cats.login(cat)
    assert cats.get(f"/messaging/t/{bob_thread}/export").status_code == 404
    with app.app_context():
        blocking.block(bob.id, ann.id)
    anns = Browser(app)
    anns.login(ann)
    assert anns.get(f"/messaging/t/{bob_thread}/export").status_code == 404


# ---------------------------------------------------------------- live pieces


def test_a_live_row_never_carries_the_senders_csrf_token(app, trio):
    """Live pieces are rendered in the sender's request: their token must not leak."""
    ann, bob, _, bob_thread, _ = trio
    from linkmsg import live
    from linkmsg.models import Event

    bobs = Browser(app)
    bobs.login(bob)
    bobs.post(f"/messaging/t/{bob_thread}", {"body": "live one", "idempotency_key": "live-key-01"})
    with app.app_context(), app.test_request_context():
        event = db.session.scalars(
            db.select(Event).where(Event.member_id == ann.id).order_by(Event.id.desc())
        ).first()
        html = live.render(event)
    assert "live one" in html and 'data-testid="archive-button"' in html
    # A list that showed "No messages yet" loses that line when its first row arrives.
    assert soup_of(html).find(id="threads-empty")["hx-swap-oob"] == "delete"
    values = {i["value"] for i in soup_of(html).find_all("input", attrs={"name": "csrf_token"})}
    assert values == {""}


def soup_of(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "lxml")
