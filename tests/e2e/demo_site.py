"""One live server per test module, loaded with the demo network (`flask seed-demo`) plus a
little more: Ava Chen is Premium, has sent an InMail and had her profile viewed by five
members, Dana Whitfield moderates a report.

Used by the accessibility, keyboard and screenshot tests, which look at the pages a member
sees in the demo rather than at pages built for one assertion.
"""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from werkzeug.serving import make_server

from linkmsg.extensions import db

from ..conftest import build_app

AVA = "ava.chen@demo.linkmsg.test"  # Premium, with threads, InMail and invitations
DANA = "dana.whitfield@demo.linkmsg.test"  # a moderator, with a report to look at

# When each message was sent, oldest first, as (days before today, "HH:MM" UTC) or minutes
# ago: Ava and Ben two days ago, Carla yesterday, Daria this morning, Ava's InMail to Priya
# and the reported ad just now.
SENT_AT = [(2, "09:12"), (2, "09:40"), (2, "10:05"), (1, "16:20"), (1, "16:45"), 190, 25, 10]


@dataclass
class DemoSite:
    url: str
    app: object
    threads: dict[str, int] = field(default_factory=dict)  # other member's handle -> thread id


def _seed(app) -> dict[str, int]:
    from linkmsg import demo
    from linkmsg.models import ROLE_ADMIN, InMail, Member, Message, utcnow
    from linkmsg.services import accounts, billing, inmail, messaging, profile_views, reports

    with app.app_context():
        members = demo.seed()
        by_handle = {m.handle: m for m in members}
        # The demo hashes with the production method; logging in is quicker with the tests'.
        for member in members:
            member.password_hash = accounts.hash_password(demo.DEMO_PASSWORD)
        ava, dana = by_handle["ava-chen"], by_handle["dana-whitfield"]
        billing.start_premium(ava.id)
        db.session.commit()
        # Five members looked at Ava's profile: one line in her notifications.
        for handle in (
            "lena-fischer",
            "kwame-mensah",
            "priya-raman",
            "oscar-lindqvist",
            "ben-okafor",
        ):
            profile_views.record_view(by_handle[handle].id, ava.id)
        sent = inmail.send(
            db.session.get(Member, ava.id),
            db.session.get(Member, by_handle["priya-raman"].id),
            "Speaking at our ML meetup?",
            "Hi Priya, I loved your talk on ranking models. Would you speak at our "
            "meetup in San Francisco next month? Happy to cover travel.",
        )
        inmail.mark_opened(sent.thread_id, by_handle["priya-raman"].id)
        db.session.commit()
        spam = messaging.start(
            db.session.get(Member, by_handle["kwame-mensah"].id),
            db.session.get(Member, by_handle["lena-fischer"].id),
            "Grow your network 10x overnight! Buy followers at https://followers.example",
        )
        reports.report(
            by_handle["lena-fischer"].id,
            by_handle["kwame-mensah"].id,
            "spam",
            "Sent me an ad right after connecting.",
            message_id=spam.message.id,
        )
        db.session.get(Member, dana.id).role = ROLE_ADMIN
        # Spread the conversations over the last days, as in a network in use.
        now = utcnow()
        messages = db.session.scalars(db.select(Message).order_by(Message.id)).all()
        for message, when in zip(messages, SENT_AT, strict=False):
            if isinstance(when, int):
                message.created_at = now - timedelta(minutes=when)
            else:
                days, clock = when
                hour, minute = map(int, clock.split(":"))
                day = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
                message.created_at = day - timedelta(days=days)
        for item in db.session.scalars(db.select(InMail)):
            item.created_at = db.session.get(Message, item.message_id).created_at
        db.session.commit()
        rows, _ = messaging.inbox(ava.id)
        return {row.other.handle: row.membership.thread_id for row in rows}


@contextmanager
def demo_site(sqlite_template, folder: Path):
    """Serve a demo-loaded copy of the migrated database on a free loopback port."""
    path = folder / "demo.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = build_app(f"sqlite:///{path}", folder)
    threads = _seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DemoSite(f"http://127.0.0.1:{server.server_port}", app, threads)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


def logged_in_context(chromium, site: DemoSite, email: str, *, js: bool = True, **options):
    """A browser context whose cookies belong to a member logged in through the login form."""
    from linkmsg.demo import DEMO_PASSWORD

    context = chromium.new_context(java_script_enabled=js, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(site.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.url + "/")
    page.close()
    return context
