"""Live delivery under load: 1,000 open event streams on a real gunicorn.

    .venv/bin/python -m bench.live                           # gunicorn.conf.py as checked in
    .venv/bin/python -m bench.live --worker-class gthread --threads 1000 \
        --output bench/results/live-gthread.json             # the same run on threads
    .venv/bin/python -m bench.live --streams 200 --duration 10   # a quick look
    .venv/bin/python -m bench.live --burst --output bench/results/live-burst.json
                                  # 20 senders writing at once to one member's stream
    .venv/bin/python -m bench.live --group --streams 50 --output bench/results/live-group.json
                                  # one member sends into a 50-member group, 50 streams

It builds a throwaway PostgreSQL database (`linkmsg_live_bench`, migrated, then 2 x
--streams members loaded with COPY: every stream holder is connected to one sender),
starts gunicorn with the checked-in gunicorn.conf.py on a free port with Redis as the
event transport, logs every stream holder in through the login form and opens their
event streams from one asyncio client. Then a second process, its own asyncio client,
sends --rate messages a second for --duration seconds through the compose form, each
from a holder's sender to that holder (a random holder each time). Measured:

- delivery latency: from the send POST returning (and from it starting) to the event
  carrying that message arriving on the recipient's stream;
- events sent vs received (none lost, none doubled, none out of order: each stream's
  event numbers arrive consecutively) and streams that ended (none);

With --burst, --burst-senders members (20) are all connected to holder 1 and send to
that one member concurrently (--rate messages a second in all, default 20 in burst
mode), while every other holder's stream stays open: the overlap under which events
used to be dropped when commits and publishes came in different orders.

With --group, holder 1 starts a group with holders 2..--streams (at most 50 members) and
sends --rate messages a second into it (default 2); every member's stream (the sender's
own too) must receive each message: latency is measured per delivery, send x member.
- server memory per open stream: RSS (and PSS) of all gunicorn processes after the
  streams opened minus before, divided by the number of streams.

The figures are printed and written to bench/results/live.json (or --output) with the
machine's details; the exit status is 1 when a target is missed. The database is dropped
at the end unless --keep-db. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from .common import summarize as common_summarize
from .sse import parse_block

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench-live-password"
TARGET_P99_MS = 100.0
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def summarize(samples_ms: list[float]) -> dict:
    return common_summarize(samples_ms, points=(90, 99), digits=2, median_key="p50_ms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise this process's (and so gunicorn's) open-file limit to `wanted` if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            log(f"warning: open-file limit is {new} (hard limit), {wanted} wanted")
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------- database


def server_url(base: str, database: str) -> str:
    return f"{base.rstrip('/')}/{database}"


DROP = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def create_database(base: str, name: str) -> None:
    with psycopg.connect(server_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(base: str, name: str) -> None:
    with psycopg.connect(server_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def migrate(url: str) -> None:
    """The project's own migrations, as `flask db upgrade` runs them."""
    import flask_migrate

    from linkmsg import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
            "TESTING": True,
            "SECRET_KEY": "bench",
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        from linkmsg.extensions import db

        db.engine.dispose()


MEMBER_COLUMNS = (
    "id, email, password_hash, handle, name, headline, location, about, plan, role,"
    " show_active, accepts_inmail, email_notifications, created_at"
)


