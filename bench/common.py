"""Shared by the benchmarks: the generated network (members in clusters, connections),
PostgreSQL helpers (databases, migrations, COPY, constraints, metadata in the database
comment), percentiles and the machine description written next to the figures."""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

# Every generated member logs in with this password.
BENCH_PASSWORD = "bench-password"

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


def summarize(
    samples_ms: list[float],
    points: tuple[int, ...] = (95, 99),
    digits: int = 3,
    median_key: str = "median_ms",
) -> dict:
    """n, the median, the percentiles `points` (as p95_ms, ...), mean, min and max."""
    values = sorted(samples_ms)
    if not values:
        return {"n": 0}
    summary = {"n": len(values), median_key: round(statistics.median(values), digits)}
    # "inclusive": linear interpolation between closest ranks, as numpy's default.
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else None
    for point in points:
        summary[f"p{point}_ms"] = round(cuts[point - 1] if cuts else values[0], digits)
    summary.update(
        mean_ms=round(statistics.fmean(values), digits),
        min_ms=round(values[0], digits),
        max_ms=round(values[-1], digits),
    )
    return summary


def machine_line(machine: dict) -> str:
    """The one-line description of the machine a report came from."""
    return (
        f"{machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"PostgreSQL {machine['postgresql']}, {machine['date']}"
    )


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


def bench_password_hash() -> str:
    """One real scrypt hash of BENCH_PASSWORD, as the app makes them."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(BENCH_PASSWORD, method="scrypt")


def member_chunks(
    n: int,
    cluster_of: list[int],
    rng: random.Random,
    chunk: int = 5000,
    *,
    password_hash: str | None = None,
    about=None,
):
    """COPY text for the member table, in chunks.

    `about(member, title, company, city)`, when given, writes the About text (COPY-escaped);
    it must draw from its own random generator, so that the rest stays the same.
    """
    # One real scrypt hash for everyone: hashing 100,000 passwords would take minutes.
    password_hash = password_hash or bench_password_hash()
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
        title = rng.choice(TITLES)
        text = about(member, title, company, city) if about else ""
        rng.getrandbits(128)  # was the session token: drawn still, so the data stay the same
        lines.append(
            f"{member}\tmember{member}@bench.linkmsg.test\t{password_hash}\t"
            f"{first.lower()}-{last.lower().replace(' ', '')}-{member}\t{first} {last}\t"
            f"{title} at {company}\t{city}\t{text}\t\\N\tfree\tmember\t"
            f"{active:%Y-%m-%d %H:%M:%S}\tt\tt\tt\t\\N\t"
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
    " created_at"
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


# --------------------------------------------------------------------------- machine


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine_info(
    conn: psycopg.Connection, relations: tuple[str, ...] = ("connection", "pk_connection", "member")
) -> dict:
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
            " WHERE relname = ANY(%s) ORDER BY relname",
            (list(relations),),
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
        "date": now_iso(),
    }
