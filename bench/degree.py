"""Micro-benchmark of the network degree check on a PostgreSQL network of realistic size.

    .venv/bin/python -m bench.degree                # build (or reuse) linkmsg_bench, time it
    .venv/bin/python -m bench.degree --check        # also verify against a BFS in Python
    .venv/bin/python -m bench.degree --rebuild      # regenerate and reload the data

Times `linkmsg.services.degrees.degree()` on random pairs and `degrees()` on pages of 20
random members, and writes the figures to bench/results/degree.json. See bench/README.md.

The network: members are grouped in "company/city" clusters of ~200 (assigned at random,
so cluster mates do not have neighbouring ids); each member starts about per_member/2
connections, ~90% to cluster mates and ~10% to anyone at all, so that on average every
member ends up with about per_member connections (a connection is started by one side
and received by the other). Both directions are stored, as the app stores them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from .common import (
    MEMBER_COLUMNS,
    connection_chunks,
    ensure_database,
    foreign_keys,
    generate_graph,
    log,
    machine_info,
    machine_line,
    make_app,
    member_chunks,
    migrate,
    now_iso,
    read_meta,
    server_url,
    summarize,
    write_meta,
)

# Bump when the generator changes, so that an existing database is not reused by mistake.
GENERATOR_VERSION = 1
RESULTS = Path(__file__).resolve().parent / "results" / "degree.json"
LABELS = {1: "1st", 2: "2nd", 3: "3rd", None: "out of network"}
TARGET_P95_MS = 5.0


def distribution(answers: Counter) -> dict:
    total = sum(answers.values()) or 1
    return {
        LABELS[key]: {"count": answers.get(key, 0), "share": round(answers.get(key, 0) / total, 4)}
        for key in (1, 2, 3, None)
    }


def reusable(conn: psycopg.Connection, wanted: dict) -> dict | None:
    """The stored metadata when the database already holds the data asked for."""
    meta = read_meta(conn)
    if not meta or any(meta.get(key) != value for key, value in wanted.items()):
        return None
    members = conn.execute("SELECT count(*) FROM member").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM connection").fetchone()[0]
    has_pk = conn.execute(
        "SELECT 1 FROM pg_constraint WHERE conrelid = 'connection'::regclass AND contype = 'p'"
    ).fetchone()
    if members != wanted["members"] or rows != meta.get("connection_rows") or not has_pk:
        return None
    return meta


def load(base_url: str, name: str, args, wanted: dict) -> dict:
    timings = {}
    started = time.perf_counter()
    rng = random.Random(args.seed)
    adjacency, cluster_of = generate_graph(
        args.members, args.per_member, args.cluster_size, args.long_share, rng
    )
    rows = sum(len(neighbours) for neighbours in adjacency)
    timings["generate_s"] = round(time.perf_counter() - started, 2)
    log(f"  generated {rows // 2:,} connections ({rows:,} rows) in {timings['generate_s']} s")

    with psycopg.connect(server_url(base_url, name)) as conn:
        step = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        # Empties both tables in this transaction, which lets COPY write frozen rows.
        conn.execute("TRUNCATE member RESTART IDENTITY CASCADE")
        # Foreign keys are checked row by row, by trigger, during COPY: 5M rows took about
        # 110 s that way, against about 4 s to check them all at once when added back.
        # The primary key stays: the rows arrive in key order, so maintaining it during
        # COPY cost about 8 s against about 3 s to build it afterwards; not worth it.
        fk_drops, fk_adds = foreign_keys(conn, "connection")
        for statement in fk_drops:
            conn.execute(statement)
        with conn.cursor() as cur:
            with cur.copy(f"COPY member ({MEMBER_COLUMNS}) FROM STDIN WITH (FREEZE)") as copy:
                for data in member_chunks(args.members, cluster_of, rng):
                    copy.write(data)
            timings["copy_members_s"] = round(time.perf_counter() - step, 2)
            step = time.perf_counter()
            with cur.copy(
                "COPY connection (member_id, other_id, created_at) FROM STDIN WITH (FREEZE)"
            ) as copy:
                for data in connection_chunks(adjacency):
                    copy.write(data)
            timings["copy_connections_s"] = round(time.perf_counter() - step, 2)
        del adjacency
        step = time.perf_counter()
        for statement in fk_adds:
            conn.execute(statement)
        conn.execute("SELECT setval(pg_get_serial_sequence('member', 'id'), %s)", (args.members,))
        timings["foreign_keys_s"] = round(time.perf_counter() - step, 2)
        conn.commit()

    step = time.perf_counter()
    with psycopg.connect(server_url(base_url, name), autocommit=True) as conn:
        # VACUUM as well as ANALYZE: it sets the visibility map, without which the
        # index-only scans of `connection` would visit the heap for every row.
        conn.execute("VACUUM (ANALYZE) member")
        conn.execute("VACUUM (ANALYZE) connection")
        timings["vacuum_analyze_s"] = round(time.perf_counter() - step, 2)
        timings["total_s"] = round(time.perf_counter() - started, 2)
        meta = dict(wanted, connection_rows=rows, load=timings, loaded_at=now_iso())
        write_meta(conn, meta)
    return meta


# --------------------------------------------------------------------------- benchmark


def random_pairs(n: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    pairs = []
    while len(pairs) < count:
        a, b = rng.randint(1, n), rng.randint(1, n)
        if a != b:
            pairs.append((a, b))
    return pairs


def time_degree(degrees, pairs) -> tuple[list[float], Counter, dict]:
    samples, answers, by_answer = [], Counter(), {}
    clock = time.perf_counter
    for a, b in pairs:
        start = clock()
        value = degrees.degree(a, b)
        elapsed = (clock() - start) * 1000
        samples.append(elapsed)
        answers[value] += 1
        by_answer.setdefault(value, []).append(elapsed)
    return samples, answers, by_answer


def time_degrees(degrees, batches) -> tuple[list[float], Counter]:
    samples, answers = [], Counter()
    clock = time.perf_counter
    for viewer, ids in batches:
        start = clock()
        result = degrees.degrees(viewer, ids)
        samples.append((clock() - start) * 1000)
        answers.update(result.values())
    return samples, answers


def explain(degrees, a: int, b: int | list[int]) -> str:
    """EXPLAIN ANALYZE of the query degree(a, b), or degrees(a, b) when b is a list."""
    from sqlalchemy import bindparam, text

    from linkmsg.extensions import db

    prefix = "EXPLAIN (ANALYZE, BUFFERS) "
    if isinstance(b, list):
        statement = text(prefix + degrees._BATCH_DEGREE_SQL.text).bindparams(
            bindparam("ids", expanding=True)
        )
        params = {"a": a, "ids": sorted(set(b) - {a})}
    else:
        statement, params = text(prefix + degrees._DEGREE_SQL.text), {"a": a, "b": b}
    return "\n".join(db.session.execute(statement, params).scalars().all())


# --------------------------------------------------------------------------- check


def bfs_levels(conn: psycopg.Connection, start: int, depth: int = 3) -> dict[int, int]:
    """Distances up to `depth` from `start`, fetching only the neighbours it expands."""
    distance = {start: 0}
    frontier = [start]
    for level in range(1, depth + 1):
        if not frontier:
            break
        rows = conn.execute(
            "SELECT other_id FROM connection WHERE member_id = ANY(%s)", (frontier,)
        ).fetchall()
        frontier = []
        for (other,) in rows:
            if other not in distance:
                distance[other] = level
                frontier.append(other)
    return distance


def check(base_url: str, name: str, degrees, n: int, pairs: int, rng: random.Random) -> dict:
    """degree() and degrees() against a breadth-first search in Python.

    Picks the second member of each pair from the BFS levels in turn (1st, 2nd, 3rd,
    anyone) so that every answer is exercised, not just the common ones.
    """
    mismatches, answers, batch_checked = [], Counter(), 0
    with psycopg.connect(server_url(base_url, name), autocommit=True) as conn:
        for i in range(pairs):
            a = rng.randint(1, n)
            distance = bfs_levels(conn, a)
            levels = {level: [] for level in (1, 2, 3)}
            for member, level in distance.items():
                if level:
                    levels[level].append(member)
            wanted_level = (1, 2, 3, None, None)[i % 5]
            pool = levels.get(wanted_level) if wanted_level else None
            b = rng.choice(pool) if pool else rng.randint(1, n)
            if i == pairs - 1:
                b = a  # one self pair: never a degree
            expected = None if a == b else distance.get(b)
            got = degrees.degree(a, b)
            answers[got] += 1
            if got != expected:
                mismatches.append({"a": a, "b": b, "degree": got, "bfs": expected})
            if i % 5 == 0:
                # A page of 20: a few from each level plus strangers, and `a` itself.
                ids = [rng.choice(levels[lv]) for lv in (1, 2, 3) for _ in range(4) if levels[lv]]
                ids += [rng.randint(1, n) for _ in range(19 - len(ids))] + [a]
                result = degrees.degrees(a, ids)
                batch_checked += 1
                for member in ids:
                    want = None if member == a else distance.get(member)
                    if result.get(member) != want:
                        mismatches.append(
                            {"viewer": a, "id": member, "degrees": result.get(member), "bfs": want}
                        )
    return {
        "pairs": pairs,
        "degrees_batches": batch_checked,
        "answers": {LABELS[k]: v for k, v in answers.items()},
        "mismatches": mismatches,
        "ok": not mismatches,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.degree", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--per-member", type=int, default=50, help="average connections")
    parser.add_argument("--cluster-size", type=int, default=200)
    parser.add_argument(
        "--long-share", type=float, default=0.1, help="share of links outside the cluster"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data")
    parser.add_argument("--pairs", type=int, default=2000, help="timed degree() calls")
    parser.add_argument("--batches", type=int, default=300, help="timed degrees() calls")
    parser.add_argument("--page", type=int, default=20, help="ids per degrees() call")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls first")
    parser.add_argument("--check", action="store_true", help="verify against a BFS")
    parser.add_argument("--check-pairs", type=int, default=50)
    parser.add_argument("--explain", type=int, default=0, help="EXPLAIN the N slowest pairs")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="linkmsg_bench")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.members < 2 * args.cluster_size or not 0 < args.per_member < args.cluster_size:
        parser.error("need members >= 2 * cluster size and 0 < per-member < cluster size")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    wanted = {
        "generator": GENERATOR_VERSION,
        "members": args.members,
        "per_member": args.per_member,
        "cluster_size": args.cluster_size,
        "long_share": args.long_share,
        "seed": args.seed,
    }

    ensure_database(args.server, args.database, args.rebuild)
    app = make_app(args.server, args.database)
    migrate(app)

    with psycopg.connect(server_url(args.server, args.database), autocommit=True) as conn:
        meta = None if args.rebuild else reusable(conn, wanted)
    if meta:
        log(
            f"reusing {args.database} (loaded {meta['loaded_at']},"
            f" took {meta['load']['total_s']} s; --rebuild to reload)"
        )
        loaded_now = False
    else:
        log(f"loading {args.members:,} members, ~{args.per_member} connections each")
        meta = load(args.server, args.database, args, wanted)
        loaded_now = True
        load_line = ", ".join(f"{k} {v}" for k, v in meta["load"].items())
        log(f"  load took {meta['load']['total_s']} s ({load_line})")

    from linkmsg.extensions import db
    from linkmsg.services import degrees

    # Separate generators: the timed pairs are the same with and without --check.
    rng = random.Random(args.seed + 1000)
    check_rng = random.Random(args.seed + 2000)
    report: dict = {
        "benchmark": "network degree",
        "command": "python -m bench.degree " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": {**wanted, "connections": meta["connection_rows"] // 2},
        "load": {**meta["load"], "loaded_this_run": loaded_now, "loaded_at": meta["loaded_at"]},
    }

    with app.app_context():
        if args.check:
            log(f"checking {args.check_pairs} pairs against a BFS ...")
            result = check(
                args.server, args.database, degrees, args.members, args.check_pairs, check_rng
            )
            report["check"] = result
            status = "OK" if result["ok"] else f"{len(result['mismatches'])} MISMATCHES"
            log(f"  check {status}: {result['answers']}")
            for mismatch in result["mismatches"][:10]:
                log(f"    {mismatch}")
            db.session.rollback()

        warm = random_pairs(args.members, args.warmup, rng)
        for a, b in warm:
            degrees.degree(a, b)
        for a, _ in warm[: max(1, args.warmup // 10)]:
            degrees.degrees(a, rng.sample(range(1, args.members + 1), args.page))

        pairs = random_pairs(args.members, args.pairs, rng)
        report["load_average_before"] = list(os.getloadavg())
        samples, answers, by_answer = time_degree(degrees, pairs)
        batches = []
        for _ in range(args.batches):
            viewer = rng.randint(1, args.members)
            ids = [m for m in rng.sample(range(1, args.members + 1), args.page + 1) if m != viewer]
            batches.append((viewer, ids[: args.page]))
        batch_samples, batch_answers = time_degrees(degrees, batches)
        report["load_average_after"] = list(os.getloadavg())

        single = summarize(samples)
        single["target_p95_ms"] = TARGET_P95_MS
        single["meets_target"] = single["p95_ms"] < TARGET_P95_MS
        single["answers"] = distribution(answers)
        single["by_answer"] = {
            LABELS[k]: summarize(v)
            for k, v in sorted(
                by_answer.items(), key=lambda item: 4 if item[0] is None else item[0]
            )
        }
        report["degree"] = single
        batch = summarize(batch_samples)
        batch["page"] = args.page
        batch["answers"] = distribution(batch_answers)
        report["degrees"] = batch

        if args.explain:
            slowest = sorted(zip(samples, pairs, strict=True), reverse=True)[: args.explain]
            report["explain"] = []
            for elapsed, (a, b) in slowest:
                plan = explain(degrees, a, b)
                report["explain"].append({"a": a, "b": b, "ms": round(elapsed, 3), "plan": plan})
                log(f"\nEXPLAIN ANALYZE degree({a}, {b}) [{elapsed:.2f} ms in the timed run]")
                log(plan)
            slowest = sorted(zip(batch_samples, batches, strict=True), reverse=True)[:1]
            for elapsed, (viewer, ids) in slowest:
                plan = explain(degrees, viewer, ids)
                report["explain"].append(
                    {"viewer": viewer, "ids": ids, "ms": round(elapsed, 3), "plan": plan}
                )
                log(f"\nEXPLAIN ANALYZE degrees({viewer}, ...) [{elapsed:.2f} ms in the timed run]")
                log(plan)
        db.session.rollback()

    with psycopg.connect(server_url(args.server, args.database), autocommit=True) as conn:
        report["machine"] = machine_info(conn)

    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(args.output)
    log(f"\nwrote {args.output}")
    return 0 if report.get("check", {}).get("ok", True) else 1


def print_report(report: dict) -> None:
    machine = report["machine"]
    log("")
    log(machine_line(machine))
    data = report["dataset"]
    log(
        f"{data['members']:,} members, {data['connections']:,} connections "
        f"(load {report['load']['total_s']} s"
        f"{'' if report['load']['loaded_this_run'] else ', earlier run'})"
    )

    def line(title: str, stats: dict) -> str:
        return (
            f"{title:<28} n={stats['n']:<5} median {stats['median_ms']:7.3f} ms   "
            f"p95 {stats['p95_ms']:7.3f} ms   p99 {stats['p99_ms']:7.3f} ms   "
            f"max {stats['max_ms']:7.3f} ms"
        )

    single, batch = report["degree"], report["degrees"]
    log(line("degree(a, b)", single))
    for label, stats in single["by_answer"].items():
        log(line(f"  answer {label}", stats))
    log(line(f"degrees(viewer, {batch['page']} ids)", batch))
    for title, stats in (("degree answers", single), ("degrees answers", batch)):
        parts = ", ".join(
            f"{label} {v['count']} ({v['share']:.1%})" for label, v in stats["answers"].items()
        )
        log(f"{title}: {parts}")
    log(
        "load average (1, 5, 15 min) before "
        + " ".join(f"{x:.2f}" for x in report["load_average_before"])
        + ", after "
        + " ".join(f"{x:.2f}" for x in report["load_average_after"])
    )
    verdict = "met" if single["meets_target"] else "MISSED"
    log(f"target p95 < {single['target_p95_ms']} ms for degree(): {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