def load_members(url: str, streams: int, burst_senders: int = 0, group: bool = False) -> None:
    """Members 1..n hold streams; member n+i is holder i's sender, connected to them
    (with `group`, holder 1 is also connected to every other holder).

    Full profiles (messaging needs them) and one cheap salted password hash for all: the
    bench times delivery, not password hashing (production logins use scrypt).
    """
    from werkzeug.security import generate_password_hash

    password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for member in range(1, 2 * streams + 1):
        role = "holder" if member <= streams else "sender"
        rows.append(
            f"{member}\t{role}{member}@bench.linkmsg.test\t{password_hash}\t"
            f"bench-{role}-{member}\tBench {role.title()} {member}\tEngineer at Bench {member}\t"
            f"Lisbon, Portugal\t\tfree\tmember\tt\tt\tf\t"
            f"{now:%Y-%m-%d %H:%M:%S}\n"
        )
    edges = []
    for holder in range(1, streams + 1):
        sender = holder + streams
        edges.append(f"{holder}\t{sender}\t{now:%Y-%m-%d %H:%M:%S}\n")
        edges.append(f"{sender}\t{holder}\t{now:%Y-%m-%d %H:%M:%S}\n")
    for sender in range(streams + 2, streams + burst_senders + 1):  # all write to holder 1
        edges.append(f"1\t{sender}\t{now:%Y-%m-%d %H:%M:%S}\n")
        edges.append(f"{sender}\t1\t{now:%Y-%m-%d %H:%M:%S}\n")
    for holder in range(2, streams + 1) if group else ():  # holder 1's group
        edges.append(f"1\t{holder}\t{now:%Y-%m-%d %H:%M:%S}\n")
        edges.append(f"{holder}\t1\t{now:%Y-%m-%d %H:%M:%S}\n")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY member ({MEMBER_COLUMNS}) FROM STDIN") as copy:
            copy.write("".join(rows))
        with cur.copy("COPY connection (member_id, other_id, created_at) FROM STDIN") as copy:
            copy.write("".join(edges))
        cur.execute("SELECT setval(pg_get_serial_sequence('member', 'id'), %s)", (2 * streams,))
        cur.execute("ANALYZE")


def start_group(url: str, streams: int) -> int:
    """Holder 1 starts a group with holders 2..streams through the service (as the New
    message page does); returns its thread id."""
    from linkmsg import create_app
    from linkmsg.extensions import db
    from linkmsg.models import Member
    from linkmsg.services import messaging

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
            "TESTING": True,
            "SECRET_KEY": "bench",
        }
    )
    with app.app_context():
        starter = db.session.get(Member, 1)
        sent = messaging.start_group(starter, list(range(2, streams + 1)), "Bench group", "Hello")
        db.engine.dispose()
        return sent.thread_id


def holder_email(i: int) -> str:
    return f"holder{i}@bench.linkmsg.test"


def sender_email(i: int, streams: int) -> str:
    return f"sender{i + streams}@bench.linkmsg.test"


def holder_handle(i: int) -> str:
    return f"bench-holder-{i}"


# --------------------------------------------------------------------------- server


