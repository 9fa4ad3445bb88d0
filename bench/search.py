"""Time message search (`linkmsg.services.search.search`) on the generated data.

    .venv/bin/python -m bench.generate                  # once: the full-size data
    .venv/bin/python -m bench.search                    # time it there (PostgreSQL)
    .venv/bin/python -m bench.search --scale 0.01       # on the 1% data
    .venv/bin/python -m bench.search --explain 2        # EXPLAIN ANALYZE the 2 slowest

Searches as random members who have conversations (one search in four by a member of one
of the ten longest threads, thousands of messages each), with queries made from what they can
find: a whole word of one of their messages, the start of such a word, two words of one
message, the other member's first name, and a word found nowhere. Each call is timed with
`time.perf_counter()` around the service call, as a page view would make it (one app
context, the service's own queries: candidates, ranking, the rows shown). Target: p95
under 50 ms at full size. Writes bench/results/search.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import psycopg

from .common import (
    log,
    machine_info,
    machine_line,
    make_app,
    migrate,
    server_url,
    summarize,
)

RESULTS = Path(__file__).resolve().parent / "results" / "search.json"
TARGET_P95_MS = 50.0
KINDS = ("word", "prefix", "two words", "name", "no match")
HEAVY_EVERY = 4  # one search in 4 is made by a member of one of the 10 longest threads
WORD = re.compile(r"[^\W_]{4,}")


def default_database(scale: float) -> str:
    from .generate import default_database as named

    return named(scale)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--scale", type=float, default=1.0, help="which generated data set")
    parser.add_argument("--database", help="default: linkmsg_bench_<scale>")
    parser.add_argument("--queries", type=int, default=1000, help="timed searches")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", type=int, default=0, help="EXPLAIN the N slowest")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def make_queries(conn: psycopg.Connection, count: int, rng: random.Random) -> list[tuple]:
    """(kind, member id, query) for `count` searches, the kinds in equal shares."""
    members = [
        row[0]
        for row in conn.execute(
            "SELECT member_id FROM thread_member TABLESAMPLE SYSTEM (5) REPEATABLE (%s) LIMIT %s",
            (rng.randrange(1_000_000), count * 3),
        )
    ]
    if not members:
        raise SystemExit("no threads: load data first with `python -m bench.generate`")
    # The members with the longest histories (thousands of messages) search too.
    heavy = [
        row[0]
        for row in conn.execute(
            "SELECT tm.member_id FROM thread_member tm JOIN thread t ON t.id = tm.thread_id"
            " JOIN LATERAL (SELECT count(*) AS n FROM message m WHERE m.thread_id = t.id) c"
            " ON true WHERE t.id IN (SELECT thread_id FROM message GROUP BY thread_id"
            " ORDER BY count(*) DESC LIMIT 10) ORDER BY c.n DESC"
        )
    ]
    queries = []
    while len(queries) < count:
        member = rng.choice(heavy if heavy and len(queries) % HEAVY_EVERY == 0 else members)
        kind = KINDS[len(queries) % len(KINDS)]
        row = conn.execute(
            "SELECT m.body, o.name FROM thread_member tm"
            " JOIN message m ON m.thread_id = tm.thread_id"
            " JOIN member o ON o.id = tm.other_id"
            " WHERE tm.member_id = %s ORDER BY m.id DESC LIMIT 1 OFFSET %s",
            (member, rng.randrange(3)),
        ).fetchone()
        if row is None:
            continue
        body, other = row
        words = WORD.findall(body or "")
        if kind == "name":
            query = other.split()[0]
        elif kind == "no match":
            query = "zq" + "".join(rng.choice("xjkvq") for _ in range(6))
        elif not words:
            continue
        elif kind == "word":
            query = rng.choice(words)
        elif kind == "prefix":
            query = rng.choice(words)[:3]
        else:
            query = " ".join(rng.sample(words, 2)) if len(words) > 1 else words[0]
        queries.append((kind, member, query))
    return queries


def main(argv=None) -> int:
    args = parse_args(argv)
    database = args.database or default_database(args.scale)
    with psycopg.connect(server_url(args.server, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            log(f"no database {database}: run `python -m bench.generate --scale {args.scale:g}`")
            return 2
    app = make_app(args.server, database)
    migrate(app)  # the search index arrives with migration 0008
    rng = random.Random(args.seed)
    with psycopg.connect(server_url(args.server, database), autocommit=True) as conn:
        queries = make_queries(conn, args.warmup + args.queries, rng)
        counts = dict(
            conn.execute(
                "SELECT 'messages', count(*) FROM message UNION ALL"
                " SELECT 'threads', count(*) FROM thread UNION ALL"
                " SELECT 'members', count(*) FROM member"
            ).fetchall()
        )
    from linkmsg.extensions import db
    from linkmsg.services import search

    samples: list[float] = []
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    results: dict[str, list[int]] = {kind: [] for kind in KINDS}
    timed = []
    with app.app_context():
        for n, (kind, member, query) in enumerate(queries):
            started = time.perf_counter()
            hits = search.search(member, query)
            elapsed = (time.perf_counter() - started) * 1000
            db.session.rollback()
            if n < args.warmup:
                continue
            samples.append(elapsed)
            by_kind[kind].append(elapsed)
            results[kind].append(len(hits))
            timed.append((elapsed, kind, member, query))
        report = {
            "database": database,
            "counts": counts,
            "queries": len(samples),
            "target_p95_ms": TARGET_P95_MS,
            "search": summarize(samples),
            "by_kind": {
                kind: {**summarize(values), "mean_results": _mean(results[kind])}
                for kind, values in by_kind.items()
            },
        }
        report["search"]["meets_target"] = report["search"]["p95_ms"] < TARGET_P95_MS
        if args.explain:
            report["explain"] = []
            for elapsed, kind, member, query in sorted(timed, reverse=True)[: args.explain]:
                plan = explain(member, query)
                report["explain"].append(
                    {"ms": round(elapsed, 3), "kind": kind, "query": query, "plan": plan}
                )
                log(f"\nEXPLAIN ANALYZE body search of {query!r} as {member} [{elapsed:.1f} ms]")
                log(plan)
    with psycopg.connect(server_url(args.server, database), autocommit=True) as conn:
        report["machine"] = machine_info(
            conn, ("message", "ix_message_search", "thread_member", "ix_message_thread_id")
        )
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"\nwrote {args.output}")
    return 0


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


def explain(member: int, query: str) -> str:
    """The plan of the body-candidate query, the one that reads the most."""
    from linkmsg.extensions import db
    from linkmsg.services import search

    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "search_vector" in statement and not captured:
            captured.append((statement, parameters))

    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        search.search(member, query)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return "\n".join(row[0] for row in rows)


def print_report(report: dict) -> None:
    machine = report["machine"]
    log("")
    log(machine_line(machine))
    log(f"{report['database']}: {report['counts']}")
    overall = report["search"]
    log(
        f"search  n={overall['n']}  median {overall['median_ms']} ms  p95 {overall['p95_ms']} ms"
        f"  p99 {overall['p99_ms']} ms  (target p95 < {TARGET_P95_MS:g} ms:"
        f" {'met' if overall['meets_target'] else 'MISSED'})"
    )
    for kind, figures in report["by_kind"].items():
        log(
            f"  {kind:<10} median {figures.get('median_ms')} ms  p95 {figures.get('p95_ms')} ms"
            f"  results {figures['mean_results']}"
        )


if __name__ == "__main__":
    sys.exit(main())
