"""Messaging through the rendered pages: inbox, thread, compose, read state, privacy."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member, Message
from linkmsg.services import blocking, messaging, network

from .factories import by_testid, connect, is_fragment, soup, texts


@pytest.fixture
def friends(app, member_factory):
    ann, bob = member_factory(name="Ann Lee"), member_factory(name="Bob Stone")
    with app.app_context():
        connect(ann, bob)
    return ann, bob


def send(app, sender, recipient, body):
    with app.app_context():
        return messaging.start(
            db.session.get(Member, sender.id), db.session.get(Member, recipient.id), body
        )


def form_key(response) -> str:
    return soup(response).find("input", attrs={"name": "idempotency_key"})["value"]


def message_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Message))


def test_message_button_leads_to_compose_and_first_send_creates_the_thread(app, browser, friends):
    ann, bob = friends
    browser.login(ann)
    compose = browser.get(f"/messaging/new/{bob.handle}")
    assert compose.status_code == 200
    assert by_testid(compose, "compose-form")
    response = browser.post(
        f"/messaging/new/{bob.handle}",
        {"body": "Hi Bob!\nHow are you?", "idempotency_key": form_key(compose)},
    )
    assert response.status_code == 303
    thread_url = response.headers["Location"].split("#")[0]
    page = browser.get(thread_url)
    assert texts(page, "message-sender") == ["Ann Lee"]
    assert by_testid(page, "message-body")[0].get_text() == "Hi Bob!\nHow are you?"
    assert texts(page, "thread-member") == ["Bob Stone"]
    assert texts(page, "degree-badge") == ["1st"]
    # Now that a thread exists, the Message button opens it.
    again = browser.get(f"/messaging/new/{bob.handle}")
    assert again.status_code == 303 and again.headers["Location"] == thread_url


def test_double_submit_of_the_same_form_sends_one_message(app, browser, friends):
    ann, bob = friends
    browser.login(ann)
    key = form_key(browser.get(f"/messaging/new/{bob.handle}"))
    first = browser.post(f"/messaging/new/{bob.handle}", {"body": "Once", "idempotency_key": key})
    second = browser.post(f"/messaging/new/{bob.handle}", {"body": "Once", "idempotency_key": key})
    assert first.headers["Location"] == second.headers["Location"]
    thread_url = first.headers["Location"].split("#")[0]
    third = browser.post(thread_url, {"body": "Once", "idempotency_key": key})
    assert third.status_code == 303
    assert message_count(app) == 1


def test_too_long_body_is_refused_with_a_form_error_and_nothing_saved(app, browser, friends):
    ann, bob = friends
    browser.login(ann)
    key = form_key(browser.get(f"/messaging/new/{bob.handle}"))
    response = browser.post(
        f"/messaging/new/{bob.handle}", {"body": "x" * 8001, "idempotency_key": key}
    )
    assert response.status_code == 422
    assert texts(response, "form-error") == [
        "Your message can be at most 8,000 characters (this one has 8,001)."
    ]
    assert message_count(app) == 0
    thread_id = send(app, ann, bob, "hello").thread_id
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "y" * 8001, "idempotency_key": "k" * 12}
    )
    assert response.status_code == 422
    assert texts(response, "form-error")[0].startswith(
        "Your message can be at most 8,000 characters"
    )
    assert soup(response).find("textarea", attrs={"name": "body"}).get_text() == "y" * 8001
    assert message_count(app) == 1


def test_empty_reply_with_htmx_comes_back_in_the_form(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "hello").thread_id
    browser.login(ann)
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "  ", "idempotency_key": "k" * 12}, htmx=True
    )
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#reply"
    assert texts(response, "form-error") == ["Write a message or attach a file before sending."]


def test_bodies_are_escaped_and_only_web_links_are_clickable(app, browser, friends):
    ann, bob = friends
    body = (
        "<script>alert(1)</script> <img src=x onerror=alert(2)> "
        "javascript:alert(3) [click](javascript:alert(4)) "
        "see https://example.com/a?b=1&c=<2> and www.example.org."
    )
    thread_id = send(app, ann, bob, body).thread_id
    browser.login(bob)
    page = browser.get(f"/messaging/t/{thread_id}")
    rendered = by_testid(page, "message-body")[0]
    assert rendered.find("script") is None and rendered.find("img") is None
    links = rendered.find_all("a")
    assert [a["href"] for a in links] == ["https://example.com/a?b=1&c=", "https://www.example.org"]
    for link in links:
        assert link["rel"] == ["nofollow", "noopener"]
    assert rendered.get_text() == body
    assert all(
        not a["href"].lower().startswith("javascript") for a in soup(page).find_all("a", href=True)
    )


@pytest.fixture
def trio(app, member_factory, friends):
    """Ann, Bob and Cat, Ann connected to both."""
    ann, bob = friends
    cat = member_factory(name="Cat Diaz")
    with app.app_context():
        connect(ann, cat)
    return ann, bob, cat


def test_inbox_rows_preview_unread_and_badge(app, browser, trio):
    ann, bob, cat = trio
    send(app, bob, ann, "First from Bob")
    thread_cat = send(app, cat, ann, "Hello from Cat").thread_id
    send(app, bob, ann, "Second from Bob")
    browser.login(ann)
    inbox = browser.get("/messaging")
    rows = by_testid(inbox, "thread-row")
    assert [r.select_one('[data-testid="thread-name"]').get_text() for r in rows] == [
        "Bob Stone",
        "Cat Diaz",
    ]
    assert [r["data-unread"] for r in rows] == ["2", "1"]
    assert texts(inbox, "thread-preview") == ["Second from Bob", "Hello from Cat"]
    assert texts(inbox, "unread-badge") == ["2"]

    browser.get(f"/messaging/t/{thread_cat}")  # reading marks it read
    inbox = browser.get("/messaging")
    assert [r["data-unread"] for r in by_testid(inbox, "thread-row")] == ["2", "0"]
    assert texts(inbox, "unread-badge") == ["1"]
    unread = browser.get("/messaging?filter=unread")
    assert [
        r.select_one('[data-testid="thread-name"]').get_text()
        for r in by_testid(unread, "thread-row")
    ] == ["Bob Stone"]
    fragment = browser.get("/messaging?filter=unread", htmx=True)
    assert is_fragment(fragment) and len(by_testid(fragment, "thread-row")) == 1


def test_the_page_opening_a_thread_counts_it_read_on_its_own_badge(app, browser, trio):
    """The badge is read with the member, before the page marks the thread read: that
    write drops it, and the page shows the count as it is after the opening."""
    ann, bob, cat = trio
    send(app, bob, ann, "From Bob")
    thread_cat = send(app, cat, ann, "From Cat").thread_id
    browser.login(ann)
    assert texts(browser.get("/messaging"), "unread-badge") == ["2"]
    assert texts(browser.get(f"/messaging/t/{thread_cat}"), "unread-badge") == ["1"]
    send(app, bob, ann, "Bob again")  # on the next page, read with the member again
    assert texts(browser.get(f"/messaging/t/{thread_cat}"), "unread-badge") == ["1"]


def test_own_message_shows_as_you_and_does_not_count_unread(app, browser, friends):
    ann, bob = friends
    send(app, ann, bob, "My note")
    browser.login(ann)
    inbox = browser.get("/messaging")
    assert texts(inbox, "thread-preview") == ["You: My note"]
    assert by_testid(inbox, "thread-row")[0]["data-unread"] == "0"
    assert by_testid(inbox, "unread-badge") == []


def test_empty_inbox_says_what_to_do(browser, member_factory):
    browser.login(member_factory())
    assert "No messages yet" in texts(browser.get("/messaging"), "empty")[0]


def test_reply_without_javascript_redirects_back_to_the_thread(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "hello").thread_id
    browser.login(bob)
    page = browser.get(f"/messaging/t/{thread_id}")
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "hi Ann", "idempotency_key": form_key(page)}
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/messaging/t/{thread_id}#message-")
    page = browser.get(f"/messaging/t/{thread_id}")
    assert texts(page, "message-body") == ["hello", "hi Ann"]
    assert texts(page, "message-sender") == ["Ann Lee", "Bob Stone"]


def test_reply_with_htmx_returns_the_message_and_a_fresh_form(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "hello").thread_id
    browser.login(bob)
    key = form_key(browser.get(f"/messaging/t/{thread_id}"))
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "hi Ann", "idempotency_key": key}, htmx=True
    )
    assert response.status_code == 200
    assert is_fragment(response)
    fragment = soup(response)
    assert [
        m.get_text(" ", strip=True) for m in fragment.select('[data-testid="message-body"]')
    ] == ["hi Ann"]
    new_form = fragment.select_one("#reply")
    assert new_form["hx-swap-oob"] == "outerHTML"
    assert new_form.find("textarea").get_text() == ""
    assert new_form.find("input", attrs={"name": "idempotency_key"})["value"] != key


def test_older_messages_load_as_a_link_and_as_an_htmx_swap_each_once(app, browser, friends):
    ann, bob = friends
    for i in range(65):
        thread_id = send(
            app, ann if i % 2 else bob, bob if i % 2 else ann, f"message {i}"
        ).thread_id
    browser.login(ann)
    page = browser.get(f"/messaging/t/{thread_id}")
    seen = texts(page, "message-body")
    assert seen == [f"message {i}" for i in range(35, 65)]
    link = by_testid(page, "load-older")[0]
    older = browser.get(link["href"])  # as a plain link: a page of older messages
    assert texts(older, "message-body") == [f"message {i}" for i in range(5, 35)]
    assert by_testid(older, "newest")
    fragment = browser.get(link["href"], htmx=True)  # as htmx: the fragment alone
    assert is_fragment(fragment)
    collected = texts(fragment, "message-body")
    next_link = by_testid(fragment, "load-older")[0]["href"]
    collected = texts(browser.get(next_link, htmx=True), "message-body") + collected
    assert collected + seen == [f"message {i}" for i in range(65)]


def test_outsiders_get_404_for_thread_page_fragment_and_reply(
    app, browser, member_factory, friends
):
    ann, bob = friends
    eve = member_factory(name="Eve")
    thread_id = send(app, ann, bob, "top secret plan").thread_id
    browser.login(eve)
    missing = browser.get(f"/messaging/t/{thread_id + 999}")
    for response in (
        browser.get(f"/messaging/t/{thread_id}"),
        browser.get(f"/messaging/t/{thread_id}?before=999999", htmx=True),
        browser.post(
            f"/messaging/t/{thread_id}", {"body": "let me in", "idempotency_key": "e" * 12}
        ),
        browser.post(
            f"/messaging/t/{thread_id}",
            {"body": "let me in", "idempotency_key": "f" * 12},
            htmx=True,
        ),
    ):
        assert response.status_code == 404
        assert "top secret plan" not in response.get_data(as_text=True)
        assert "Ann Lee" not in response.get_data(as_text=True)
    # The same answer as for a thread that does not exist.
    assert missing.status_code == 404
    assert texts(missing, "error") == texts(browser.get(f"/messaging/t/{thread_id}"), "error")
    assert "top secret plan" not in browser.get("/messaging").get_data(as_text=True)
    assert message_count(app) == 1


def test_anonymous_is_sent_to_login(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "private").thread_id
    for path in ("/messaging", f"/messaging/t/{thread_id}", f"/messaging/new/{bob.handle}"):
        response = browser.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert browser.post(f"/messaging/t/{thread_id}", {"body": "x"}).status_code == 302


def test_thread_stays_readable_when_the_connection_ends_and_says_why(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "hello").thread_id
    with app.app_context():
        network.remove_connection(ann.id, bob.id)
    browser.login(bob)
    page = browser.get(f"/messaging/t/{thread_id}")
    assert texts(page, "message-body") == ["hello"]
    assert by_testid(page, "reply-form") == []
    assert texts(page, "reply-locked") == [
        "Connect with Ann Lee to message them, or send an InMail with Premium."
    ]
    response = browser.post(
        f"/messaging/t/{thread_id}", {"body": "still?", "idempotency_key": "g" * 12}
    )
    assert response.status_code == 403
    assert message_count(app) == 1


def test_a_refused_compose_page_offers_the_way_forward(app, browser, member_factory):
    ann, cat = member_factory(name="Ann Lee"), member_factory(name="Cat Diaz")
    browser.login(ann)
    page = browser.get(f"/messaging/new/{cat.handle}")
    assert page.status_code == 403
    assert soup(page).h1.get_text() == "You can't message Cat Diaz yet"
    assert texts(page, "form-error") == [
        "Connect with Cat Diaz to message them, or send an InMail with Premium."
    ]
    links = {a["href"] for a in by_testid(page, "way-forward")[0].find_all("a")}
    assert links == {f"/in/{cat.handle}", "/premium"}
    with app.app_context():
        from linkmsg.services import billing

        billing.start_premium(ann.id)
    page = browser.get(f"/messaging/new/{cat.handle}")
    assert by_testid(page, "inmail-button")[0]["href"] == f"/inmail/new/{cat.handle}"


def test_a_blocked_thread_is_hidden_from_both(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, ann, bob, "hello").thread_id
    with app.app_context():
        blocking.block(ann.id, bob.id)
    for member in (ann, bob):
        browser.login(member)
        assert browser.get(f"/messaging/t/{thread_id}").status_code == 404
        assert by_testid(browser.get("/messaging"), "thread-row") == []
        browser.logout()


def test_messages_cannot_be_edited_or_deleted(app):
    for rule in app.url_map.iter_rules():
        assert not (rule.methods & {"PUT", "PATCH", "DELETE"}), rule
        # A member's labels are theirs to edit; messages and threads are not.
        if rule.rule.startswith("/messaging") and not rule.rule.startswith("/messaging/labels"):
            assert not any(word in rule.rule for word in ("edit", "delete", "retract")), rule


def test_home_shows_recent_conversations_and_waiting_invitations(app, browser, member_factory):
    ann = member_factory(name="Ann Lee")
    friends = [member_factory(name=f"Friend {n}") for n in range(4)]
    stranger = member_factory(name="Sue Stranger")
    browser.login(ann)
    assert by_testid(browser.get("/"), "empty")  # no conversations yet: where to start
    with app.app_context():
        for friend in friends:
            connect(ann, friend)
        network.invite(stranger.id, ann.id)
    threads = [send(app, friend, ann, f"hello from {friend.name}").thread_id for friend in friends]
    home = browser.get("/")
    rows = [int(row["data-thread-id"]) for row in by_testid(home, "thread-row")]
    assert rows == list(reversed(threads))[:3]  # newest first, three of them
    assert "1 invitation waiting" in texts(home, "home-invitations")[0]


PANE = {"HX-Target": "conversation-pane"}


def test_the_thread_page_shows_the_list_beside_the_conversation(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, bob, ann, "hello").thread_id
    browser.login(ann)
    inbox = browser.get("/messaging")
    assert by_testid(inbox, "list-pane") and by_testid(inbox, "conversation-empty")
    assert not by_testid(inbox, "thread")
    page = browser.get(f"/messaging/t/{thread_id}")
    assert page.status_code == 200
    (pane,) = by_testid(page, "conversation-pane")
    assert pane.select_one('[data-testid="thread"]')["data-thread-id"] == str(thread_id)
    assert not by_testid(page, "conversation-empty")
    # The open conversation's row is marked in the list beside it.
    (row,) = by_testid(page, "thread-row")
    assert row.select_one("a.thread-link")["aria-current"] == "page"
    assert (
        not by_testid(inbox, "thread-row")[0].select_one("a.thread-link").has_attr("aria-current")
    )


def test_a_thread_chosen_in_the_list_answers_with_the_conversation_pane_alone(
    app, browser, friends
):
    ann, bob = friends
    thread_id = send(app, bob, ann, "hello").thread_id
    browser.login(ann)
    # The row's link is boosted and aims at the pane: htmx names the pane it targets.
    response = browser.get(f"/messaging/t/{thread_id}", boosted=True, headers=PANE)
    assert response.status_code == 200 and is_fragment(response)
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["HX-Push-Url"] == f"/messaging/t/{thread_id}"
    fragment = soup(response)
    assert fragment.find("title").get_text() == "Bob Stone · Messaging · LinkMsg"
    assert texts(response, "message-body") == ["hello"]
    assert not by_testid(response, "list-pane")
    assert by_testid(response, "reply-form")
    # Opened is read, as the whole page is.
    assert texts(browser.get("/messaging"), "unread-badge") == []
    # A boosted navigation of the whole page still gets the whole page.
    assert by_testid(browser.get(f"/messaging/t/{thread_id}", boosted=True), "list-pane")


def test_loading_older_messages_joins_the_run_across_the_page_boundary(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, bob, ann, "message 0").thread_id
    with app.app_context():
        for i in range(1, 31):  # 31 messages from Bob within seconds: one run
            messaging.reply(db.session.get(Member, bob.id), thread_id, f"message {i}")
    browser.login(ann)
    page = browser.get(f"/messaging/t/{thread_id}")
    shown = by_testid(page, "message")
    assert [m["data-group-start"] for m in shown] == ["1"] + ["0"] * 29
    first_shown = shown[0]["id"]
    older = browser.get(by_testid(page, "load-older")[0]["href"], htmx=True)
    assert texts(older, "message-body")[0] == "message 0"
    # The message that headed the page shown comes again, in place, without its header:
    # it continues the run of the older page above it.
    again = soup(older).find(id=first_shown)
    assert again["hx-swap-oob"] == "outerHTML"
    assert again["data-group-start"] == "0"
    assert "visually-hidden" in again.select_one(".message-meta")["class"]


def test_loading_older_messages_leaves_a_new_run_alone(app, browser, friends):
    ann, bob = friends
    thread_id = send(app, bob, ann, "message 0").thread_id
    with app.app_context():
        for i in range(1, 31):
            sender = ann if i == 1 else bob  # Ann answers right before the page shown
            messaging.reply(db.session.get(Member, sender.id), thread_id, f"message {i}")
    browser.login(ann)
    page = browser.get(f"/messaging/t/{thread_id}")
    older = browser.get(by_testid(page, "load-older")[0]["href"], htmx=True)
    assert texts(older, "message-body") == ["message 0"]
    assert not soup(older).select("[hx-swap-oob]")