class Server:
    """gunicorn -c gunicorn.conf.py, on a free port, with the bench's environment."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log_file = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env={**os.environ, **env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, workers: int, timeout: float = 90.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    # Every worker imports the app on its own: wait for all of them to boot.
                    if len(self.workers()) >= workers:
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready: {self.log_path.read_text()[-2000:]}")

    def workers(self) -> list[int]:
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    children.append(int(entry.name))
        return children

    def memory_kib(self) -> dict:
        """RSS and PSS of the master and every worker (PSS splits pages shared after fork)."""
        total = {"rss_kib": 0, "pss_kib": 0, "processes": 0}
        for pid in [self.process.pid, *self.workers()]:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            fields = dict(
                (line.split(":")[0], int(line.split()[1]))
                for line in rollup.splitlines()[1:]
                if line.split()[-1] == "kB"
            )
            total["rss_kib"] += fields.get("Rss", 0)
            total["pss_kib"] += fields.get("Pss", 0)
            total["processes"] += 1
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


# --------------------------------------------------------------------------- clients


async def login(transport, base_url: str, email: str):
    """Log in through the form; return the client (its jar holds the session cookie)."""
    import httpx

    client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30)
    page = await client.get("/login")
    token = CSRF_META.search(page.text).group(1)
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 303:
        raise RuntimeError(f"login of {email} answered {response.status_code}")
    return client


async def read_stream(
    reader, writer, port: int, cookie: str, on_block, headers: str = "", path: str = "/stream"
) -> None:
    """Send GET `path` (`headers`: extra header lines, each ending in CRLF) and hand each
    SSE block to `on_block(text, (monotonic, wall clock))` until the server closes."""
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{headers}"
            f"Cookie: session={cookie}\r\n\r\n"
        ).encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream answered {status.strip()!r}")
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    buffer = b""
    while True:
        if chunked:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = (await reader.readexactly(size + 2))[:-2]
        else:
            data = await reader.read(65536)
            if not data:
                return
        arrived = (time.monotonic(), time.time())
        buffer += data
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            on_block(block.decode(), arrived)


class Stream:
    """One member's GET /stream over a raw asyncio connection (HTTP/1.1, chunked)."""

    def __init__(self, index: int, arrivals: list):
        self.index = index
        self.arrivals = arrivals  # (monotonic, wall clock, holder, event id, data length)
        self.opened = asyncio.get_running_loop().create_future()
        self.ended: str | None = None
        self.events = 0
        self.keepalives = 0
        self.writer = None
        self.task = None

    async def run(self, port: int, cookie: str) -> None:
        try:
            reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
            await read_stream(reader, self.writer, port, cookie, self._block)
            self.ended = "server closed the stream"
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as error:
            self.ended = f"{type(error).__name__}: {error}"
        except asyncio.CancelledError:
            raise
        finally:
            if not self.opened.done():
                self.opened.set_result(False)

    def _block(self, block: str, arrived: tuple[float, float]) -> None:
        event = parse_block(block.split("\n"))
        if "open" in event.comments and not self.opened.done():
            self.opened.set_result(True)
            return
        if event.is_comment:
            self.keepalives += 1
            return
        self.events += 1
        self.arrivals.append((*arrived, self.index, event.id, len(event.data)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# --------------------------------------------------------------------------- the run


async def run(args, server: Server, run_id: str, url: str) -> dict:
    import httpx

    marker = re.compile(rf"lm{run_id}x(\d+)y")
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64))
    log(f"logging {args.streams} stream holders in through the login form")
    started = time.monotonic()
    semaphore = asyncio.Semaphore(16)

    async def cookie_of(i: int) -> str:
        async with semaphore:
            client = await login(transport, server.url, holder_email(i))
            return client.cookies["session"]

    cookies = await asyncio.gather(*(cookie_of(i) for i in range(1, args.streams + 1)))
    login_seconds = time.monotonic() - started
    log(f"  {args.streams} logins in {login_seconds:.1f} s")

    await asyncio.sleep(2)
    before = server.memory_kib()
    log(f"server memory before the streams: {before}")

    arrivals: list = []
    streams = [Stream(i, arrivals) for i in range(1, args.streams + 1)]
    started = time.monotonic()
    opening = asyncio.Semaphore(args.open_concurrency)

    async def open_one(stream: Stream) -> bool:
        async with opening:
            stream.task = asyncio.create_task(stream.run(server.port, cookies[stream.index - 1]))
            return await stream.opened

    opened = await asyncio.gather(*(open_one(s) for s in streams))
    open_seconds = time.monotonic() - started
    if not all(opened):
        failures = [s.ended for s in streams if s.ended][:5]
        raise RuntimeError(f"{opened.count(False)} streams did not open: {failures}")
    log(f"  {args.streams} streams open in {open_seconds:.1f} s")
    await asyncio.sleep(args.settle)
    after = server.memory_kib()
    log(f"server memory with the streams open: {after}")

    rng = random.Random(args.seed)
    count = int(args.duration * args.rate)
    plan = []
    # Untimed sends first, on the same schedule: the first send of a fresh worker compiles
    # its templates and statements. Their events carry no marker, so they are not matched
    # (counted among the events without a bench message).
    for number in range(args.warmup):
        plan.append(
            {
                "seq": -1 - number,
                "at": number / args.rate,
                "holders": [],
                "path": f"/messaging/t/{args.group_thread}"
                if args.group_thread
                else f"/messaging/new/{holder_handle(1)}",
                "sender": holder_email(1) if args.group_thread else sender_email(1, args.streams),
                "body": f"Warm-up message {number}",
            }
        )
    for seq in range(count):
        if args.group_thread:
            holders, sender = list(range(1, args.streams + 1)), holder_email(1)
            path = f"/messaging/t/{args.group_thread}"
        else:
            if args.burst:
                holder, sender = 1, sender_email(1 + seq % args.burst_senders, args.streams)
            else:
                holder = rng.randrange(1, args.streams + 1)
                sender = sender_email(holder, args.streams)
            holders, path = [holder], f"/messaging/new/{holder_handle(holder)}"
        plan.append(
            {
                "seq": seq,
                "at": (args.warmup + seq) / args.rate,
                "holders": holders,  # whose streams must receive it
                "path": path,
                "sender": sender,
                "body": f"Live bench message lm{run_id}x{seq}y to holders {holders[0]}...",
            }
        )
    sent = await send_plan(
        server.url,
        plan,
        lambda: log(f"sending {count} messages over {args.duration:.0f} s from a separate process"),
    )
    await asyncio.sleep(args.drain)
    ended = [s for s in streams if s.ended]
    for stream in streams:
        stream.close()
        if stream.task is not None:
            stream.task.cancel()
    await asyncio.gather(*(s.task for s in streams if s.task), return_exceptions=True)
    await transport.aclose()

    # Match arrivals with sends through the event rows: an event's SSE id is its member's
    # event number (holder i is member i), and its row names the message it is about. (A
    # marker in the HTML would also match a later message's preview in the thread row.)
    about, created = message_events(url, marker, {holder for _, _, holder, *_ in arrivals})
    by_seq: dict[int, list] = {}
    stray = 0
    for arrived, wall, holder, event_id, _ in arrivals:
        seq = about.get((holder, int(event_id))) if event_id is not None else None
        if seq is None:
            stray += 1
            continue
        by_seq.setdefault(seq, []).append((arrived, holder, event_id, wall))
    out_of_order, gaps = sequence_problems(arrivals)
    after_return, after_start, after_row = [], [], []
    lost, doubled, wrong_stream, failed = [], [], [], []
    for item in plan:
        seq = item["seq"]
        if seq not in sent or sent[seq][2] != 303:
            failed.append({"seq": seq, "status": sent.get(seq, (None, None, None))[2]})
            continue
        if seq < 0:
            continue  # a warm-up send: not timed
        # Per delivery: each holder that must receive it, once (a group: every member).
        got: dict[int, list] = {}
        for arrived, holder, event_id, wall in by_seq.get(seq, []):
            got.setdefault(holder, []).append((arrived, event_id, wall))
        lost.extend((seq, holder) for holder in item["holders"] if holder not in got)
        doubled.extend((seq, holder) for holder, found in got.items() if len(found) > 1)
        wrong_stream.extend((seq, holder) for holder in got if holder not in item["holders"])
        for holder, ((arrived, event_id, wall), *_) in got.items():
            after_return.append((arrived - sent[seq][1]) * 1000)
            after_start.append((arrived - sent[seq][0]) * 1000)
            row_time = created[(holder, int(event_id))].replace(tzinfo=UTC).timestamp()
            after_row.append((wall - row_time) * 1000)
    post_ms = [(t_end - t_start) * 1000 for seq, (t_start, t_end, _) in sent.items() if seq >= 0]
    return {
        "logins_seconds": round(login_seconds, 1),
        "streams_requested": args.streams,
        "streams_opened": sum(opened),
        "streams_open_seconds": round(open_seconds, 1),
        "streams_ended_during_run": len(ended),
        "streams_ended_reasons": sorted({s.ended for s in ended})[:5],
        "keepalives_received": sum(s.keepalives for s in streams),
        "messages_planned": count,
        "deliveries_planned": sum(len(item["holders"]) for item in plan),
        "warmup_sends": args.warmup,
        "messages_sent": sum(1 for seq, v in sent.items() if seq >= 0 and v[2] == 303),
        "send_failures": failed,
        "events_received": sum(s.events for s in streams),
        "events_matched": sum(len(v) for v in by_seq.values()),
        "events_without_a_bench_message": stray,
        "lost": lost,
        "doubled": doubled,
        "wrong_stream": wrong_stream,
        "out_of_order": out_of_order,
        "gaps": gaps,
        "latency_after_post_returned": summarize(after_return),
        "latency_after_post_started": summarize(after_start),
        "latency_after_event_row_created": summarize(after_row),
        "post_duration": summarize(post_ms),
        "server_memory_before": before,
        "server_memory_with_streams": after,
        "rss_per_stream_kib": round((after["rss_kib"] - before["rss_kib"]) / args.streams, 1),
        "pss_per_stream_kib": round((after["pss_kib"] - before["pss_kib"]) / args.streams, 1),
    }


