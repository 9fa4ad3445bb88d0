"""Command-line tools: `flask --app app seed-demo`."""

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo():
        """Load about 30 demo members with a realistic network (first run only)."""
        from . import demo

        members = demo.seed()
        if members is None:
            click.echo("Demo data is already loaded (the database has members); nothing to do.")
            return
        first = members[0]
        click.echo(f"Loaded {len(members)} demo members.")
        click.echo(f"Log in as {first.email} with password {demo.DEMO_PASSWORD!r}")
        click.echo(f"(every demo member uses that password; e.g. {members[3].email})")
