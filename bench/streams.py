"""10,000 open event streams on a real gunicorn, then a reconnect storm.

    .venv/bin/python -m bench.streams            # 10,000 streams -> bench/results/streams.json
    .venv/bin/python -m bench.streams --streams 1000 --duration 20 --output /tmp/streams.json

Issue 20's target: every stream held on 2 cores with the checked-in gunicorn.conf.py,
p99 send -> event < 100 ms at one message a second, nothing lost; then every client
reconnects at once with `Last-Event-ID` (as after a Redis outage or a restart), and the
storm is absorbed without errors.

1. **Data.** A throwaway PostgreSQL database (`--database`, default
   `wt_streams_bench`), migrated, with 2 x --streams members loaded by COPY (bench/live.py's
   `load_members`: holder i is connected to sender --streams + i).
2. **Sessions (a bench shortcut).** Logging 10,000 members in through the form costs a
   password hash and two requests each; instead the bench inserts their `member_session`
   rows directly and signs each cookie with the app's own session serializer and the
   bench's fixed SECRET_KEY, exactly what the login view would have put in it.
3. **Streams.** One asyncio process, raw sockets (`bench.live.Stream`'s protocol and
   `bench.sse`'s frame parser), opens GET /stream?last_event_id=0 for every holder,
   --open-concurrency at a time; each must send `: open`.
4. **Steady delivery.** A separate process (bench/live.py's sender) sends --rate messages a
   second through the compose form (a real POST) to random holders for --duration s.
   Measured: arrival minus the event row's creation (the commit) and minus the POST
   returning; lost, doubled, out of order or gaps per stream; streams that ended; RSS
   of each gunicorn process before and with the streams (memory per stream).
5. **Reconnect storms.** Every client socket is closed at once; while they are down,
   --storm-messages messages are sent to holders (so replays carry events); then all
   reconnect with `Last-Event-ID` (the last id each stream received, else the page's
   `last_event_id=0`). Twice: first as a browser does (each waits the `retry:` the
   server sent it, jittered server side), then the worst case (all at once, ignoring
   `retry:`). A stream whose reconnect fails retries after its `retry:` (as a browser
   would); failures are counted. Measured: the time until every stream has its `: open`
   again, errors, and the latency of the thread page requested (from another process,
   every --probe-interval s) during the storm against before it.

Exit status 1 when a target is missed. See bench/README.md "Open streams".
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import random
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .live import (
    ROOT,
    Server,
    _conf,
    add_run_arguments,
    drop_database,
    holder_handle,
    load_members,
    log,
    message_events,
    migrate,
    prepare,
    raise_fd_limit,
    read_stream,
    send_plan,
    sender_email,
    sequence_problems,
    summarize,
    write_report,
)
from .sse import parse_block

RESULTS = ROOT / "bench" / "results"
TARGET_P99_MS = 100.0
SECRET_KEY = "bench-streams-fixed-secret-key"  # the bench's own: signs the holders' cookies
# A page's stream URL as rendered: the holders have no events yet.
PAGE_STREAM = "/stream?last_event_id=0"


def percentile_ms(samples: list[float], point: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * point / 100))], 1)


# --------------------------------------------------------------------------- sessions


def holder_cookies(url: str, streams: int) -> list[str]:
    """Insert a live `member_session` row per holder and sign the cookie that the login
    view would have set (the bench shortcut described above)."""
    from flask_login.utils import _create_identifier

    from linkmsg import create_app
    from linkmsg.web import SESSION_ID_KEY, SESSION_SECRET_KEY

    secrets_by_member = {i: secrets.token_urlsafe(32) for i in range(1, streams + 1)}
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = "".join(
        f"{i}\t{hashlib.sha256(secret.encode()).hexdigest()}\t\t{now}\t{now}\n"
        for i, secret in secrets_by_member.items()
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY member_session (member_id, secret_hash, user_agent, created_at, last_seen_at)"
            " FROM STDIN"
        ) as copy:
            copy.write(rows)
        ids = dict(cur.execute("SELECT member_id, id FROM member_session").fetchall())
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
            "SECRET_KEY": SECRET_KEY,
            "TESTING": True,  # else an unset SECRET_KEY variable means the instance's key
        }
    )
    assert app.secret_key == SECRET_KEY
    serializer = app.session_interface.get_signing_serializer(app)
    # Flask-Login's session protection compares this with the request's address and
    # user agent: the bench's streams come from 127.0.0.1 with no User-Agent.
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        identifier = _create_identifier()
    return [
        serializer.dumps(
            {
                "_user_id": str(i),
                "_fresh": True,
                "_id": identifier,
                SESSION_ID_KEY: ids[i],
                SESSION_SECRET_KEY: secrets_by_member[i],
            }
        )
        for i in range(1, streams + 1)
    ]


# --------------------------------------------------------------------------- a stream


class Stream:
    """One holder's GET /stream over a raw connection, reconnecting as EventSource does:
    with the last id it received as `Last-Event-ID`, after the `retry:` it was told."""

    def __init__(self, index: int, cookie: str, arrivals: list):
        self.index, self.cookie, self.arrivals = index, cookie, arrivals
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.opened_at: float | None = None
        self.opened: asyncio.Future | None = None
        self.ended: str | None = None
        self.writer = None
        self.task: asyncio.Task | None = None
        self.events = 0
        self.keepalives = 0
        self.errors: list[str] = []

    def start(self, port: int) -> asyncio.Future:
        self.opened = asyncio.get_running_loop().create_future()
        self.ended, self.opened_at = None, None
        self.task = asyncio.create_task(self._run(port))
        return self.opened

    async def _run(self, port: int) -> None:
        try:
            reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
            await read_stream(
                reader, self.writer, port, self.cookie, self._block, resume, PAGE_STREAM
            )
            self.ended = "server closed the stream"
        except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as error:
            self.ended = f"{type(error).__name__}: {error}"
        finally:
            if not self.opened.done():
                self.opened.set_result(False)

    def _block(self, block: str, arrived: tuple[float, float]) -> None:
        event = parse_block(block.split("\n"))
        for line in block.split("\n"):
            if line.startswith("retry:"):
                self.retry_ms = int(line.split(":", 1)[1])
        if "open" in event.comments and not self.opened.done():
            self.opened_at = arrived[0]
            self.opened.set_result(True)
            return
        if event.is_comment:
            self.keepalives += 1
            return
        if event.id:
            self.last_id = event.id
        self.events += 1
        self.arrivals.append((*arrived, self.index, event.id, event.event))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def reconnect(self, port: int, honour_retry: bool, give_up_at: float) -> bool:
        """Reconnect until open (or `give_up_at`), waiting `retry:` first if honoured and
        after every failure (as a browser does)."""
        first = True
        while time.monotonic() < give_up_at:
            if honour_retry or not first:  # a browser's default is 3 s until told
                await asyncio.sleep((self.retry_ms or 3000) / 1000)
            first = False
            if await self.start(port):
                return True
            self.errors.append(self.ended or "did not open")
            await self.close()
        return False


# --------------------------------------------------------------------------- the prober


def _probe_entry(base_url: str, cookie: str, path: str, interval: float, stop, results) -> None:
    """Another process: GET `path` every `interval` s until `stop` is set; report each
    (monotonic start, milliseconds, status)."""
    import httpx

    samples = []
    with httpx.Client(base_url=base_url, cookies={"session": cookie}, timeout=60) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.get(path).status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            samples.append((started, (time.monotonic() - started) * 1000, status))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    results.put(samples)


# --------------------------------------------------------------------------- the run


async def open_all(streams: list[Stream], port: int, concurrency: int) -> list[bool]:
    gate = asyncio.Semaphore(concurrency)

    async def one(stream: Stream) -> bool:
        async with gate:
            return await stream.start(port)

    return await asyncio.gather(*(one(s) for s in streams))


def plan_messages(args, run_id: str, count: int, offset: int, at: float, rng) -> list[dict]:
    plan = []
    for n in range(count):
        seq = offset + n
        holder = rng.randrange(1, args.streams + 1)
        plan.append(
            {
                "seq": seq,
                "at": at + n / args.rate,
                "holders": [holder],
                "path": f"/messaging/new/{holder_handle(holder)}",
                "sender": sender_email(holder, args.streams),
                "body": f"Streams bench message lm{run_id}x{seq}y",
            }
        )
    return plan


async def storm(
    args, server: Server, streams: list[Stream], honour_retry: bool, probe_path, cookie, plan
):
    """Close every stream at once, send `plan` meanwhile, reconnect all; the figures."""
    context = multiprocessing.get_context("spawn")
    stop, samples_queue = context.Event(), context.Queue()
    prober = context.Process(
        target=_probe_entry,
        args=(server.url, cookie, probe_path, args.probe_interval, stop, samples_queue),
    )
    prober.start()
    await asyncio.sleep(args.probe_baseline)  # the page's latency before the storm
    for stream in streams:
        stream.errors = []
    started = time.monotonic()
    await asyncio.gather(*(s.close() for s in streams))
    sent = await send_plan(server.url, plan, lead=0.5) if plan else {}
    give_up_at = time.monotonic() + args.storm_timeout
    reopened_from = time.monotonic()
    back = await asyncio.gather(
        *(s.reconnect(server.port, honour_retry, give_up_at) for s in streams)
    )
    all_back = time.monotonic()
    await asyncio.sleep(args.probe_after)
    stop.set()
    loop = asyncio.get_running_loop()
    samples = await loop.run_in_executor(None, samples_queue.get)
    await loop.run_in_executor(None, prober.join)
    before = [ms for at, ms, status in samples if at < started and status == 200]
    # A request that overlapped the storm, started before it or not.
    during = [
        ms for at, ms, status in samples if at <= all_back and at + ms / 1000 >= reopened_from
    ]
    bad = [status for at, _, status in samples if status != 200]
    opened_at = sorted(s.opened_at - reopened_from for s in streams if s.opened_at)
    errors = [e for s in streams for e in s.errors]
    return {
        "honours_retry": honour_retry,
        "streams": len(streams),
        "back": sum(back),
        "seconds_until_all_back": round(all_back - reopened_from, 2),
        "seconds_until_half_back": round(opened_at[len(opened_at) // 2], 2) if opened_at else None,
        "reconnect_errors": len(errors),
        "reconnect_error_kinds": sorted(set(errors))[:5],
        "messages_sent_while_down": sum(1 for v in sent.values() if v[2] == 303),
        "page": probe_path.split("/")[1],
        "page_p95_ms_before": percentile_ms(before, 95),
        "page_p95_ms_during": percentile_ms(during, 95),
        "page_max_ms_during": round(max(during), 1) if during else None,
        "page_requests_during": len(during),
        "page_errors": bad[:5],
        "page_error_count": len(bad),
        "storm_seconds_total": round(all_back - started, 2),
    }, sent


def match(url: str, run_id: str, arrivals: list, plan: list, sent: dict, steady: set) -> dict:
    """Arrivals against sends through the event rows (bench/live.py's method)."""
    marker = re.compile(rf"lm{run_id}x(\d+)y")
    about, created = message_events(url, marker, {holder for _, _, holder, *_ in arrivals})
    by_seq: dict[int, list] = {}
    out_of_order, gaps = sequence_problems(arrivals)
    for arrived, wall, holder, event_id, _ in arrivals:
        if event_id is None:
            continue
        number = int(event_id)
        seq = about.get((holder, number))
        if seq is not None:
            by_seq.setdefault(seq, []).append((arrived, wall, holder, number))
    lost, doubled, failed = [], [], []
    after_row, after_return = [], []
    for item in plan:
        seq, holder = item["seq"], item["holders"][0]
        if seq not in sent or sent[seq][2] != 303:
            failed.append({"seq": seq, "status": sent.get(seq, (None, None, None))[2]})
            continue
        got = [g for g in by_seq.get(seq, []) if g[2] == holder]
        if not got:
            lost.append((seq, holder))
            continue
        if len(got) > 1:
            doubled.append((seq, holder))
        if seq in steady:
            arrived, wall, _, number = got[0]
            row_time = created[(holder, number)].replace(tzinfo=UTC).timestamp()
            after_row.append((wall - row_time) * 1000)
            after_return.append((arrived - sent[seq][1]) * 1000)
    return {
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
        "gaps": gaps,
        "send_failures": failed,
        "latency_after_event_row_created": summarize(after_row),
        "latency_after_post_returned": summarize(after_return),
    }


async def run(args, server: Server, run_id: str, url: str, cookies: list[str]) -> dict:
    await asyncio.sleep(2)
    before = server.memory_kib()
    before_workers = worker_rss(server)
    arrivals: list = []
    streams = [Stream(i, cookies[i - 1], arrivals) for i in range(1, args.streams + 1)]
    log(f"opening {args.streams} streams, {args.open_concurrency} at a time")
    started = time.monotonic()
    opened = await open_all(streams, server.port, args.open_concurrency)
    open_seconds = time.monotonic() - started
    log(f"  {sum(opened)}/{args.streams} open in {open_seconds:.1f} s")
    if not all(opened):
        kinds = sorted({s.ended for s in streams if s.ended})[:5]
        log(f"  not opened: {opened.count(False)}: {kinds}")
    await asyncio.sleep(args.settle)
    after = server.memory_kib()
    after_workers = worker_rss(server)
    log(f"server RSS {before['rss_kib'] / 1024:.0f} -> {after['rss_kib'] / 1024:.0f} MiB")

    rng = random.Random(args.seed)
    count = int(args.duration * args.rate)
    plan = plan_messages(args, run_id, count, 0, 0.0, rng)
    log(f"sending {count} messages over {args.duration:.0f} s (POST, separate process)")
    sent = await send_plan(server.url, plan, lead=0.5)
    await asyncio.sleep(args.drain)
    held = sum(1 for s in streams if s.opened_at and s.ended is None)
    ended = sorted({s.ended for s in streams if s.ended})[:5]
    log(f"  held {held}/{args.streams} after the steady phase; ended: {ended}")
    steady = {item["seq"] for item in plan}

    cookie, thread_id = cookies[plan[0]["holders"][0] - 1], None
    with psycopg.connect(url) as conn:
        thread_id = conn.execute(
            "SELECT payload->>'thread_id' FROM event WHERE member_id = %s AND kind = 'message'",
            (plan[0]["holders"][0],),
        ).fetchone()[0]
    probe_path = f"/messaging/t/{thread_id}"
    storms = []
    for honour in (True, False)[: args.storms]:
        extra = plan_messages(args, run_id, args.storm_messages, len(plan), 0.0, rng)
        label = "honouring retry:" if honour else "all at once (ignoring retry:)"
        log(f"reconnect storm, {label}: closing {len(streams)} streams")
        figures, extra_sent = await storm(args, server, streams, honour, probe_path, cookie, extra)
        log(f"  {figures}")
        storms.append(figures)
        plan += extra
        sent.update(extra_sent)
    await asyncio.sleep(args.drain)
    delivery = match(url, run_id, arrivals, plan, sent, steady)
    await asyncio.gather(*(s.close() for s in streams))
    return {
        "streams_requested": args.streams,
        "streams_opened": sum(opened),
        "streams_open_seconds": round(open_seconds, 1),
        "streams_held_through_steady_phase": held,
        "streams_ended_reasons": ended,
        "keepalives_received": sum(s.keepalives for s in streams),
        "messages_sent": sum(1 for v in sent.values() if v[2] == 303),
        "messages_planned": len(plan),
        "events_received": len(arrivals),
        **delivery,
        "server_memory_before": before,
        "server_memory_with_streams": after,
        "worker_rss_kib_before": before_workers,
        "worker_rss_kib_with_streams": after_workers,
        "rss_per_stream_kib": round(
            (after["rss_kib"] - before["rss_kib"]) / max(1, sum(opened)), 1
        ),
        "pss_per_stream_kib": round(
            (after["pss_kib"] - before["pss_kib"]) / max(1, sum(opened)), 1
        ),
        "storms": storms,
    }


def worker_rss(server: Server) -> dict:
    out = {}
    for pid in sorted(server.workers()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[str(pid)] = int(line.split()[1])
        except OSError:
            continue
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady sending")
    parser.add_argument("--rate", type=float, default=1.0, help="messages a second")
    parser.add_argument("--storm-messages", type=int, default=5, help="sent while all are down")
    parser.add_argument("--storms", type=int, default=2, help="2: both, 1: the first, 0: none")
    parser.add_argument("--storm-timeout", type=float, default=120.0)
    parser.add_argument("--probe-interval", type=float, default=0.2)
    parser.add_argument("--probe-baseline", type=float, default=5.0)
    parser.add_argument("--probe-after", type=float, default=1.0)
    add_run_arguments(parser, "wt_streams_bench", 200, 5.0, 3.0, "streams.json")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit(max(4096, 2 * args.streams + 2048))
    log(f"open-file limit: {limit[0]}")
    run_id, url, env, machine = prepare(args, SECRET_KEY)
    server = None
    try:
        migrate(url)
        load_members(url, args.streams)
        cookies = holder_cookies(url, args.streams)
        conf = _conf(env)
        server = Server(env, Path(f"/tmp/linkmsg-bench-{run_id}-gunicorn.log"))
        server.wait_ready(conf["workers"])
        log(f"gunicorn ready on {server.url}: {conf}")
        results = asyncio.run(run(args, server, run_id, url, cookies))
        server_log_errors = [
            line
            for line in server.log_path.read_text().splitlines()
            if "error" in line.lower() or "Traceback" in line
        ]
    finally:
        if server is not None:
            server.stop()
        if not args.keep_db:
            drop_database(args.server, args.database)
    results["server_log_errors"] = server_log_errors[:10]
    results["server_log_error_count"] = len(server_log_errors)
    met = {
        "all_streams_held": results["streams_opened"]
        == results["streams_held_through_steady_phase"]
        == args.streams,
        "p99_under_100ms": results["latency_after_event_row_created"].get("p99_ms", 1e9)
        < TARGET_P99_MS,
        "nothing_lost_or_doubled": not any(
            results[k] for k in ("lost", "doubled", "out_of_order", "gaps", "send_failures")
        ),
        "storms_absorbed": all(
            s["back"] == s["streams"] and s["reconnect_errors"] == 0 and not s["page_error_count"]
            for s in results["storms"]
        ),
    }
    report = {
        "benchmark": "open streams and reconnect storms over gunicorn + PostgreSQL + Redis",
        "command": "python -m bench.streams "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "server": conf,
        "settings": {k: v for k, v in vars(args).items() if k not in ("server", "redis")},
        "machine": machine,
        "results": results,
        "verdict": met,
    }
    output = write_report(report, args.output, "streams.json")
    r = results
    log(
        f"streams {r['streams_opened']}/{args.streams} opened, "
        f"{r['streams_held_through_steady_phase']} held; RSS per stream "
        f"{r['rss_per_stream_kib']} KiB (PSS {r['pss_per_stream_kib']}); workers "
        f"{r['worker_rss_kib_with_streams']} KiB"
    )
    log(
        f"delivery after commit {r['latency_after_event_row_created']}; lost {len(r['lost'])} "
        f"doubled {len(r['doubled'])} out of order {len(r['out_of_order'])} gaps {len(r['gaps'])}"
    )
    log(f"targets: {met}; written to {output}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
