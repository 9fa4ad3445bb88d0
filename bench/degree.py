"""Micro-benchmark of the network degree check on a PostgreSQL network of realistic size.

    .venv/bin/python -m bench.degree                # build (or reuse) linkmsg_bench, time it
    .venv/bin/python -m bench.degree --check        # also verify against a BFS in Python
    .venv/bin/python -m bench.degree --rebuild      # regenerate and reload the data

Times `linkmsg.services.network.degree()` on random pairs and `degrees()` on pages of 20
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
import platform
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

# Bump when the generator changes, so that an existing database is not reused by mistake.
GENERATOR_VERSION = 1
RESULTS = Path(__file__).resolve().parent / "results" / "degree.json"
LABELS = {1: "1st", 2: "2nd", 3: "3rd", None: "out of network"}
TARGET_P95_MS = 5.0

FIRST_NAMES = (
    "Ada Alan Amara Ana Arjun Aya Ben Bilal Carla Chen Chloe Dana David Diego Elena Emeka Emma "
    "Farah Felix Grace Hana Hugo Ines Ivan Jade Jamal Jonas Julia Kai Karim Kenji Lara Leo Lina "
    "Luca Maya Mei Mohamed Nadia Nina Noah Olga Omar Paula Priya Rafael Rosa Sam Sara Sofia "
    "Tariq Tomas Uma Victor Wei Yara Yusuf Zoe"
).split()
LAST_NAMES = (
    "Abe Adeyemi Alvarez Bauer Becker Bianchi Chen Costa Moreira Dubois Eriksen Fischer Garcia "
    "Gupta Haddad Hansen Ito Jensen Kang Khan Kim Kowalski Larsen Lee Lopez Martin Meyer Moreau "
    "Müller Nakamura Nguyen Novak Okafor Olsen Park Patel Petrov Rossi Santos Schmidt Silva "
    "Singh Smith Suzuki Tanaka Vogel Wagner Wang Weber Wilson Yamamoto Zhang"
).split()
TITLES = (
    "Software Engineer",
    "Senior Software Engineer",
    "Product Manager",
    "Data Scientist",
    "Designer",
    "Engineering Manager",
    "Account Executive",
    "Recruiter",
    "Marketing Lead",
    "Financial Analyst",
    "Operations Manager",
    "Consultant",
)
COMPANY_WORDS = (
    "Acme Apex Blue Bright Cedar Cloud Delta Ember Falcon Global Harbor Iris Juniper Kite "
    "Lumen Maple Nimbus Northwind Orbit Pioneer Quartz Ridge Summit Terra Vertex Willow Zenith"
).split()
COMPANY_KINDS = "Labs Systems Analytics Health Bank Logistics Media Robotics Foods Energy".split()
CITIES = (
    "Amsterdam, NL|Austin, TX|Bangalore, IN|Berlin, DE|Boston, MA|Chicago, IL|Dublin, IE|"
    "Lagos, NG|Lisbon, PT|London, UK|Madrid, ES|Melbourne, AU|Mexico City, MX|Milan, IT|"
    "Nairobi, KE|New York, NY|Paris, FR|Sao Paulo, BR|Seattle, WA|Seoul, KR|Singapore, SG|"
    "Stockholm, SE|Tokyo, JP|Toronto, CA|Warsaw, PL|Zurich, CH"
).split("|")


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(message, flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarize(samples_ms: list[float]) -> dict:
    values = sorted(samples_ms)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(percentile(values, 0.95), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
        "min_ms": round(values[0], 3),
        "max_ms": round(values[-1], 3),
    }


def distribution(answers: Counter) -> dict:
    total = sum(answers.values()) or 1
    return {
        LABELS[key]: {"count": answers.get(key, 0), "share": round(answers.get(key, 0) / total, 4)}
        for key in (1, 2, 3, None)
    }


def server_url(base: str, database: str) -> str:
    return f"{base.rstrip('/')}/{database}"


# --------------------------------------------------------------------------- database


def ensure_database(base_url: str, name: str, rebuild: bool) -> None:
    with psycopg.connect(server_url(base_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and rebuild:
            log(f"dropping database {name}")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def make_app(base_url: str, name: str):
    from linkmsg import create_app

    sqlalchemy_url = server_url(base_url, name).replace("postgresql://", "postgresql+psycopg://", 1)
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": sqlalchemy_url, "TESTING": True, "SECRET_KEY": "bench"}
    )


def migrate(app) -> None:
    import flask_migrate

    with app.app_context():
        flask_migrate.upgrade()


def read_meta(conn: psycopg.Connection) -> dict | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
        " WHERE datname = current_database()"
    ).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def write_meta(conn: psycopg.Connection, meta: dict) -> None:
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(dbname), sql.Literal(json.dumps(meta))
        )
    )


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


# --------------------------------------------------------------------------- generator


def generate_graph(
    n: int, per_member: int, cluster_size: int, long_share: float, rng: random.Random
) -> tuple[list[list[int]], list[int]]:
    """Adjacency lists (index = member id, 1..n) and each member's cluster number.

    Undirected edges are deduplicated and self-edges skipped; the total is topped up to
    n * per_member / 2 edges, so the average member has per_member connections.
    """
    ids = list(range(1, n + 1))
    rng.shuffle(ids)
    clusters = [ids[i : i + cluster_size] for i in range(0, n, cluster_size)]
    cluster_of = [0] * (n + 1)
    for number, members in enumerate(clusters):
        for member in members:
            cluster_of[member] = number

    target = n * per_member // 2
    base = n + 1
    edges: set[int] = set()
    add = edges.add
    rand = rng.random
    randrange = rng.randrange
    half = per_member / 2
    low_k, high_k = max(1, round(half * 0.5)), max(1, round(half * 1.5))

    def start_connections(member: int, count: int) -> None:
        mates = clusters[cluster_of[member]]
        size = len(mates)
        for _ in range(count):
            other = randrange(1, base) if rand() < long_share else mates[randrange(size)]
            if other != member:
                add(member * base + other if member < other else other * base + member)

    for member in range(1, base):
        start_connections(member, rng.randint(low_k, high_k))
    # Duplicates and self-edges were dropped: top up with members picked at random.
    while len(edges) < target:
        for _ in range(target - len(edges)):
            start_connections(randrange(1, base), 1)

    adjacency: list[list[int]] = [[] for _ in range(base)]
    for key in edges:
        low, high = divmod(key, base)
        adjacency[low].append(high)
        adjacency[high].append(low)
    for neighbours in adjacency:
        neighbours.sort()
    return adjacency, cluster_of


def member_chunks(n: int, cluster_of: list[int], rng: random.Random, chunk: int = 5000):
    """COPY text for the member table, in chunks."""
    from werkzeug.security import generate_password_hash

    # One real scrypt hash for everyone: hashing 100,000 passwords would take minutes.
    password_hash = generate_password_hash("bench-password", method="scrypt")
    now = datetime(2026, 1, 1)
    companies = {}
    lines = []
    for member in range(1, n + 1):
        cluster = cluster_of[member]
        if cluster not in companies:
            crng = random.Random(cluster)
            companies[cluster] = (
                f"{crng.choice(COMPANY_WORDS)} {crng.choice(COMPANY_KINDS)} {cluster}",
                crng.choice(CITIES),
            )
        company, city = companies[cluster]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
        active = now - timedelta(seconds=rng.randrange(60 * 86400))
        lines.append(
            f"{member}\tmember{member}@bench.linkmsg.test\t{password_hash}\t"
            f"{first.lower()}-{last.lower().replace(' ', '')}-{member}\t{first} {last}\t"
            f"{rng.choice(TITLES)} at {company}\t{city}\t\t\\N\tfree\tmember\t"
            f"{active:%Y-%m-%d %H:%M:%S}\tt\tt\tt\t\\N\t{rng.getrandbits(128):032x}\t"
            f"{created:%Y-%m-%d %H:%M:%S}\n"
        )
        if len(lines) >= chunk:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


MEMBER_COLUMNS = (
    "id, email, password_hash, handle, name, headline, location, about, avatar_key, plan, role,"
    " last_active_at, show_active, accepts_inmail, email_notifications, suspended_at,"
    " session_token, created_at"
)


def connection_chunks(adjacency: list[list[int]], chunk_members: int = 4000):
    """COPY text for the connection table, sorted by (member_id, other_id)."""
    stamps = [
        f"{datetime(2023, 1, 1) + timedelta(hours=7 * i):%Y-%m-%d %H:%M:%S}" for i in range(4096)
    ]
    lines = []
    for member in range(1, len(adjacency)):
        prefix = f"{member}\t"
        # The same timestamp for (a, b) and (b, a): derived from the unordered pair.
        lines.extend(
            f"{prefix}{other}\t{stamps[(member * other) & 4095]}\n" for other in adjacency[member]
        )
        if member % chunk_members == 0:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def foreign_keys(conn: psycopg.Connection, table: str):
    """(drop statements, add statements) for the foreign keys of a table, read from the
    catalog so that whatever the migrations made is put back exactly."""
    rows = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        (table,),
    ).fetchall()
    drops = [
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(table), sql.Identifier(name)
        )
        for name, _ in rows
    ]
    adds = [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
        )
        for name, definition in rows
    ]
    return drops, adds


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
        meta = dict(wanted, connection_rows=rows, load=timings, loaded_at=_now())
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


def time_degree(network, pairs) -> tuple[list[float], Counter, dict]:
    samples, answers, by_answer = [], Counter(), {}
    clock = time.perf_counter
    for a, b in pairs:
        start = clock()
        value = network.degree(a, b)
        elapsed = (clock() - start) * 1000
        samples.append(elapsed)
        answers[value] += 1
        by_answer.setdefault(value, []).append(elapsed)
    return samples, answers, by_answer


def time_degrees(network, batches) -> tuple[list[float], Counter]:
    samples, answers = [], Counter()
    clock = time.perf_counter
    for viewer, ids in batches:
        start = clock()
        result = network.degrees(viewer, ids)
        samples.append((clock() - start) * 1000)
        answers.update(result.values())
    return samples, answers


def explain(network, a: int, b: int | list[int]) -> str:
    """EXPLAIN ANALYZE of the query degree(a, b), or degrees(a, b) when b is a list."""
    from sqlalchemy import bindparam, text

    from linkmsg.extensions import db

    prefix = "EXPLAIN (ANALYZE, BUFFERS) "
    if isinstance(b, list):
        statement = text(prefix + network._BATCH_DEGREE_SQL.text).bindparams(
            bindparam("ids", expanding=True)
        )
        params = {"a": a, "ids": sorted(set(b) - {a})}
    else:
        statement, params = text(prefix + network._DEGREE_SQL.text), {"a": a, "b": b}
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


def check(base_url: str, name: str, network, n: int, pairs: int, rng: random.Random) -> dict:
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
            got = network.degree(a, b)
            answers[got] += 1
            if got != expected:
                mismatches.append({"a": a, "b": b, "degree": got, "bfs": expected})
            if i % 5 == 0:
                # A page of 20: a few from each level plus strangers, and `a` itself.
                ids = [rng.choice(levels[lv]) for lv in (1, 2, 3) for _ in range(4) if levels[lv]]
                ids += [rng.randint(1, n) for _ in range(19 - len(ids))] + [a]
                result = network.degrees(a, ids)
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


# --------------------------------------------------------------------------- machine


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine_info(conn: psycopg.Connection) -> dict:
    cpu = "unknown"
    memory_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    settings = dict(
        conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (
                [
                    "shared_buffers",
                    "work_mem",
                    "effective_cache_size",
                    "random_page_cost",
                    "jit",
                    "plan_cache_mode",
                ],
            ),
        ).fetchall()
    )
    sizes = dict(
        conn.execute(
            "SELECT relname, pg_size_pretty(pg_relation_size(oid)) FROM pg_class"
            " WHERE relname IN ('connection', 'pk_connection', 'member')"
        ).fetchall()
    )
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "postgresql": conn.execute("SHOW server_version").fetchone()[0],
        "postgresql_full": conn.execute("SELECT version()").fetchone()[0],
        "postgresql_settings": settings,
        "relation_sizes": sizes,
        "date": _now(),
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
    from linkmsg.services import network

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
                args.server, args.database, network, args.members, args.check_pairs, check_rng
            )
            report["check"] = result
            status = "OK" if result["ok"] else f"{len(result['mismatches'])} MISMATCHES"
            log(f"  check {status}: {result['answers']}")
            for mismatch in result["mismatches"][:10]:
                log(f"    {mismatch}")
            db.session.rollback()

        warm = random_pairs(args.members, args.warmup, rng)
        for a, b in warm:
            network.degree(a, b)
        for a, _ in warm[: max(1, args.warmup // 10)]:
            network.degrees(a, rng.sample(range(1, args.members + 1), args.page))

        pairs = random_pairs(args.members, args.pairs, rng)
        report["load_average_before"] = list(os.getloadavg())
        samples, answers, by_answer = time_degree(network, pairs)
        batches = []
        for _ in range(args.batches):
            viewer = rng.randint(1, args.members)
            ids = [m for m in rng.sample(range(1, args.members + 1), args.page + 1) if m != viewer]
            batches.append((viewer, ids[: args.page]))
        batch_samples, batch_answers = time_degrees(network, batches)
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
                plan = explain(network, a, b)
                report["explain"].append({"a": a, "b": b, "ms": round(elapsed, 3), "plan": plan})
                log(f"\nEXPLAIN ANALYZE degree({a}, {b}) [{elapsed:.2f} ms in the timed run]")
                log(plan)
            slowest = sorted(zip(batch_samples, batches, strict=True), reverse=True)[:1]
            for elapsed, (viewer, ids) in slowest:
                plan = explain(network, viewer, ids)
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
    log(
        f"{machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"PostgreSQL {machine['postgresql']}, {machine['date']}"
    )
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