def message_events(url: str, marker, members) -> tuple[dict, dict]:
    """For the message events of `members`: {(member, number): bench message seq} (from
    the marker in the message's body) and {(member, number): the row's created_at}."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT e.member_id, e.seq, e.created_at, m.body FROM event e"
            " JOIN message m ON m.id = (e.payload->>'message_id')::int"
            " WHERE e.member_id = ANY(%s) AND e.kind = 'message'",
            (sorted(members),),
        ).fetchall()
    about, created = {}, {}
    for member_id, number, at, body in rows:
        created[(member_id, number)] = at
        found = marker.search(body)
        if found:
            about[(member_id, number)] = int(found.group(1))
    return about, created


def sequence_problems(arrivals: list) -> tuple[list, list]:
    """Each stream's event numbers must arrive consecutively: a repeat or a step back is
    out of order, a step over a number is a gap (an event the stream never sent).
    `arrivals` are (monotonic, wall clock, holder, event id, ...) in arrival order."""
    out_of_order, gaps, previous = [], [], {}
    for _, _, holder, event_id, *_ in arrivals:
        if event_id is None:
            continue
        number = int(event_id)
        if holder in previous:
            if number <= previous[holder]:
                out_of_order.append((holder, number))
            elif number > previous[holder] + 1:
                gaps.append((holder, previous[holder], number))
        previous[holder] = number
    return out_of_order, gaps


# --------------------------------------------------------------------------- the sender


async def send_plan(base_url: str, plan: list[dict], starting=None, lead: float = 1.0) -> dict:
    """Send `plan` from a separate process (`_sender_entry`): {seq: (POST started,
    returned, status)}. The sender logs its members in first; the schedule starts `lead`
    seconds after it says it is ready (`starting()` is called then)."""
    context = multiprocessing.get_context("spawn")
    results, ready_queue, start_queue = context.Queue(), context.Queue(), context.Queue()
    process = context.Process(
        target=_sender_entry, args=(base_url, plan, ready_queue, start_queue, results)
    )
    process.start()
    loop = asyncio.get_running_loop()
    message = await loop.run_in_executor(None, ready_queue.get)
    assert message == "ready", message
    start_queue.put(time.monotonic() + lead)
    if starting is not None:
        starting()
    sent = {}
    while True:
        item = await loop.run_in_executor(None, results.get)
        if item[0] == "done":
            break
        _, seq, t_start, t_end, status = item
        sent[seq] = (t_start, t_end, status)
    await loop.run_in_executor(None, process.join)
    return sent


def _sender_entry(base_url, plan, ready_queue, start_queue, results) -> None:
    """A separate process with its own asyncio client: log the senders in, then send on
    schedule and report when each POST started and returned."""
    asyncio.run(_sender_main(base_url, plan, ready_queue, start_queue, results))


async def _sender_main(base_url, plan, ready_queue, start_queue, results) -> None:
    import httpx

    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200))
    clients, tokens = {}, {}
    for item in plan:
        email = item["sender"]
        if email not in clients:
            client = await login(transport, base_url, email)
            page = await client.get("/")
            clients[email], tokens[email] = client, CSRF_META.search(page.text).group(1)
    ready_queue.put("ready")
    loop = asyncio.get_running_loop()
    start_at = await loop.run_in_executor(None, start_queue.get)

    async def send(item: dict) -> None:
        delay = start_at + item["at"] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        client = clients[item["sender"]]
        started = time.monotonic()
        try:
            response = await client.post(
                item["path"],
                data={
                    "csrf_token": tokens[item["sender"]],
                    "idempotency_key": secrets.token_urlsafe(16),
                    "body": item["body"],
                },
            )
            status = response.status_code
        except httpx.HTTPError as error:  # a send that timed out is a failure reported
            status = f"{type(error).__name__} after {time.monotonic() - started:.1f} s"
        returned = time.monotonic()
        results.put(("sent", item["seq"], started, returned, status))

    await asyncio.gather(*(send(item) for item in plan))
    results.put(("done",))
    await transport.aclose()


# --------------------------------------------------------------------------- report


def machine_info(base: str, redis_url: str) -> dict:
    import gunicorn
    import redis

    cpu, memory_gib = "unknown", None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    with psycopg.connect(server_url(base, "postgres")) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    client = redis.Redis.from_url(redis_url)
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    try:
        import gevent

        gevent_version = gevent.__version__
    except ImportError:
        gevent_version = None
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "gevent": gevent_version,
        "psycopg": psycopg.__version__,
        "redis_py": redis.__version__,
        "postgresql": pg,
        "redis": redis_version,
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "load_average_at_start": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def print_report(report: dict) -> None:
    r = report["results"]
    s = report["server"]
    log("")
    log(
        f"worker class {s['worker_class']}, {s['workers']} workers"
        + (f" x {s['threads']} threads" if s["worker_class"] == "gthread" else "")
    )
    log(
        f"streams: {r['streams_opened']}/{r['streams_requested']} opened in "
        f"{r['streams_open_seconds']} s, {r['streams_ended_during_run']} ended during the run"
    )
    log(
        f"messages: {r['messages_sent']}/{r['messages_planned']} sent, "
        f"{r['events_matched']}/{r['deliveries_planned']} deliveries matched, "
        f"lost {len(r['lost'])}, "
        f"doubled {len(r['doubled'])}, out of order {len(r['out_of_order'])}, "
        f"gaps {len(r['gaps'])}, on a wrong stream {len(r['wrong_stream'])}"
    )
    for key in (
        "latency_after_post_returned",
        "latency_after_post_started",
        "latency_after_event_row_created",
        "post_duration",
    ):
        st = r[key]
        if st.get("n"):
            log(
                f"{key.replace('_', ' ')}: p50 {st['p50_ms']} ms, p90 {st['p90_ms']} ms, "
                f"p99 {st['p99_ms']} ms, max {st['max_ms']} ms (n={st['n']})"
            )
    log(
        f"server memory: RSS {r['server_memory_before']['rss_kib'] / 1024:.1f} MiB -> "
        f"{r['server_memory_with_streams']['rss_kib'] / 1024:.1f} MiB, "
        f"{r['rss_per_stream_kib']} KiB RSS ({r['pss_per_stream_kib']} KiB PSS) per open stream"
    )
    verdict = report["verdict"]
    log(f"targets: {verdict}")


def add_run_arguments(parser, database: str, opening: int, settle: float, drain: float, output):
    """The options every live bench shares: where PostgreSQL and Redis are, the database
    it creates, how streams open and settle, and where the report goes."""
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default=database)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--open-concurrency", type=int, default=opening)
    parser.add_argument("--settle", type=float, default=settle)
    parser.add_argument("--drain", type=float, default=drain)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed sends before the timed ones (2)"
    )
    parser.add_argument("--output", default=None, help=f"default bench/results/{output}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument(
        "--rate", type=float, default=None, help="messages a second (1; 20 with --burst)"
    )
    parser.add_argument("--burst", action="store_true", help="many senders to one member at once")
    parser.add_argument("--burst-senders", type=int, default=20)
    parser.add_argument(
        "--group", action="store_true", help="holder 1 sends into a group of all the holders"
    )
    parser.add_argument("--worker-class", default=None, help="gevent or gthread (default: conf)")
    parser.add_argument("--workers", type=int, default=None, help="default: gunicorn.conf.py's")
    parser.add_argument("--threads", type=int, default=None, help="gthread threads per worker")
    add_run_arguments(parser, "linkmsg_live_bench", 50, 3.0, 5.0, "live.json")
    args = parser.parse_args(argv)
    if args.rate is None:
        args.rate = 20.0 if args.burst else 2.0 if args.group else 1.0
    if args.burst and args.burst_senders > args.streams:
        parser.error("--burst-senders cannot exceed --streams")
    if args.group and not 3 <= args.streams <= 50:
        parser.error("--group needs 3 to 50 --streams (a group's members)")
    if args.group and args.burst:
        parser.error("--group and --burst are separate runs")
    args.group_thread = None
    return args


def prepare(args, secret_key: str) -> tuple[str, str, dict, dict]:
    """A run id, the database URL (created empty), gunicorn's environment and the
    machine's details: what every live bench does before it loads its data."""
    run_id = secrets.token_hex(3)
    url = server_url(args.server, args.database)
    machine = machine_info(args.server, args.redis)
    log(f"creating {args.database} and loading {2 * args.streams} members")
    create_database(args.server, args.database)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": args.redis,
        "SECRET_KEY": secret_key,
        "EVENT_CHANNEL_PREFIX": f"linkmsg-bench-{run_id}:",
        "RATELIMIT_KEY_PREFIX": f"linkmsg-bench-{run_id}",
        "UPLOAD_FOLDER": f"/tmp/linkmsg-bench-{run_id}",
        "GUNICORN_LOG_LEVEL": "warning",
        # The bench measures delivery: the per-member anti-spam limits stay out of the way.
        "MESSAGE_RATE_LIMIT": "100000 per minute",
        "NEW_THREAD_RATE_LIMIT": "100000 per day",
    }
    return run_id, url, env, machine


