"""The conversation view and its composer, in Chromium at desktop and phone widths:
runs of messages from one sender, day separators, the member's own messages, the "⋯"
menu; Enter to send, file chips, the character counter, the upload bar after a refusal."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from linkmsg.extensions import db
from linkmsg.models import Member, Message, utcnow
from linkmsg.services import messaging
from linkmsg.services.conversation import GROUP_WINDOW

from .. import files
from .conftest import log_in, make_members

WIDTHS = {"desktop": 1280, "phone": 375}


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def width(request, page):
    page.set_viewport_size({"width": WIDTHS[request.param], "height": 800})
    return request.param


def js_only(page):
    if not page.js_enabled:
        pytest.skip("a JavaScript feature (without it the native controls do the same)")


def member(app, member_id):
    return db.session.get(Member, member_id)


def thread_with_history(app):
    """Alice and Bob; Bob wrote twice yesterday two minutes apart, Alice answered, and
    today Bob wrote twice ten minutes apart. Returns (thread id, Alice's id, Bob's id)."""
    alice, bob = make_members(app, "Alice Moreau", "Bob Stone")
    yesterday = utcnow().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    today = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=30)
    if today.date() != utcnow().date():  # just after midnight: keep "today" today
        today = utcnow().replace(second=0, microsecond=0)
    plan = [
        (bob, "Are you free next week?", yesterday),
        (bob, "For a call about the role", yesterday + timedelta(minutes=2)),
        (alice, "Yes, Tuesday works", yesterday + timedelta(minutes=3)),
        (bob, "Great, I will send an invite", today),
        (bob, "Invite sent", today + timedelta(minutes=10)),
    ]
    with app.app_context():
        thread_id = messaging.start(member(app, bob), member(app, alice), plan[0][1]).thread_id
        for sender, body, _ in plan[1:]:
            messaging.reply(member(app, sender), thread_id, body)
        sent = db.session.scalars(
            db.select(Message).where(Message.thread_id == thread_id).order_by(Message.id)
        ).all()
        for message, (_, _, when) in zip(sent, plan, strict=True):
            message.created_at = when
        db.session.commit()
    return thread_id, alice, bob


def open_thread(page, live_server, thread_id):
    log_in(page, live_server.url, "alice-moreau@example.com")
    page.goto(f"{live_server.url}/messaging/t/{thread_id}")


def attribute_list(page, testid, name):
    return page.get_by_test_id(testid).evaluate_all(
        f"items => items.map(item => item.getAttribute('{name}'))"
    )


def test_runs_days_and_own_messages_and_a_sent_message_joins_its_run(live_server, page, width):
    thread_id, alice, _ = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)

    expect(page.get_by_test_id("day-separator")).to_have_text(["Yesterday", "Today"])
    assert attribute_list(page, "message", "data-group-start") == ["1", "0", "1", "1", "1"]
    messages = page.get_by_test_id("message")
    # A continued message keeps its sender's name for screen readers, hidden on screen.
    expect(messages.nth(1).get_by_test_id("message-sender")).to_have_text("Bob Stone")
    assert messages.nth(1).locator(".message-meta").bounding_box()["width"] <= 1
    assert messages.nth(0).locator(".message-meta").bounding_box()["width"] > 40
    mine = [item == str(alice) for item in attribute_list(page, "message", "data-sender-id")]
    assert mine == [False, False, True, False, False]
    expect(messages.nth(2)).to_have_class("message mine group-start")
    # Own messages sit on the other side, in the accent colour.
    own_box = messages.nth(2).get_by_test_id("message-body").bounding_box()
    their_box = messages.nth(0).get_by_test_id("message-body").bounding_box()
    assert own_box["x"] > their_box["x"] + 40
    # Times are machine-readable, with the full time in text.
    time = messages.nth(0).get_by_test_id("message-time")
    assert time.get_attribute("datetime").endswith("T10:00:00Z")

    # Two quick replies: the first starts Alice's run, the second continues it.
    box = page.get_by_label("Write a message")
    for body in ("See you Tuesday", "At ten?"):
        box.fill(body)
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text(body, exact=True)).to_be_visible()
        # The live event can show the message before the send's own answer comes back
        # and empties the box: the next one is typed once it has.
        expect(box).to_have_value("")
    expect(page.get_by_test_id("message")).to_have_count(7)
    assert attribute_list(page, "message", "data-group-start")[5:] == ["1", "0"]
    expect(page.get_by_test_id("day-separator")).to_have_count(2)


def test_report_is_in_the_message_menu(live_server, page, width):
    thread_id, _, _ = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)
    # Only the other member's messages have a menu, and Report waits inside it.
    expect(page.get_by_test_id("message-actions")).to_have_count(4)
    first = page.get_by_test_id("message").first
    expect(first.get_by_test_id("report-message")).not_to_be_visible()
    first.get_by_test_id("message-actions").click()
    expect(first.get_by_test_id("report-message")).to_be_visible()
    first.get_by_test_id("report-message").click()
    expect(page.get_by_role("button", name="Send report")).to_be_visible()
    assert "/report" in page.url


def test_enter_sends_and_shift_enter_adds_a_line(live_server, page, width):
    js_only(page)
    thread_id, _, _ = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)
    box = page.get_by_label("Write a message")
    box.click()
    box.type("First line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(page.get_by_test_id("message")).to_have_count(5)
    box.press("Enter")
    expect(page.get_by_test_id("message")).to_have_count(6)
    expect(page.get_by_test_id("message-body").last).to_have_text("First line\nsecond line")
    expect(page.get_by_label("Write a message")).to_have_value("")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()


def test_chosen_files_show_as_chips_and_a_removed_one_is_not_sent(
    live_server, page, width, tmp_path
):
    js_only(page)
    thread_id, _, _ = thread_with_history(live_server.app)
    photo = tmp_path / "photo.png"
    photo.write_bytes(files.image("PNG", size=(300, 200)))
    brief = tmp_path / "brief.pdf"
    brief.write_bytes(files.pdf())
    open_thread(page, live_server, thread_id)
    expect(page.get_by_test_id("attach-button")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-button").click()
    chooser.value.set_files([str(photo), str(brief)])
    chips = page.get_by_test_id("file-chip")
    expect(chips).to_have_count(2)
    expect(chips.first).to_contain_text("photo.png")
    assert photo.stat().st_size < 1024
    expect(chips.first).to_contain_text(f"{photo.stat().st_size} B")
    page.get_by_role("button", name="Remove photo.png").click()
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("brief.pdf")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("message")).to_have_count(6)
    expect(page.get_by_test_id("attachment")).to_have_count(1)
    expect(page.get_by_test_id("attachment-name")).to_have_text("brief.pdf")
    expect(page.get_by_test_id("file-chip")).to_have_count(0)


def test_the_counter_shows_near_the_limit_and_an_overlong_message_is_not_sent(
    live_server, page, width
):
    thread_id, _, _ = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)
    box = page.get_by_label("Write a message")
    box.fill("x" * 8050)
    # Nothing is cut: the whole text stays in the box.
    assert len(box.input_value()) == 8050
    page.get_by_role("button", name="Send", exact=True).click()
    if page.js_enabled:
        expect(page.get_by_test_id("char-counter")).to_have_text(
            "50 characters over the 8,000 limit"
        )
        expect(page.get_by_test_id("composer-error")).to_have_text(
            "Your message can be at most 8,000 characters (this one has 8,050). Shorten it to send."
        )
        box.fill("x" * 7000)
        expect(page.get_by_test_id("char-counter")).to_be_hidden()
        box.fill("x" * 7500)
        expect(page.get_by_test_id("char-counter")).to_have_text("7,500 / 8,000")
        expect(page.get_by_test_id("composer-error")).to_be_hidden()
    else:
        expect(page.get_by_test_id("form-error")).to_have_text(
            "Your message can be at most 8,000 characters (this one has 8,050)."
        )
    expect(page.get_by_test_id("message")).to_have_count(5)


def test_the_upload_bar_goes_after_a_refused_send(live_server, page, width, tmp_path):
    js_only(page)
    live_server.app.config["MESSAGE_RATE_LIMIT"] = "1 per minute"
    thread_id, _, _ = thread_with_history(live_server.app)
    big = tmp_path / "big.png"
    big.write_bytes(files.image("PNG", size=(1500, 1500)))
    open_thread(page, live_server, thread_id)
    bar = page.get_by_test_id("upload-progress")
    statuses = []
    for body in ("One", "Two"):
        page.get_by_label("Write a message").fill(body)
        page.get_by_label("Attach files").set_input_files(str(big))
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Send", exact=True).click()
        statuses.append(answer.value.status)
        expect(page.get_by_test_id("upload-progress")).to_be_hidden()
        assert bar.evaluate("bar => bar.value") == 0
    assert statuses == [200, 429]


def test_live_messages_continue_the_run_on_the_open_page(live_server, page, width):
    js_only(page)
    thread_id, _, bob = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)
    with live_server.app.app_context():
        for body in ("Quick question", "Is 3 pm fine?"):
            messaging.reply(member(live_server.app, bob), thread_id, body)
    expect(page.get_by_test_id("message")).to_have_count(7)
    # Bob's last message was 30 minutes ago (just after midnight, when that would be
    # yesterday, a moment ago): the first live one starts a run if it came more than
    # GROUP_WINDOW after it, and the second (seconds later) continues it; both are today,
    # under the one "Today" separator.
    with live_server.app.app_context():
        *_, before, first_live, _ = db.session.scalars(
            db.select(Message.created_at).where(Message.thread_id == thread_id).order_by(Message.id)
        ).all()
    starts = "1" if first_live - before > GROUP_WINDOW else "0"
    assert attribute_list(page, "message", "data-group-start")[5:] == [starts, "0"]
    expect(page.get_by_test_id("day-separator")).to_have_text(["Yesterday", "Today"])


def held_sends(page):
    """Sends to a thread wait until the test lets them go: [release, ...] in order."""
    held = []

    def hold(route):
        if route.request.method == "POST" and route.request.url.split("?")[0].endswith(
            tuple("0123456789")
        ):
            held.append(route)
        else:
            route.continue_()

    page.route("**/messaging/t/**", hold)
    return held


def test_what_is_typed_while_a_message_is_on_its_way_stays_in_the_box(
    live_server, page, width, browser_errors
):
    # The answer to a send renews the reply form. Text typed after pressing Send is not
    # what was sent, and must not be wiped by it: a rewritten box keeps all of it, a box
    # typed on after the sent text keeps what follows.
    js_only(page)
    browser_errors.watch(page.context)
    thread_id, _, _ = thread_with_history(live_server.app)
    open_thread(page, live_server, thread_id)
    held = held_sends(page)
    box = page.get_by_label("Write a message")
    send = page.get_by_role("button", name="Send", exact=True)

    box.fill("See you Tuesday")
    send.click()
    page.wait_for_function("() => document.querySelector('#reply button').disabled")
    box.fill("Shall I book a room?")  # rewritten while the first is on its way
    assert len(held) == 1
    held.pop().continue_()
    expect(page.get_by_text("See you Tuesday", exact=True)).to_be_visible()
    expect(box).to_have_value("Shall I book a room?")
    expect(send).to_be_enabled()

    box.fill("Room 4")
    send.click()
    page.wait_for_function("() => document.querySelector('#reply button').disabled")
    box.press("End")
    box.press_sequentially(" is free")  # typed on after the sent text
    held.pop().continue_()
    expect(page.get_by_text("Room 4", exact=True)).to_be_visible()
    expect(box).to_have_value("is free")
    # Typing goes on at the end of what was kept, and it sends as a message of its own.
    box.press_sequentially(" at ten")
    expect(box).to_have_value("is free at ten")
    page.unroute("**/messaging/t/**")
    send.click()
    expect(page.get_by_text("is free at ten", exact=True)).to_be_visible()
    expect(box).to_have_value("")
    assert [m.inner_text() for m in page.get_by_test_id("message-body").all()][-3:] == [
        "See you Tuesday",
        "Room 4",
        "is free at ten",
    ]
