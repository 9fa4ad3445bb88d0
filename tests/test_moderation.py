"""Reporting members and messages, the moderators' queue, suspension."""

import re

from linkmsg.extensions import db
from linkmsg.models import Member, Report
from linkmsg.services import messaging, network

from .factories import Browser, by_testid, connect, make_member, texts


def world(app):
    with app.app_context():
        ann, bob, mod = (
            make_member("Ann Lee"),
            make_member("Bob Spammer"),
            make_member("Mo Moderator"),
        )
        db.session.get(Member, mod.id).role = "admin"
        db.session.commit()
        connect(ann, bob)
        first = messaging.start(
            db.session.get(Member, ann.id), db.session.get(Member, bob.id), "Hello Bob"
        )
        bad = messaging.reply(
            db.session.get(Member, bob.id), first.thread_id, "Buy cheap followers now!!!"
        )
        messaging.reply(db.session.get(Member, ann.id), first.thread_id, "Please stop.")
        return ann, bob, mod, bad.message.id, first.thread_id


def test_report_a_message_and_block_in_the_same_step(app, browser):
    ann, bob, _, message_id, thread_id = world(app)
    browser.login(ann)
    thread = browser.get(f"/messaging/t/{thread_id}")
    links = [a["href"] for a in by_testid(thread, "report-message")]
    assert links == [f"/report/message/{message_id}"]  # only the other member's messages
    page = browser.get(links[0])
    assert texts(page, "reported-message") == ["Buy cheap followers now!!!"]
    bad = browser.post(links[0], {"reason": "nonsense"})
    assert bad.status_code == 422 and texts(bad, "form-error") == ["Choose what is wrong."]
    response = browser.post(
        links[0], {"reason": "spam", "details": "Sells followers", "block": "y"}
    )
    assert response.status_code == 303
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == [
        "Thank you. You reported Bob Spammer and blocked them; a moderator will review it."
    ]
    assert browser.get(f"/messaging/t/{thread_id}").status_code == 404  # the block hides it
    with app.app_context():
        report = db.session.scalar(db.select(Report))
        assert (report.reason, report.details, report.message_id) == (
            "spam",
            "Sells followers",
            message_id,
        )


def test_a_message_from_another_thread_cannot_be_reported(app, browser, member_factory):
    ann, bob, _, message_id, _ = world(app)
    eve = member_factory(name="Eve")
    browser.login(eve)
    assert browser.post(f"/report/message/{message_id}", {"reason": "spam"}).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Report)) == 0


def test_moderators_see_the_message_in_context_and_dismiss(app, browser):
    ann, bob, mod, message_id, _ = world(app)
    browser.login(ann)
    browser.post(f"/report/message/{message_id}", {"reason": "spam"})
    browser.logout()
    browser.login(mod)
    queue = browser.get("/admin/reports")
    items = by_testid(queue, "report")
    assert len(items) == 1
    context = [
        li.get_text(" ", strip=True) for li in items[0].select('[data-testid="context-message"]')
    ]
    assert context == ["Hello Bob", "Buy cheap followers now!!!", "Please stop."]
    assert (
        items[0].select_one('[data-reported="true"]').get_text(strip=True)
        == "Buy cheap followers now!!!"
    )
    response = browser.post(f"/admin/reports/{items[0]['data-report-id']}/dismiss")
    page = browser.get(response.headers["Location"])
    assert texts(page, "flash") == ["Report dismissed."]
    assert texts(page, "empty") == ["No open reports."]


def test_suspension_ends_open_sessions_login_sending_and_search(app, browser):
    ann, bob, mod, _, thread_id = world(app)
    bobs_browser = Browser(app)
    bobs_browser.login(bob)
    assert bobs_browser.get("/messaging").status_code == 200
    browser.login(ann)
    browser.post(f"/report/{bob.handle}", {"reason": "fake"})
    browser.logout()
    browser.login(mod)
    report_id = by_testid(browser.get("/admin/reports"), "report")[0]["data-report-id"]
    browser.post(f"/admin/reports/{report_id}/suspend")
    # Bob's open session has ended, and he cannot log in again.
    assert bobs_browser.get("/messaging").status_code == 302
    response = bobs_browser.post("/login", {"email": bob.email, "password": bob.password})
    assert response.status_code == 401 and texts(response, "form-error") == [
        "This account is suspended."
    ]
    browser.logout()
    browser.login(ann)
    assert "Bob Spammer" not in browser.get("/search?q=bob").get_data(as_text=True)
    assert browser.get(f"/in/{bob.handle}").status_code == 404
    with app.app_context():
        bob_row = db.session.get(Member, bob.id)
        assert bob_row.suspended_at is not None
        assert not messaging.can_message(bob_row, db.session.get(Member, ann.id)).allowed
        assert not network.search(ann.id, "bob").members


def test_the_queue_is_only_for_moderators(app, browser):
    ann, *_ = world(app)
    browser.login(ann)
    assert browser.get("/admin/reports").status_code == 404


def test_make_admin_command(app, runner):
    with app.app_context():
        ann = make_member("Ann")
    result = runner.invoke(args=["make-admin", ann.email.upper()])
    assert result.exit_code == 0 and "Ann is now a moderator." in result.output
    with app.app_context():
        assert db.session.get(Member, ann.id).is_admin
    assert runner.invoke(args=["make-admin", "nobody@example.com"]).exit_code != 0
    assert re.search(r"No member", runner.invoke(args=["make-admin", "nobody@example.com"]).output)
