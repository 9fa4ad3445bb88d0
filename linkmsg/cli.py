"""Command-line tools: `flask --app app seed-demo`."""

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("mail-worker")
    @click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
    def mail_worker(once: bool):
        """Send the emails the outbox owes (SMTP from MAIL_* settings), with retries."""
        import threading

        from . import mail

        if once:
            click.echo(mail.send_due())
            return
        click.echo("Mail worker running; Ctrl+C to stop.")
        try:
            mail.run(app, threading.Event())
        except KeyboardInterrupt:
            pass

    @app.cli.command("make-admin")
    @click.argument("email")
    def make_admin(email: str):
        """Give a member the moderator role (the report queue at /admin/reports)."""
        from .extensions import db
        from .models import ROLE_ADMIN, Member
        from .services.accounts import normalize_email

        member = db.session.scalar(db.select(Member).where(Member.email == normalize_email(email)))
        if member is None:
            raise click.ClickException(f"No member with the email {email}.")
        member.role = ROLE_ADMIN
        db.session.commit()
        click.echo(f"{member.name} is now a moderator.")

    @app.cli.command("renew-subscriptions")
    def renew_subscriptions():
        """Apply Premium renewals (monthly credits) and the end of canceled plans."""
        from .services import billing

        click.echo(f"Renewed or ended {billing.renew_all()} subscriptions.")

    @app.cli.command("check-integrity")
    def check_integrity():
        """Check the invariants (ledger, refunds, allowances, caps, threads); exit 1 with
        what is wrong."""
        from .services import integrity

        found = integrity.problems()
        for problem in found:
            click.echo(problem)
        if found:
            raise click.exceptions.Exit(1)
        click.echo(f"OK: {len(integrity.CHECKS)} checks passed.")

    @app.cli.command("prune-events")
    @click.option(
        "--days", type=int, default=None, help="Keep this many days (EVENT_RETENTION_DAYS)."
    )
    def prune_events(days: int | None):
        """Delete live events past the retention window."""
        from datetime import timedelta

        from .services import events

        keep = days if days is not None else app.config["EVENT_RETENTION_DAYS"]
        click.echo(f"Pruned {events.prune(timedelta(days=keep))} events.")

    @app.cli.command("seed-demo")
    def seed_demo():
        """Load about 30 demo members with a realistic network (first run only)."""
        from . import demo

        members = demo.seed()
        if members is None:
            click.echo("Demo data is already loaded (the database has members).")
            first, other = demo.email_for(demo.PEOPLE[0][0]), demo.email_for(demo.PEOPLE[3][0])
        else:
            click.echo(f"Loaded {len(members)} demo members.")
            first, other = members[0].email, members[3].email
        click.echo(f"Log in as {first} with password {demo.DEMO_PASSWORD!r}")
        click.echo(f"(every demo member uses that password; e.g. {other})")
