"""Generate a messaging network of realistic size into PostgreSQL, for the page benchmarks.

    .venv/bin/python -m bench.generate                 # full size into linkmsg_bench_1
    .venv/bin/python -m bench.generate --scale 0.01    # 1% into linkmsg_bench_0_01
    .venv/bin/python -m bench.generate --rebuild       # regenerate and reload

At --scale 1.0: 100,000 members with about 50 connections each (the network of
bench/degree.py), 200,000 threads (one per pair; 1% of them InMail threads between members
who are not connected, 5% group conversations of 3 to 50 members, the rest between
connected members) and 1,000,000 messages. A few long threads hold thousands of messages,
so that pages deep in a thread can be timed; each probe member started a group as large as
their connections allow (50), so that sends into it can be timed (bench/send.py).
Every member has a full profile and logs in with the password `bench-password`. The
thread_member rows agree with the messages: each side's last message, and what each side
has read (the sender of the last message has read it; about 20% of the other sides have
not read what came after their own last message).

Everything is loaded with COPY in one transaction; secondary indexes and constraints are
dropped first and put back afterwards, sequences are moved past the loaded ids. The
database comment records what was loaded, and a later run with the same parameters reuses
it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from .common import (
    MEMBER_COLUMNS,
    connection_chunks,
    ensure_database,
    generate_graph,
    log,
    make_app,
    member_chunks,
    migrate,
    now_iso,
    read_meta,
    server_url,
    write_meta,
)
from .corpus import Corpus, about_writer

# Bump when the generator changes, so that an existing database is not reused by mistake.
GENERATOR_VERSION = 2
FULL_MEMBERS = 100_000
FULL_THREADS = 200_000
FULL_MESSAGES = 1_000_000
INMAIL_SHARE = 0.01  # of threads
GROUP_SHARE = 0.05  # of threads: group conversations of GROUP_MIN..GROUP_MAX members
GROUP_MIN, GROUP_MAX = 3, 50
GROUP_ADDED_SHARE = 0.3  # of groups: one member added later (reads from then on)
GROUP_LEFT_SHARE = 0.2  # of groups: one member left (keeps what came before)
UNREAD_SHARE = 0.2  # of the sides that did not send the last message
PROBES = 8  # members the page benchmark logs in as
PROBE_THREADS = 30  # threads each probe has at least (more than one inbox page)
LONG_THREADS = 4  # between a probe and one of their connections
LONG_LENGTH = 3000  # messages in a long thread at full size
END = datetime(2026, 1, 1)  # the newest generated message is before this
SPAN_SECONDS = 730 * 86400  # messages span two years
LOADED_TABLES = (
    "member",
    "connection",
    "thread",
    "thread_member",
    "message",
    "inmail",
    "group_span",
)
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"


def default_database(scale: float) -> str:
    return "linkmsg_bench_" + f"{scale:g}".replace(".", "_").replace("-", "_")


def sizes(scale: float) -> dict:
    """Row counts and shapes for a scale (1.0 = full size)."""
    members = max(20, round(FULL_MEMBERS * scale))
    threads = max(10, round(FULL_THREADS * scale))
    messages = max(threads * 2, round(FULL_MESSAGES * scale))
    cluster_size = min(200, members // 2)
    per_member = min(50, max(2, cluster_size // 3)) if cluster_size < 200 else 50
    probes = min(PROBES, max(2, members // 10))
    long_threads = min(LONG_THREADS, probes)
    # Long threads take at most 30% of the messages (at full size 4 x 3,000 = 1.2%).
    long_length = max(2, min(LONG_LENGTH, int(messages * 0.3) // long_threads))
    return {
        "members": members,
        "per_member": per_member,
        "cluster_size": cluster_size,
        "long_share": 0.1,
        "threads": threads,
        "inmail_threads": round(threads * INMAIL_SHARE),
        "group_threads": max(1, round(threads * GROUP_SHARE)),
        "messages": messages,
        "probes": probes,
        "long_threads": long_threads,
        "long_length": long_length,
    }


# --------------------------------------------------------------------------- threads


@dataclass(frozen=True)
class Group:
    """A generated group conversation: its starter and first members (starter first), one
    member added later and one who left (or None), its name (None: named after members)."""

    members: tuple[int, ...]
    added: int | None
    leaver: int | None
    name: str | None

    @property
    def everyone(self) -> tuple[int, ...]:
        return self.members + ((self.added,) if self.added else ())


GROUP_NAMES = (
    "Launch team|Hiring panel|Q3 planning|Alumni|Book club|Conference crew|Design review|"
    "Sales kickoff|Mentors|Data guild|Offsite|Founders circle"
).split("|")


def choose_groups(adjacency, shape: dict, probes: list[int], rng: random.Random) -> list[Group]:
    """shape["group_threads"] groups, each started by a member with their own connections
    (as the app requires): every probe starts one as large as it can be (up to 50, the
    group a send is timed into); the others have 3 to 50 members, most of them few, and
    some have a member added later or one who left."""
    base = len(adjacency)
    groups: list[Group] = []
    for probe in probes[: shape["group_threads"] // 2]:
        size = min(GROUP_MAX, 1 + len(adjacency[probe]))
        if size >= GROUP_MIN:
            others = rng.sample(adjacency[probe], size - 1)
            groups.append(Group((probe, *others), None, None, rng.choice(GROUP_NAMES)))
    while len(groups) < shape["group_threads"]:
        starter = rng.randrange(1, base)
        neighbours = adjacency[starter]
        if len(neighbours) < GROUP_MIN - 1:
            continue
        size = GROUP_MIN + int((GROUP_MAX - GROUP_MIN) * rng.random() ** 2.5)
        size = min(size, 1 + len(neighbours))
        members = (starter, *rng.sample(neighbours, size - 1))
        added = leaver = None
        if size < GROUP_MAX and rng.random() < GROUP_ADDED_SHARE:
            outside = [m for m in neighbours if m not in members]
            added = rng.choice(outside) if outside else None
        if size > GROUP_MIN and rng.random() < GROUP_LEFT_SHARE:
            leaver = rng.choice(members[1:])
        name = rng.choice(GROUP_NAMES) if rng.random() < 0.6 else None
        groups.append(Group(members, added, leaver, name))
    return groups


def choose_threads(adjacency: list[list[int]], shape: dict, rng: random.Random):
    """(pairs, probes, long thread indexes, groups by index). pairs[i] = (a, b, kind,
    first_sender_side); a group's entry is (its starter, 0, "group", 0).

    Probes start PROBE_THREADS threads with their connections. The other ordinary threads
    go between connected members picked by an activity weight (Pareto: a few members have
    dozens of threads, most have a few). InMail threads go between members who are not
    connected. Every pair has at most one thread of each kind.
    """
    n = len(adjacency) - 1
    base = n + 1
    seen: set[int] = set()
    pairs: list[tuple[int, int, str, int]] = []

    def add(a: int, b: int, kind: str = "ordinary") -> bool:
        low, high = (a, b) if a < b else (b, a)
        key = (low * base + high) * 2 + (kind == "inmail")
        if a == b or key in seen:
            return False
        seen.add(key)
        # side 0 is a_id (the lower id); the first message comes from either side,
        # but an InMail always comes from `a` as given.
        side = (0 if a == low else 1) if kind == "inmail" else rng.getrandbits(1)
        pairs.append((low, high, kind, side))
        return True

    candidates = [m for m in range(1, base) if len(adjacency[m]) >= 3]
    probes = rng.sample(candidates, shape["probes"])
    long_indexes = []
    for number, probe in enumerate(probes):
        neighbours = adjacency[probe]
        wants_long = number < shape["long_threads"]
        for other in rng.sample(neighbours, min(PROBE_THREADS, len(neighbours))):
            if add(probe, other) and wants_long:
                long_indexes.append(len(pairs) - 1)
                wants_long = False

    ordinary = shape["threads"] - shape["inmail_threads"] - shape["group_threads"]
    weights = list(itertools.accumulate(min(40.0, rng.paretovariate(1.3)) for _ in range(n)))
    population = range(1, base)
    stalled = 0
    while len(pairs) < ordinary and stalled < 50:
        before = len(pairs)
        need = ordinary - len(pairs)
        picks = rng.choices(population, cum_weights=weights, k=need + need // 5 + 10)
        for a in picks:
            if len(pairs) >= ordinary:
                break
            if rng.random() < 0.3:  # some threads from anyone, not only the active
                a = rng.randrange(1, base)
            neighbours = adjacency[a]
            if neighbours:
                add(a, neighbours[rng.randrange(len(neighbours))])
        stalled = stalled + 1 if len(pairs) == before else 0
    if len(pairs) < ordinary:
        raise SystemExit(f"could not find {ordinary} connected pairs for threads")

    stalled = 0
    pairs_wanted = shape["threads"] - shape["group_threads"]
    while len(pairs) < pairs_wanted and stalled < 10_000:
        a, b = rng.randrange(1, base), rng.randrange(1, base)
        neighbours = adjacency[a]
        i = bisect.bisect_left(neighbours, b)
        connected = i < len(neighbours) and neighbours[i] == b
        stalled = 0 if not connected and add(a, b, "inmail") else stalled + 1
    groups = {}
    for group in choose_groups(adjacency, shape, probes, rng):
        groups[len(pairs)] = group
        pairs.append((group.members[0], 0, "group", 0))
    return pairs, probes, long_indexes, groups


def message_counts(pairs, long_indexes, shape, rng: random.Random, groups=None) -> list[int]:
    """Messages per thread: long threads as set, the rest lognormal, at least one each (a
    group: its system lines and one message), adding up to exactly shape["messages"]."""
    groups = groups or {}
    counts = [0] * len(pairs)
    long_set = set(long_indexes)
    for i in long_indexes:
        counts[i] = shape["long_length"]
    others = [i for i in range(len(pairs)) if i not in long_set]
    least = [group_lines(groups[i]) + 1 if i in groups else 1 for i in others]
    remaining = shape["messages"] - sum(counts) - sum(least)
    raw = [rng.lognormvariate(0, 1.2) for _ in others]
    factor = remaining / sum(raw)
    for i, fewest, value in zip(others, least, raw, strict=True):
        counts[i] = fewest + min(int(value * factor), 2000)
    short = shape["messages"] - sum(counts)
    for i in rng.choices(others, k=max(0, short)):
        counts[i] += 1
    if short < 0:
        raise SystemExit("too few messages for this many threads")
    return counts


def group_lines(group: Group) -> int:
    """System lines of a generated group: created, and added / left when it has them."""
    return 1 + (group.added is not None) + (group.leaver is not None)


def group_schedules(groups: dict[int, Group], counts, rng: random.Random) -> dict[int, list]:
    """Per group, what each of its messages is, in order: (sender, kind, subject). The
    first is the "created" line; "added" and "left" fall at random places after it; each
    message comes from someone who is a member at that point."""
    schedules = {}
    for index, group in groups.items():
        count = counts[index]
        slots = rng.sample(range(1, count), group_lines(group) - 1)
        added_at = slots.pop() if group.added is not None else count
        left_at = slots.pop() if group.leaver is not None else count
        starter = group.members[0]
        schedule = [(starter, "created", None)]
        for position in range(1, count):
            if position == added_at:
                schedule.append((starter, "added", group.added))
            elif position == left_at:
                schedule.append((group.leaver, "left", group.leaver))
            else:
                present = [m for m in group.members if m != group.leaver or position < left_at]
                if position > added_at:
                    present.append(group.added)
                schedule.append((rng.choice(present), "text", None))
        schedules[index] = schedule
    return schedules


def message_keys(pairs, counts, long_indexes, rng: random.Random) -> tuple[list[int], int]:
    """One integer per message, (second << shift) | (thread << 1) | side, sorted by time:
    the message ids follow the order of the keys, so ids grow with time as in the app."""
    shift = len(pairs).bit_length() + 1
    long_set = set(long_indexes)
    keys = []
    append = keys.append
    randrange = rng.randrange
    for index, ((_, _, kind, side), count) in enumerate(zip(pairs, counts, strict=True)):
        if index in long_set:
            start = randrange(SPAN_SECONDS // 10)
            duration = SPAN_SECONDS - start - 1
        else:
            start = randrange(SPAN_SECONDS)
            # About ten hours between messages on average, within the two years.
            duration = min(SPAN_SECONDS - start - 1, int(count * rng.expovariate(1 / 36_000)))
        times = sorted(start + randrange(duration + 1) for _ in range(count))
        for position in range(1, count):  # one second apart at least: a clear order
            if times[position] <= times[position - 1]:
                times[position] = times[position - 1] + 1
        for position, second in enumerate(times):
            if position:
                # The other side answers more often than not; an InMail is answered first.
                if (kind == "inmail" and position == 1) or rng.random() < 0.7:
                    side ^= 1
            append((second << shift) | (index << 1) | side)
    keys.sort()
    return keys, shift


# --------------------------------------------------------------------------- loading


def detach(conn: psycopg.Connection, tables: tuple[str, ...]) -> list:
    """Drop the foreign keys, unique constraints and secondary indexes of `tables` (not
    the primary keys) and return the statements that put them back, as the migrations
    made them: read from the catalog, so that later migrations are covered too."""
    drops, adds, fks = [], [], []
    for table in tables:
        for name, kind, definition in conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype IN ('f', 'u', 'x') ORDER BY conname",
            (table,),
        ).fetchall():
            drop = sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
            add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
            if kind == "f":
                drops.insert(0, drop)  # foreign keys go first, come back last
                fks.append(add)
            else:
                drops.append(drop)
                adds.append(add)
        for name, definition in conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT EXISTS ("
            "   SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid"
            "   AND c.conindid = i.indexrelid) ORDER BY 1",
            (table,),
        ).fetchall():
            drops.append(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            adds.append(sql.SQL(definition))
    for statement in drops:
        conn.execute(statement)
    return adds + fks


def copy(cur: psycopg.Cursor, table: str, columns: str, chunks) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FREEZE)") as target:
        for data in chunks:
            target.write(data)


def batched(lines, size: int = 20_000):
    """Join COPY lines into byte chunks."""
    buffer = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= size:
            yield "".join(buffer).encode()
            buffer = []
    if buffer:
        yield "".join(buffer).encode()


class Messages:
    """Writes the message COPY lines in id order and keeps, per thread, what the thread,
    thread_member and inmail rows need afterwards."""

    def __init__(self, pairs, keys, shift, corpus: Corpus, groups=None, schedules=None):
        self.pairs, self.keys, self.shift, self.corpus = pairs, keys, shift, corpus
        self.groups = groups or {}
        self.schedules = schedules or {}
        self.group_position = dict.fromkeys(self.groups, 0)
        self.group_own_last: dict[tuple[int, int], int] = {}  # (index, member) -> id
        self.group_line_id: dict[tuple[int, str], int] = {}  # (index, "added"/"left") -> id
        self.group_last_sender: dict[int, int] = {}
        count = len(pairs)
        self.thread_id = [0] * count
        self.first_second = [0] * count
        self.first_id = [0] * count
        self.second_second = [-1] * count  # time of the second message (an InMail's answer)
        self.last_id = [0] * count
        self.last_side = [0] * count
        self.own_last = [0] * (2 * count)  # last message id sent by each side

    def lines(self):
        start = END - timedelta(seconds=SPAN_SECONDS)
        days = [f"{start + timedelta(days=d):%Y-%m-%d}" for d in range(SPAN_SECONDS // 86400 + 2)]
        mask = (1 << (self.shift - 1)) - 1
        pairs, thread_id = self.pairs, self.thread_id
        first_second, first_id, second_second = self.first_second, self.first_id, self.second_second
        last_id, last_side, own_last = self.last_id, self.last_side, self.own_last
        next_thread = 1
        bodies = self.corpus.bodies(len(self.keys))
        for message_id, (key, body) in enumerate(zip(self.keys, bodies, strict=True), 1):
            second = key >> self.shift
            index = (key >> 1) & mask
            side = key & 1
            if not thread_id[index]:
                thread_id[index] = next_thread
                next_thread += 1
                first_second[index] = second
                first_id[index] = message_id
            elif second_second[index] < 0:
                second_second[index] = second
            last_id[index] = message_id
            kind, subject = "text", "\\N"
            if index in self.schedules:
                sender, kind, about = self.schedules[index][self.group_position[index]]
                self.group_position[index] += 1
                self.group_own_last[index, sender] = message_id
                self.group_last_sender[index] = sender
                if kind != "text":
                    subject = about or "\\N"
                    body = (self.groups[index].name or "") if kind == "created" else ""
                    self.group_line_id[index, kind] = message_id
            else:
                last_side[index] = side
                own_last[2 * index + side] = message_id
                sender = pairs[index][side]
            day, rest = divmod(second, 86400)
            hour, rest = divmod(rest, 3600)
            yield (
                f"{message_id}\t{thread_id[index]}\t{sender}\t{body}\t\\N\t"
                f"{days[day]} {hour:02}:{rest // 60:02}:{rest % 60:02}\t{kind}\t{subject}\n"
            )

    @staticmethod
    def stamp(second: int) -> str:
        moment = END - timedelta(seconds=SPAN_SECONDS - second)
        return f"{moment:%Y-%m-%d %H:%M:%S}"


def thread_rows(messages: Messages, rng: random.Random):
    """(thread lines, thread_member lines, inmail lines, group_span lines, unread sides), in
    thread id order."""
    order = sorted(range(len(messages.pairs)), key=messages.thread_id.__getitem__)
    threads, members, inmails, spans = [], [], [], []
    unread = 0
    for index in order:
        a, b, kind, first_side = messages.pairs[index]
        tid = messages.thread_id[index]
        last = messages.last_id[index]
        created = messages.stamp(messages.first_second[index])
        if kind == "group":
            name = messages.groups[index].name or "\\N"
            threads.append(f"{tid}\t\\N\t\\N\tgroup\t{last}\t{created}\t{name}\t{a}\n")
            unread += group_sides(messages, index, rng, members, spans)
            continue
        threads.append(f"{tid}\t{a}\t{b}\t{kind}\t{last}\t{created}\t\\N\t\\N\n")
        for side, (me, other) in enumerate(((a, b), (b, a))):
            read = last
            if side != messages.last_side[index] and rng.random() < UNREAD_SHARE:
                # Not opened since they last wrote (or ever): all that came after is unread.
                read = messages.own_last[2 * index + side]
                unread += 1
            members.append(f"{tid}\t{me}\t{other}\t{last}\t{read}\tf\tf\tt\n")
        if kind == "inmail":
            sender, recipient = (a, b) if first_side == 0 else (b, a)
            answered = messages.second_second[index] >= 0
            created = messages.stamp(messages.first_second[index])
            answer = messages.stamp(messages.second_second[index]) if answered else "\\N"
            status = "replied" if answered else "sent"
            inmails.append(
                f"{len(inmails) + 1}\t{tid}\t{messages.first_id[index]}\t{sender}\t{recipient}\t"
                f"A question about your work\t\\N\t{status}\t{answer}\t{answer}\t\\N\t\\N\t"
                f"{created}\n"
            )
    return threads, members, inmails, spans, unread


def group_sides(messages: Messages, index: int, rng: random.Random, members, spans) -> int:
    """A group's thread_member and group_span lines, as the app leaves them: everyone
    reads from the "created" line (someone added later from their "added" line); who left
    is inactive, with the "left" line as the last they have and read; the others have
    the newest message, read as one-to-one sides are. Returns the unread sides."""
    group = messages.groups[index]
    tid, last = messages.thread_id[index], messages.last_id[index]
    left_id = messages.group_line_id.get((index, "left"))
    unread = 0
    for member in group.everyone:
        if member == group.added:
            first = messages.group_line_id[index, "added"]
        else:
            first = messages.first_id[index]
        if member == group.leaver:
            members.append(f"{tid}\t{member}\t\\N\t{left_id}\t{left_id}\tf\tf\tf\n")
            spans.append(f"{len(spans) + 1}\t{tid}\t{member}\t{first}\t{left_id}\n")
            continue
        read = last
        if member != messages.group_last_sender[index] and rng.random() < UNREAD_SHARE:
            read = messages.group_own_last.get((index, member), 0)
            unread += 1
        members.append(f"{tid}\t{member}\t\\N\t{last}\t{read}\tf\tf\tt\n")
        spans.append(f"{len(spans) + 1}\t{tid}\t{member}\t{first}\t\\N\n")
    return unread


def load(args, shape: dict, wanted: dict) -> dict:
    """Generate and load everything; returns the metadata written to the database."""
    timings: dict[str, float] = {}
    started = step = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal step
        timings[name] = round(time.perf_counter() - step, 2)
        step = time.perf_counter()

    rng = random.Random(args.seed)
    adjacency, cluster_of = generate_graph(
        shape["members"], shape["per_member"], shape["cluster_size"], shape["long_share"], rng
    )
    connection_rows = sum(len(neighbours) for neighbours in adjacency)
    # Separate generators from here on: the network is the one bench/degree.py builds.
    thread_rng = random.Random(args.seed + 1)
    pairs, probes, long_indexes, groups = choose_threads(adjacency, shape, thread_rng)
    counts = message_counts(pairs, long_indexes, shape, thread_rng, groups)
    keys, shift = message_keys(pairs, counts, long_indexes, thread_rng)
    schedules = group_schedules(groups, counts, thread_rng)
    lap("generate_s")
    log(
        f"  generated {connection_rows // 2:,} connections, {len(pairs):,} threads,"
        f" {len(keys):,} messages in {timings['generate_s']} s"
    )

    with make_app(args.server, args.database).app_context():
        from linkmsg.services.accounts import hash_password

        password_hash = hash_password("bench-password")

    url = server_url(args.server, args.database)
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET synchronous_commit = off")
        # Empties every table in this transaction, which lets COPY write frozen rows.
        conn.execute("TRUNCATE member RESTART IDENTITY CASCADE")
        restore = detach(conn, LOADED_TABLES)
        lap("detach_s")
        corpus = Corpus(random.Random(args.seed + 2))
        messages = Messages(pairs, keys, shift, corpus, groups, schedules)
        with conn.cursor() as cur:
            copy(
                cur,
                "member",
                MEMBER_COLUMNS,
                member_chunks(
                    shape["members"],
                    cluster_of,
                    rng,
                    password_hash=password_hash,
                    about=about_writer(random.Random(args.seed + 3)),
                ),
            )
            lap("copy_members_s")
            copy(cur, "connection", "member_id, other_id, created_at", connection_chunks(adjacency))
            lap("copy_connections_s")
            copy(
                cur,
                "message",
                "id, thread_id, sender_id, body, idempotency_key, created_at, kind, subject_id",
                batched(messages.lines()),
            )
            lap("copy_messages_s")
            threads, members, inmails, spans, unread = thread_rows(messages, thread_rng)
            copy(
                cur,
                "thread",
                "id, a_id, b_id, kind, last_message_id, created_at, name, started_by_id",
                batched(threads),
            )
            copy(
                cur,
                "thread_member",
                "thread_id, member_id, other_id, last_message_id, last_read_message_id,"
                " archived, muted, active",
                batched(members),
            )
            copy(
                cur,
                "group_span",
                "id, thread_id, member_id, first_message_id, last_message_id",
                batched(spans),
            )
            copy(
                cur,
                "inmail",
                "id, thread_id, message_id, sender_id, recipient_id, subject, template, status,"
                " opened_at, responded_at, credit_entry_id, refund_entry_id, created_at",
                batched(inmails),
            )
            lap("copy_threads_s")
        for statement in restore:
            conn.execute(statement)
        lap("indexes_and_constraints_s")
        for table in ("member", "thread", "message", "inmail", "group_span"):
            # The next row the app inserts takes the id after the loaded ones.
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'),"
                    " coalesce((SELECT max(id) FROM {i}), 0) + 1, false)"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
        conn.commit()

    probe_info = describe_probes(messages, pairs, counts, probes, long_indexes, adjacency)
    group_sizes = [len(group.everyone) for group in groups.values()]
    del adjacency
    with psycopg.connect(url, autocommit=True) as conn:
        # The member search's terms are written by a trigger as the members load.
        for table in (*LOADED_TABLES, "member_term", "search_term"):
            # VACUUM as well as ANALYZE: sets the visibility map for index-only scans.
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        lap("vacuum_analyze_s")
        timings["total_s"] = round(time.perf_counter() - started, 2)
        meta = dict(
            wanted,
            rows={
                "member": shape["members"],
                "connection": connection_rows,
                "thread": len(pairs),
                "thread_member": len(members),
                "message": len(keys),
                "inmail": len(inmails),
                "group_span": len(spans),
            },
            groups={
                "threads": len(groups),
                "members_min": min(group_sizes),
                "members_max": max(group_sizes),
                "members_mean": round(sum(group_sizes) / len(group_sizes), 1),
                "of_50": sum(1 for g in groups.values() if len(g.members) == GROUP_MAX),
                "with_someone_added": sum(1 for g in groups.values() if g.added),
                "with_someone_left": sum(1 for g in groups.values() if g.leaver),
                "messages": sum(counts[i] for i in groups),
            },
            unread_sides=unread,
            probe_members=probe_info,
            load=timings,
            loaded_at=now_iso(),
        )
        write_meta(conn, meta)
    return meta


def describe_probes(messages: Messages, pairs, counts, probes, long_indexes, adjacency):
    """What the page benchmark needs about each probe: its threads, a typical one (the
    median length of its threads), its long thread, and some 2nd-degree members."""
    long_set = set(long_indexes)
    by_member: dict[int, list[int]] = {p: [] for p in probes}
    for index, (a, b, _, _) in enumerate(pairs):
        group = messages.groups.get(index)
        for member in group.everyone if group else (a, b):
            if member in by_member:
                by_member[member].append(index)
    info = []
    rng = random.Random(len(pairs))
    for probe in probes:
        mine = [i for i in by_member[probe] if i not in long_set and pairs[i][2] == "ordinary"]
        mine.sort(key=lambda i: (counts[i], messages.thread_id[i]))
        typical = mine[len(mine) // 2]
        long_thread = next((i for i in by_member[probe] if i in long_set), None)
        # The group the probe started, as large as its connections allowed (50 at most).
        own_group = next(
            (i for i in by_member[probe] if i in messages.groups and pairs[i][0] == probe), None
        )
        friends = set(adjacency[probe])
        second = sorted(
            {m for f in friends for m in adjacency[f] if m != probe and m not in friends}
        )
        info.append(
            {
                "id": probe,
                "email": f"member{probe}@bench.linkmsg.test",
                "threads": len(by_member[probe]),
                "typical_thread": messages.thread_id[typical],
                "typical_messages": counts[typical],
                "long_thread": messages.thread_id[long_thread] if long_thread is not None else None,
                "long_messages": counts[long_thread] if long_thread is not None else None,
                "second_degree": rng.sample(second, min(5, len(second))),
                "groups": sum(1 for i in by_member[probe] if i in messages.groups),
                "group_thread": messages.thread_id[own_group] if own_group is not None else None,
                "group_members": (
                    len(messages.groups[own_group].members) if own_group is not None else None
                ),
            }
        )
    return info


# --------------------------------------------------------------------------- reuse


def reusable(conn: psycopg.Connection, wanted: dict) -> dict | None:
    """The stored metadata when the database already holds the data asked for."""
    meta = read_meta(conn)
    if not meta or any(meta.get(key) != value for key, value in wanted.items()):
        return None
    for table, count in meta.get("rows", {}).items():
        found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        if found.fetchone()[0] != count:
            return None
    foreign_keys = conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid = ANY(ARRAY['message', 'thread_member', 'connection']::regclass[])"
    ).fetchone()[0]
    return meta if foreign_keys else None


def prepare(
    scale: float,
    database: str | None = None,
    *,
    server: str = DEFAULT_SERVER,
    seed: int = 1,
    rebuild: bool = False,
) -> dict:
    """Make sure `database` holds the data for this scale (loading it if needed); returns
    the metadata, with "database" and "loaded_this_run" added."""
    return main(
        ["--scale", str(scale), "--server", server, "--seed", str(seed)]
        + (["--database", database] if database else [])
        + (["--rebuild"] if rebuild else []),
        quiet=True,
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = full size, 0.01 = 1%%")
    parser.add_argument("--database", help="default: linkmsg_bench_<scale>")
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="regenerate and reload")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    args.database = args.database or default_database(args.scale)
    return args


def main(argv=None, *, quiet: bool = False):
    args = parse_args(argv)
    shape = sizes(args.scale)
    wanted = {"generator": GENERATOR_VERSION, "scale": args.scale, "seed": args.seed, **shape}
    ensure_database(args.server, args.database, args.rebuild)
    app = make_app(args.server, args.database)
    migrate(app)
    with app.app_context():
        from linkmsg.extensions import db

        db.engine.dispose()

    with psycopg.connect(server_url(args.server, args.database), autocommit=True) as conn:
        meta = None if args.rebuild else reusable(conn, wanted)
    if meta:
        log(f"reusing {args.database} (loaded {meta['loaded_at']}; --rebuild to reload)")
        loaded = False
    else:
        log(
            f"loading {args.database}: {shape['members']:,} members, {shape['threads']:,}"
            f" threads, {shape['messages']:,} messages"
        )
        meta = load(args, shape, wanted)
        loaded = True
        log(
            f"  load took {meta['load']['total_s']} s ("
            + ", ".join(f"{k} {v}" for k, v in meta["load"].items() if k != "total_s")
            + ")"
        )
    meta = dict(meta, database=args.database, loaded_this_run=loaded)
    if quiet:
        return meta
    rows = ", ".join(f"{table} {count:,}" for table, count in meta["rows"].items())
    log(f"{args.database}: {rows}; password for every member: bench-password")
    return 0


if __name__ == "__main__":
    sys.exit(main())
