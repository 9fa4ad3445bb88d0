"""Time a send into a 50-member group (`messaging.reply`) on the generated data.

    .venv/bin/python -m bench.send                     # full size (loads it if needed)
    .venv/bin/python -m bench.send --scale 0.01        # on the 1% data
    .venv/bin/python -m bench.send --sends 100 --output /tmp/send.json   # a quick look

Each probe member of bench/generate.py started a group as large as their connections
allow (50 members at full size and at 1%). The sends go round those groups, one at a
time, each as the send route runs it: `messaging.reply` (permission, the group's lock,
the message, every member's side, 50 events numbered and written, 49 emails owed,
commit) and then the publishing the request does after it (each member's live pieces
rendered and published). Both are timed with `time.perf_counter()`, and the statements
each send sends to PostgreSQL are counted. Target: **p95 of the send under 50 ms at full
size.**

The sends write: they run on a copy of the generated database (`CREATE DATABASE ...
TEMPLATE`), dropped at the end, so that the data the page benchmark reuses stays as it
was. Writes bench/results/send.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from . import generate
from .common import log, machine_info, machine_line, server_url, summarize

RESULTS = Path(__file__).resolve().parent / "results" / "send.json"
TARGET_P95_MS = 50.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.send", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=float, default=1.0, help="which generated data set")
    parser.add_argument("--database", help="default: linkmsg_bench_<scale>")
    parser.add_argument("--server", default=generate.DEFAULT_SERVER)
    parser.add_argument("--seed", type=int, default=1, help="of the generated data")
    parser.add_argument("--sends", type=int, default=500, help="timed sends")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def copy_database(server: str, source: str, copy: str) -> None:
    with psycopg.connect(server_url(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(copy), sql.Identifier(source)
            )
        )


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server_url(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def time_sends(app, targets: dict[str, list[tuple[int, int]]], sends: int, warmup: int) -> dict:
    """Send `warmup` + `sends` messages of each label in `targets`, taking turns (so that
    all are timed under the same load), each round its (sender, thread) list; the timings
    of the last `sends` per label."""
    from flask import g
    from sqlalchemy import event

    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.realtime import publish
    from linkmsg.services import messaging

    samples = {label: ([], [], [], []) for label in targets}  # send, publish, statements, events
    counted = [0]

    def count(*_):
        counted[0] += 1

    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            for number in range(warmup + sends):
                for label, items in targets.items():
                    sender_id, thread_id = items[number % len(items)]
                    db.session.expire_all()
                    sender = db.session.get(Member, sender_id)  # the request's member
                    counted[0] = 0
                    started = time.perf_counter()
                    sent = messaging.reply(
                        sender,
                        thread_id,
                        f"Bench send {number}: the agenda for Thursday is in the doc.",
                        idempotency_key=secrets.token_urlsafe(16),
                    )
                    middle = time.perf_counter()
                    in_send = counted[0]
                    events = len(g.get("linkmsg_events", []))
                    publish.flush_pending()
                    ended = time.perf_counter()
                    if not sent.created:
                        raise RuntimeError(f"send {number} was taken for a repeat")
                    if number >= warmup:
                        for kept, value in zip(
                            samples[label],
                            (
                                (middle - started) * 1000,
                                (ended - middle) * 1000,
                                (in_send, counted[0] - in_send),
                                events,
                            ),
                            strict=True,
                        ):
                            kept.append(value)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return {label: _summary(*kept) for label, kept in samples.items()}


def _summary(send_ms, publish_ms, statements, published) -> dict:
    return {
        "send": summarize(send_ms),
        "publish": summarize(publish_ms),
        "send_and_publish": summarize([a + b for a, b in zip(send_ms, publish_ms, strict=True)]),
        "statements_per_send": {
            "min": min(a for a, _ in statements),
            "max": max(a for a, _ in statements),
        },
        "statements_per_publish": {
            "min": min(b for _, b in statements),
            "max": max(b for _, b in statements),
        },
        "events_per_send": {"min": min(published), "max": max(published)},
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    meta = generate.prepare(args.scale, args.database, server=args.server, seed=args.seed)
    started_groups = [p for p in meta["probe_members"] if p.get("group_thread")]
    if not started_groups:
        raise SystemExit("the generated data has no probe groups (regenerate it)")
    # The largest groups only (50 members at full size and at 1%; some probes have fewer
    # connections than that).
    largest = max(p["group_members"] for p in started_groups)
    groups = [(p["id"], p["group_thread"]) for p in started_groups if p["group_members"] == largest]
    sizes = [largest]
    # The same probes replying in a typical one-to-one thread: the baseline, timed in turn.
    pairs = [
        (p["id"], p["typical_thread"]) for p in started_groups if p["group_members"] == largest
    ]
    copy = f"{meta['database']}_send"
    log(f"copying {meta['database']} to {copy} (the sends write)")
    started = time.perf_counter()
    copy_database(args.server, meta["database"], copy)
    log(f"  copied in {time.perf_counter() - started:.1f} s")
    try:
        from .common import make_app

        app = make_app(args.server, copy)
        app.config.update(MESSAGE_RATE_LIMIT="100000 per minute", MAIL_WORKER_THREAD=False)
        with app.app_context():
            log(
                f"timing {args.sends} sends (after {args.warmup} untimed) into {len(groups)}"
                f" groups of {sizes} members, each in turn with a one-to-one reply"
            )
            results = time_sends(
                app, {"group": groups, "one_to_one": pairs}, args.sends, args.warmup
            )
            from linkmsg.extensions import db

            db.engine.dispose()
        with psycopg.connect(server_url(args.server, copy), autocommit=True) as conn:
            machine = machine_info(conn, ("message", "event", "outbox", "thread_member"))
    finally:
        drop_database(args.server, copy)
    report = {
        "benchmark": "send into a group",
        "command": "python -m bench.send " + " ".join(sys.argv[1:] if argv is None else argv),
        "scale": args.scale,
        "database": meta["database"],
        "rows": meta["rows"],
        "groups": meta.get("groups"),
        "group_sizes_timed": sizes,
        "sends": args.sends,
        "warmup": args.warmup,
        "results": results,
        "target": {
            f"group send p95 < {TARGET_P95_MS} ms": results["group"]["send"]["p95_ms"]
            < TARGET_P95_MS
        },
        "machine": machine,
    }
    log("")
    log(machine_line(machine))
    for label, result in results.items():
        for key in ("send", "publish", "send_and_publish"):
            st = result[key]
            log(
                f"{label:<10} {key.replace('_', ' '):<17} median {st['median_ms']:8.2f} ms"
                f"   p95 {st['p95_ms']:8.2f} ms   p99 {st['p99_ms']:8.2f} ms   n={st['n']}"
            )
        log(
            f"{label:<10} statements per send {result['statements_per_send']}, per publish"
            f" {result['statements_per_publish']}; events per send {result['events_per_send']}"
        )
    for name, met in report["target"].items():
        log(f"target {name}: {'met' if met else 'MISSED'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.output}")
    return 0 if all(report["target"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