def main(argv=None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit(max(4096, 4 * args.streams + 1024))
    log(f"open-file limit: {limit[0]}")
    run_id, url, env, machine = prepare(args, secrets.token_hex(16))
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    server = None
    try:
        migrate(url)
        load_members(url, args.streams, args.burst_senders if args.burst else 0, args.group)
        if args.group:
            args.group_thread = start_group(url, args.streams)
        conf = _conf(env)
        server = Server(env, Path(f"/tmp/linkmsg-bench-{run_id}-gunicorn.log"))
        server.wait_ready(conf["workers"])
        log(f"gunicorn ready on {server.url}: {conf}")
        results = asyncio.run(run(args, server, run_id, url))
    finally:
        if server is not None:
            server.stop()
        if not args.keep_db:
            drop_database(args.server, args.database)
    met = {
        "streams_held": results["streams_opened"] == args.streams
        and results["streams_ended_during_run"] == 0,
        # In a group the POST returns only once every member's event is published, so the
        # later deliveries arrive before it returns: the group's figure is taken from the
        # event row's creation (the commit) instead.
        "p99_under_100ms": results[
            "latency_after_event_row_created" if args.group else "latency_after_post_returned"
        ].get("p99_ms", 1e9)
        < TARGET_P99_MS,
        "nothing_lost_or_doubled": not (
            results["lost"]
            or results["doubled"]
            or results["wrong_stream"]
            or results["out_of_order"]
            or results["gaps"]
        )
        and not results["send_failures"],
    }
    report = {
        "benchmark": "live delivery over gunicorn + PostgreSQL + Redis",
        "command": "python -m bench.live " + " ".join(argv if argv is not None else sys.argv[1:]),
        "server": conf,
        "settings": {
            "streams": args.streams,
            "duration_s": args.duration,
            "rate_per_s": args.rate,
            "burst_senders": args.burst_senders if args.burst else 0,
            "group_members": args.streams if args.group else 0,
            "seed": args.seed,
        },
        "machine": machine,
        "results": results,
        "verdict": met,
    }
    output = write_report(report, args.output, "live.json")
    print_report(report)
    log(f"written to {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0 if all(met.values()) else 1


def write_report(report: dict, output: str | None, default: str) -> Path:
    """Write the report with the machine's load now; returns where it went."""
    report["load_average_at_end"] = os.getloadavg()
    path = Path(output) if output else RESULTS / default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _conf(env: dict) -> dict:
    """gunicorn.conf.py's settings under the bench's environment (what gunicorn will use)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        namespace: dict = {"__file__": str(ROOT / "gunicorn.conf.py")}
        exec(
            compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        key: namespace[key]
        for key in ("worker_class", "workers", "threads", "worker_connections", "timeout")
    }


if __name__ == "__main__":
    sys.exit(main())
