"""The mail worker: sends what the outbox owes, over SMTP, with retries and backoff.

Run it as `flask --app app mail-worker`, or as a thread of the web process
(MAIL_WORKER_THREAD=1, which `make run` sets). With no MAIL_SERVER configured, emails
are written to the log instead of sent.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from flask import Flask, current_app, render_template

from .extensions import db
from .models import Member, Outbox, Thread
from .services import groups, outbox, passwords

log = logging.getLogger(__name__)


def build_email(row: Outbox) -> EmailMessage | None:
    """The email for an outbox row, or None when there is nothing left to say."""
    if row.kind == outbox.PASSWORD_RESET:
        return _password_reset_email(row)
    return _message_email(row)


def _compose(to: str, subject: str, template: str, context: dict) -> EmailMessage:
    """A plain-text and an HTML part from email/<template>.txt and .html."""
    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    email["To"] = to
    email["Message-ID"] = make_msgid(domain="linkmsg.local")
    email.set_content(render_template(f"email/{template}.txt", **context))
    email.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    return email


def _password_reset_email(row: Outbox) -> EmailMessage | None:
    reset = passwords.pending_reset(row.payload.get("reset_id", 0))
    if reset is None:
        return None  # used or expired meanwhile: a link that cannot work is not sent
    member = db.session.get(Member, row.member_id)
    link = (
        current_app.config["PUBLIC_URL"].rstrip("/")
        + f"/password/reset/{passwords.token_for(reset)}"
    )
    context = {
        "member": member,
        "link": link,
        "hours": int(passwords.RESET_VALID_FOR.total_seconds() // 3600),
    }
    return _compose(member.email, "Reset your LinkMsg password", "password_reset", context)


def _message_email(row: Outbox) -> EmailMessage | None:
    """A new-message email: the unread messages, a link to the thread. In a group the
    subject names the group, and each message its sender."""
    member = db.session.get(Member, row.member_id)
    thread = db.session.get(Thread, row.thread_id)
    messages = outbox.unread_messages(row)
    if member is None or thread is None or not messages:
        return None
    senders = {
        m.id: m
        for m in db.session.scalars(
            db.select(Member).where(Member.id.in_({m.sender_id for m in messages}))
        )
    }
    sender = senders[messages[-1].sender_id]
    group = None
    if thread.is_group:
        group = groups.display_name(thread, groups.members(thread.id), member.id)
    link = current_app.config["PUBLIC_URL"].rstrip("/") + f"/messaging/t/{thread.id}"
    context = {
        "member": member,
        "sender": sender,
        "senders": senders,
        "group": group,
        "messages": messages,
        "link": link,
    }
    return _compose(member.email, _subject(messages, senders, group), "new_message", context)


def _subject(messages, senders, group: str | None) -> str:
    """ "New message from Ben", "3 new messages from Ben", and in a group "… in Launch
    team" (several senders: "3 new messages in Launch team")."""
    count = len(messages)
    where = f" in {group}" if group else ""
    if len(senders) > 1:
        return f"{count} new messages{where}"
    name = next(iter(senders.values())).name
    if count == 1:
        return f"New message from {name}{where}"
    return f"{count} new messages from {name}{where}"


def deliver(email: EmailMessage) -> None:
    """Send over SMTP, or log it when no server is configured. Raises on SMTP failure."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        # WARNING, so that it shows under `flask run`'s default logging: with no SMTP
        # server the log is the only place a member (or a developer) can read it.
        log.warning(
            "email not sent (no MAIL_SERVER configured), logged instead:\nTo: %s\n"
            "Subject: %s\n\n%s",
            email["To"],
            email["Subject"],
            email.get_body(("plain",)).get_content(),
        )
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(email)


def send_due(now: datetime | None = None, limit: int = 50) -> dict[str, int]:
    """One pass over the outbox: claim due rows one at a time (up to `limit`) and send,
    skip or postpone each. Returns how many rows had each outcome."""
    counts = {"sent": 0, "skipped": 0, "postponed": 0, "retry": 0}
    for _ in range(limit):
        row = outbox.claim_next(now)
        if row is None:
            break
        counts[_handle(row, now)] += 1
    return counts


def _handle(row: Outbox, now: datetime | None) -> str:
    """Decide about one claimed row from the current state, and act on it."""
    decision = outbox.decide(row, now)
    if decision.retry_at is not None:
        outbox.postpone(row, decision.retry_at, decision.reason)
        return "postponed"
    if not decision.send:
        outbox.mark_skipped(row, decision.reason)
        return "skipped"
    email = build_email(row)
    if email is None:
        outbox.mark_skipped(row, "nothing unread")
        return "skipped"
    try:
        deliver(email)
    except (smtplib.SMTPException, OSError) as error:
        log.warning("email %s not sent (attempt %s): %s", row.id, row.attempts + 1, error)
        outbox.mark_failed_attempt(row, f"{type(error).__name__}: {error}", now)
        return "retry"
    outbox.mark_sent(row, now)
    return "sent"


def run(app: Flask, stop: threading.Event, interval: float | None = None) -> None:
    """Poll the outbox until `stop` is set. A failing pass is logged, never fatal."""
    interval = interval or app.config["MAIL_WORKER_INTERVAL_SECONDS"]
    while not stop.is_set():
        with app.app_context():
            try:
                send_due()
            except Exception:  # keep the worker alive; the rows stay pending
                log.exception("mail worker pass failed")
                db.session.rollback()
            finally:
                db.session.remove()
        stop.wait(interval)


def start_thread(app: Flask) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run, args=(app, stop), name="linkmsg-mail", daemon=True).start()
    return stop
