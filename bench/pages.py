"""Page latency and throughput of the real app under gunicorn, at two sizes of network.

    .venv/bin/python -m bench.pages                        # scales 0.01 and 1.0
    .venv/bin/python -m bench.pages --scales 0.01          # one size, no ratios
    .venv/bin/python -m bench.pages --profile 300          # also profile each page in process

For each scale: loads (or reuses) the data of bench/generate.py, starts gunicorn serving
the app against it (with gunicorn.conf.py when present, REDIS_URL set, login limits
raised), logs the probe members in through the real /login form, and from this process
times, over keep-alive connections:

  a. latency of GET /messaging, /messaging/t/<id> (a typical thread), the "Load older
     messages" page two thirds of the way back in a thread of thousands of messages
     (reached by following the page's own links), /in/<handle> of a 2nd-degree member and
     /search?q=<the most common first name>, with p50/p95/p99 per page, and full/1% ratios;
  b. requests per second at a fixed concurrency of each page and of /ping (a constant
     "pong" from the same app, server and settings), alternating, in one run: each page's
     share of /ping, and the CPU per request of the gunicorn workers and of their
     PostgreSQL backends, apart (from /proc);
  c. statements per request of each page, counted on the engine by running each page once
     more in this process through the app's test client, on the same database and with
     the same session cookie (linkmsg/statements.py, as tests/test_statement_budget.py);
  d. with --profile N: the CPU of N requests of each page in this process (the same test
     client, nothing else running in it), and pyinstrument's tree of the thread page's N
     requests, written beside the report as <output>-<scale>-thread.txt.

Writes bench/results/pages.json with the machine details. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import quote

import psycopg

from . import generate
from .common import BENCH_PASSWORD, log, machine_info, machine_line, server_url, summarize

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "pages.json"
PAGES = ("inbox", "thread", "older", "profile", "search")
TARGET_P95_MS = 25.0
TARGET_RATIO = 1.5
TARGET_THROUGHPUT_SHARE = 0.35
# What each page must contain to count as rendered (not just a 200).
MARKERS = {
    "inbox": b'data-testid="thread-row"',
    "thread": b'data-testid="message-body"',
    "older": b'data-testid="newest"',  # "Jump to the newest messages": an older page
    "profile": b'data-testid="profile-name"',
    "search": b'data-testid="search-results"',
    "ping": b"pong",
}
# Sent with every request, the login's included: Flask-Login's session protection marks
# a session not fresh when the client's User-Agent changes, and the timed client (which
# keeps no cookies) would then be sent a new session cookie on every page, as no browser
# is.
USER_AGENT = "linkmsg-bench"
OLDER_LINK = re.compile(r'<a href="([^"]+)" data-testid="load-older"')


# --------------------------------------------------------------------------- HTTP client


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for the timed requests:
    cheap enough on the client side that the server, not the client, is measured."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.cookies_set = 0  # responses that sent a cookie (a steady page sends none)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.reader = self.writer = None

    async def get(self, path: str, cookie: str) -> tuple[int, bytes]:
        try:
            return await self._get(path, cookie)
        except ConnectionError:
            # The server may close a keep-alive connection that sat idle past its timeout
            # (on a busy machine a client can wait that long between two requests): a GET
            # is sent again once, on a new connection.
            await self.close()
            return await self._get(path, cookie)

    async def _get(self, path: str, cookie: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Cookie: {cookie}\r\nAccept: text/html\r\nUser-Agent: {USER_AGENT}\r\n\r\n"
            ).encode()
        )
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "set-cookie":
                self.cookies_set += 1
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return status, body


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    database_url: str, port: int, workers: int, redis_url: str, secret_key: str
) -> subprocess.Popen:
    """gunicorn serving app:app, with gunicorn.conf.py when the project has one."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secret_key,
        EVENT_CHANNEL_PREFIX=f"linkmsg-bench-{uuid.uuid4().hex[:8]}:",
        # Only logins and sends are limited (a successful login gives its count back);
        # raised anyway, so that a rerun never meets a limit.
        LOGIN_ACCOUNT_CLIENT_RATE_LIMIT="100000 per minute",
        LOGIN_ACCOUNT_RATE_LIMIT="100000 per minute",
        LOGIN_ADDRESS_RATE_LIMIT="100000 per minute",
        MESSAGE_RATE_LIMIT="100000 per minute",
        NEW_THREAD_RATE_LIMIT="100000 per minute",
        MAIL_WORKER_THREAD="false",
        GUNICORN_LOG_LEVEL="warning",
        WEB_CONCURRENCY=str(workers),
        BIND=f"127.0.0.1:{port}",
    )
    env.pop("GUNICORN_ACCESS_LOG", None)
    command = [sys.executable, "-m", "gunicorn"]
    if (ROOT / "gunicorn.conf.py").exists():
        command += ["-c", str(ROOT / "gunicorn.conf.py")]
    else:  # keep-alive needs a threaded (or evented) worker
        command += ["--worker-class", "gthread", "--threads", "8"]
    command += [
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "app:app",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def wait_ready(server: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become ready")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return pids


def backend_pids(conn: psycopg.Connection, application: str) -> list[int]:
    """The PostgreSQL backends serving the site's gunicorn: its connections carry their
    own application_name, so the benchmark's own connections, the in-process statement
    count and anyone else's work on the same database are left out."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
    ).fetchall()
    return [pid for (pid,) in rows]


class CpuMeter:
    """CPU seconds used by a set of processes (the gunicorn workers, or their PostgreSQL
    backends). `pids()` is asked again at each `sample()` and at the end: a process that
    started in between counts in full, and one that ended (a pooled connection closed)
    counts up to its last sample, so `sample()` often while measuring."""

    def __init__(self, pids):
        self.pids = pids
        self.start = {pid: _ticks(pid) for pid in pids()}
        self.start = {pid: ticks for pid, ticks in self.start.items() if ticks is not None}
        self.last = dict(self.start)

    def sample(self, refresh: bool = True) -> None:
        """Read the ticks of every process known, and first ask who they are (`refresh`)."""
        for pid in (set(self.pids()) if refresh else set()) | set(self.last):
            ticks = _ticks(pid)
            if ticks is not None:
                self.last[pid] = ticks

    def seconds(self) -> float:
        return sum(self.per_process())

    def per_process(self) -> list[float]:
        """CPU seconds of each process, most first."""
        self.sample()
        ticks = [ticks - self.start.get(pid, 0) for pid, ticks in self.last.items()]
        return sorted((t / os.sysconf("SC_CLK_TCK") for t in ticks), reverse=True)


async def sampling(meters, interval: float = 0.25, refresh_every: int = 4) -> None:
    """Sample `meters` every `interval` seconds until cancelled, asking which processes
    they are every `refresh_every` samples (a scan of /proc, a query): cheap enough not
    to weigh on what is measured."""
    count = 0
    while True:
        await asyncio.sleep(interval)
        count += 1
        for meter in meters:
            meter.sample(refresh=count % refresh_every == 0)


# --------------------------------------------------------------------------- the run


async def login(base: str, email: str) -> str:
    """Log in through the /login form; returns the Cookie header of the session."""
    import httpx

    async with httpx.AsyncClient(
        base_url=base, follow_redirects=False, timeout=30, headers={"User-Agent": USER_AGENT}
    ) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        if token is None:
            token = re.search(r'id="csrf_token" name="csrf_token"[^>]*value="([^"]+)"', page.text)
        if token is None:
            raise RuntimeError("no CSRF token on /login")
        response = await client.post(
            "/login",
            data={"email": email, "password": BENCH_PASSWORD, "csrf_token": token.group(1)},
        )
        if response.status_code != 303:
            raise RuntimeError(f"login of {email} answered {response.status_code}")
        # A page with a form puts the CSRF token in the session, as a browser's first page
        # after login would: later pages then leave the cookie as it is.
        await client.get("/profile/edit")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


async def find_older(conn: Connection, cookie: str, thread_id: int, depth: int) -> tuple[str, int]:
    """Follow "Load older messages" from the newest page `depth` times (or as far as it
    goes); returns the link of that page and how many pages back it is."""
    path, pages = f"/messaging/t/{thread_id}", 0
    while pages < depth:
        status, body = await conn.get(path, cookie)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        match = OLDER_LINK.search(body.decode())
        if match is None:
            break
        path, pages = unescape(match.group(1)), pages + 1
    return path, pages


def discover(url: str, meta: dict) -> dict:
    """Handles of the 2nd-degree members and the most common first name, from the data."""
    ids = sorted({m for probe in meta["probe_members"] for m in probe["second_degree"]})
    with psycopg.connect(url, autocommit=True) as conn:
        handles = dict(conn.execute("SELECT id, handle FROM member WHERE id = ANY(%s)", (ids,)))
        name, count = conn.execute(
            "SELECT split_part(name, ' ', 1), count(*) FROM member GROUP BY 1"
            " ORDER BY 2 DESC, 1 LIMIT 1"
        ).fetchone()
    return {"handles": handles, "search": name, "search_members": count}


class Site:
    """One scale: its data, its gunicorn, its logged-in probes and the URLs of each page."""

    def __init__(self, args, scale: float, database: str | None):
        self.scale = scale
        self.redis = args.redis
        self.meta = generate.prepare(scale, database, server=args.server, seed=args.seed)
        self.database = self.meta["database"]
        self.url = server_url(args.server, self.database)
        self.found = discover(self.url, self.meta)
        self.port = args.port + len(SITES) if args.port else free_port()
        log(
            f"[scale {scale:g}] gunicorn on 127.0.0.1:{self.port} ({args.workers} workers),"
            f" database {self.database}"
        )
        self.application = f"linkmsg-bench-pages-{uuid.uuid4().hex[:8]}"
        self.monitor = psycopg.connect(self.url, autocommit=True)  # finds the backends
        self.secret_key = "bench-" + uuid.uuid4().hex
        self.server = start_server(
            f"{self.url}?application_name={self.application}",
            self.port,
            args.workers,
            args.redis,
            self.secret_key,
        )
        SITES.append(self)
        wait_ready(self.server, self.port)
        self.urls: dict[str, list[tuple[str, str]]] = {page: [] for page in PAGES}
        self.older_depths: list[int] = []
        self.checks: dict[str, dict] = {}

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.port)

    def cpu(self) -> dict[str, CpuMeter]:
        """Meters of the app (gunicorn workers) and of PostgreSQL (their backends)."""
        return {
            "app": CpuMeter(lambda: worker_pids(self.server.pid)),
            "postgresql": CpuMeter(lambda: backend_pids(self.monitor, self.application)),
        }

    async def prepare(self, args) -> None:
        """Log the probes in, find each page's URLs, and warm every URL up (the first view
        of a thread marks it read, the first view of a profile records the view: the timed
        requests are the steady state)."""
        probes = self.meta["probe_members"]
        base = f"http://127.0.0.1:{self.port}"
        cookies = await asyncio.gather(*(login(base, p["email"]) for p in probes))
        conn = self.connection()
        for probe, cookie in zip(probes, cookies, strict=True):
            self.urls["inbox"].append(("/messaging", cookie))
            self.urls["thread"].append((f"/messaging/t/{probe['typical_thread']}", cookie))
            if probe["long_thread"]:
                # Two thirds of the way back in the long thread, following the page's links.
                depth = max(1, probe["long_messages"] * 2 // 3 // 30)
                path, pages = await find_older(conn, cookie, probe["long_thread"], depth)
                self.urls["older"].append((path, cookie))
                self.older_depths.append(pages)
            for member in probe["second_degree"][:3]:
                handle = quote(self.found["handles"][member])
                self.urls["profile"].append((f"/in/{handle}", cookie))
            self.urls["search"].append((f"/search?q={quote(self.found['search'])}", cookie))
        for page, items in self.urls.items():
            check = self.checks.setdefault(page, {"status": set(), "rendered": True, "bytes": 0})
            for path, cookie in items:
                for _ in range(args.warmup):
                    status, body = await conn.get(path, cookie)
                check["status"].add(status)
                check["rendered"] &= status == 200 and MARKERS[page] in body
                check["bytes"] = max(check["bytes"], len(body))
                before = conn.cookies_set
                status, body = await conn.get(path, cookie)
                check["sets_cookie"] = check.get("sets_cookie", False) or conn.cookies_set > before
                if page == "profile":
                    check["second_degree"] = check.get("second_degree", True) and b"2nd" in body
        await conn.close()


SITES: list[Site] = []


async def latency(args, sites: list[Site]) -> dict:
    """Every page of every site `requests` times, all shuffled together and sent by
    `clients` clients: the sites are timed under the same conditions, side by side."""
    rng = random.Random(args.seed)
    tasks = [
        (site, page, *rng.choice(items))
        for site in sites
        for page, items in site.urls.items()
        for _ in range(args.requests)
    ]
    rng.shuffle(tasks)
    samples = {(id(site), page): [] for site in sites for page in PAGES}
    statuses = {(id(site), page): {} for site in sites for page in PAGES}
    queue = list(reversed(tasks))

    async def client():
        conns = {id(site): site.connection() for site in sites}
        clock = time.perf_counter
        while queue:
            site, page, path, cookie = queue.pop()
            start = clock()
            status, body = await conns[id(site)].get(path, cookie)
            samples[id(site), page].append((clock() - start) * 1000)
            key = str(status) if status != 200 or MARKERS[page] in body else "200 without the page"
            counts = statuses[id(site), page]
            counts[key] = counts.get(key, 0) + 1
        for conn in conns.values():
            await conn.close()

    meters = [site.cpu() for site in sites]
    sampler = asyncio.create_task(sampling([m for pair in meters for m in pair.values()]))
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.clients)))
    wall = time.perf_counter() - started
    sampler.cancel()
    results = {}
    for site, meter in zip(sites, meters, strict=True):
        pages = {}
        for page in PAGES:
            stats = summarize(samples[id(site), page])
            stats["statuses"] = dict(sorted(statuses[id(site), page].items()))
            stats["urls"] = len(site.urls[page])
            stats["bytes"] = site.checks[page]["bytes"]
            stats["rendered"] = site.checks[page]["rendered"] and set(stats["statuses"]) == {"200"}
            stats["sets_cookie"] = site.checks[page].get("sets_cookie", False)
            pages[page] = stats
        run = {"clients": args.clients, "requests_all_sites": len(tasks), "seconds": round(wall, 2)}
        for side, cpu in meter.items():
            seconds = cpu.seconds()
            run[f"{side}_cpu_s"] = round(seconds, 2)
        results[id(site)] = {"pages": pages, "run": run}
    return results


async def saturate(args, site: Site, route: str) -> dict:
    """`concurrency` connections requesting `route` (a page, or "ping") back to back for
    `seconds`, each on one of the page's URLs in turn.

    The connections are opened `stagger` seconds apart, each starting its requests at
    once, and the timing starts once all are busy. gunicorn's gevent workers share one
    listening socket and each takes up to `max_accept` connections per wake-up
    (gunicorn.conf.py): eight connections opened together all went to whichever worker
    woke first about half the time, and the run measured one worker. A worker busy with
    the earlier connections is not waiting to accept, so the other one takes the next:
    each worker gets its share, and `workers_cpu_s` shows the split."""
    statuses: dict[str, int] = {}
    counter = [0]
    end = [0.0]
    timing = [False]

    async def worker(number: int):
        conn = site.connection()
        items = site.urls["thread" if route == "ping" else route]
        path, cookie = items[number % len(items)]
        if route == "ping":
            path = "/ping"
        marker = MARKERS[route]
        while not timing[0] or time.perf_counter() < end[0]:
            status, body = await conn.get(path, cookie)
            if not timing[0]:
                continue
            key = str(status) if marker in body else f"{status} without the page"
            statuses[key] = statuses.get(key, 0) + 1
            counter[0] += 1
        await conn.close()

    tasks = []
    for number in range(args.concurrency):
        tasks.append(asyncio.create_task(worker(number)))
        await asyncio.sleep(args.stagger)
    await asyncio.sleep(args.stagger)
    meters = site.cpu()
    client_cpu = time.process_time()
    started = time.perf_counter()
    end[0] = started + args.seconds
    timing[0] = True
    sampler = asyncio.create_task(sampling(meters.values()))
    await asyncio.gather(*tasks)
    sampler.cancel()
    result = {
        "requests": counter[0],
        "seconds": time.perf_counter() - started,
        "statuses": statuses,
        "client_cpu_s": time.process_time() - client_cpu,
        "workers_cpu_s": [round(seconds, 2) for seconds in meters["app"].per_process()],
    }
    for side, meter in meters.items():
        result[f"{side}_cpu_s"] = meter.seconds()
    return result


ROUTES = ("ping", *PAGES)
CPU_SIDES = ("app", "postgresql")


async def throughput(args, site: Site) -> dict:
    """/ping and each page of one site in turn, for `rounds` rounds."""
    totals = {
        route: {
            "requests": 0,
            "seconds": 0.0,
            "statuses": {},
            "client_cpu_s": 0.0,
            "workers_cpu_s": [],
        }
        | {f"{side}_cpu_s": 0.0 for side in CPU_SIDES}
        for route in ROUTES
    }
    for _ in range(args.rounds):
        for route in ROUTES:
            result = await saturate(args, site, route)
            entry = totals[route]
            for key in ("requests", "seconds", "client_cpu_s"):
                entry[key] += result[key]
            for side in CPU_SIDES:
                entry[f"{side}_cpu_s"] += result[f"{side}_cpu_s"]
            for status, count in result["statuses"].items():
                entry["statuses"][status] = entry["statuses"].get(status, 0) + count
            entry["workers_cpu_s"].append(result["workers_cpu_s"])  # per round, most first
    for entry in totals.values():
        entry["requests_per_s"] = round(entry["requests"] / entry["seconds"], 1)
        requests = max(1, entry["requests"])
        for side in CPU_SIDES:
            key = f"{side}_cpu_s"
            entry[f"{side}_cpu_ms_per_request"] = round(entry[key] * 1000 / requests, 3)
            entry[key] = round(entry[key], 2)
        entry["client_cpu_ms_per_request"] = round(entry["client_cpu_s"] * 1000 / requests, 3)
        entry["seconds"] = round(entry["seconds"], 2)
        entry["client_cpu_s"] = round(entry["client_cpu_s"], 2)
    ping = totals["ping"]["requests_per_s"]
    shares = {page: round(totals[page]["requests_per_s"] / ping, 3) for page in PAGES}
    return dict(
        totals,
        concurrency=args.concurrency,
        rounds=args.rounds,
        seconds_per_round=args.seconds,
        share_of_ping=shares,
        thread_share_of_ping=shares["thread"],
    )


def in_process_app(site: Site):
    """The app in this process on the site's database, with the server's secret key (so the
    probes' session cookies hold), and a test client that sends no cookies of its own."""
    from linkmsg import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": site.url,
            "REDIS_URL": site.redis,
            "EVENT_CHANNEL_PREFIX": f"linkmsg-bench-{uuid.uuid4().hex[:8]}:",
            "MAIL_WORKER_THREAD": False,
        }
    )
    app.config["SECRET_KEY"] = site.secret_key  # create_app may set the instance's own
    return app, app.test_client(use_cookies=False)


def get_page(client, page: str, path: str, cookie: str) -> None:
    response = client.get(
        path, headers={"Cookie": cookie, "Accept": "text/html", "User-Agent": USER_AGENT}
    )
    if response.status_code != 200 or MARKERS[page] not in response.data:
        raise RuntimeError(f"in-process {path} answered {response.status_code}")


def count_statements(site: Site) -> dict:
    """Statements per request of each page: every URL of the page requested once more in
    this process, through the app's test client against the site's database with the
    probe's own session cookie (the same secret key as the server's), counted on the
    engine. Each URL is asked once first, uncounted: the steady state the timings see.
    (The warm-up through gunicorn ran a while before; a member last active over a minute
    ago has the first page write that down, once a minute, and read the page's member,
    labels and counts again after the commit: 6 statements for the inbox.)"""
    from linkmsg.extensions import db
    from linkmsg.statements import counted

    app, client = in_process_app(site)
    counts = {}
    try:
        for page in PAGES:
            for path, cookie in site.urls[page]:
                get_page(client, page, path, cookie)
            seen_per_url = []
            for path, cookie in site.urls[page]:
                with counted(app) as seen:
                    get_page(client, page, path, cookie)
                seen_per_url.append(list(seen))
            sizes = [len(seen) for seen in seen_per_url]
            counts[page] = {
                "per_request": round(sum(sizes) / len(sizes), 2),
                "max": max(sizes),
                "urls": len(sizes),
                "first_url": [statement[:300] for statement in seen_per_url[0]],
            }
    finally:
        with app.app_context():
            db.engine.dispose()
    return counts


def profile_pages(site: Site, requests: int, tree: Path) -> dict:
    """CPU per request of each page in this process (`requests` requests round the page's
    URLs, after one untimed round), then pyinstrument's tree of the thread page's
    `requests` (written to `tree`). This process's CPU is the app's, the driver's and the
    test client's; PostgreSQL's is its own process's, not counted here."""
    from pyinstrument import Profiler

    from linkmsg.extensions import db

    app, client = in_process_app(site)
    cpu = {}
    try:
        for page in PAGES:
            urls = site.urls[page]
            for path, cookie in urls:
                get_page(client, page, path, cookie)
            start = time.process_time()
            for index in range(requests):
                get_page(client, page, *urls[index % len(urls)])
            cpu[page] = round((time.process_time() - start) * 1000 / requests, 3)
        profiler = Profiler(interval=0.0002)
        urls = site.urls["thread"]
        with profiler:
            for index in range(requests):
                get_page(client, "thread", *urls[index % len(urls)])
        tree.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        with app.app_context():
            db.engine.dispose()
    return {"requests": requests, "cpu_ms_per_request": cpu, "thread_tree": tree.name}


async def run(args, databases) -> list[dict]:
    sites = []
    try:
        for scale, database in zip(args.scales, databases, strict=True):
            sites.append(Site(args, scale, database))
        for site in sites:
            await site.prepare(args)
        statements = {}
        for site in sites:
            log(f"[scale {site.scale:g}] statements per request, in process ...")
            statements[id(site)] = count_statements(site)
        profiles = {}
        if args.profile:
            for site in sites:
                log(f"[scale {site.scale:g}] {args.profile} requests of each page, in process ...")
                tree = args.output.with_name(f"{args.output.stem}-{site.scale:g}-thread.txt")
                profiles[id(site)] = profile_pages(site, args.profile, tree)
        load_before = os.getloadavg()
        log(f"timing {len(PAGES)} pages x {args.requests} requests on {len(sites)} site(s) ...")
        timed = await latency(args, sites)
        rates = {}
        for site in sites:
            log(f"[scale {site.scale:g}] throughput, /ping against the thread page ...")
            rates[id(site)] = await throughput(args, site)
        load_after = os.getloadavg()
        return [
            describe(site, timed[id(site)], rates[id(site)], statements[id(site)])
            | {"load_average_before": list(load_before), "load_average_after": list(load_after)}
            | ({"in_process": profiles[id(site)]} if id(site) in profiles else {})
            for site in sites
        ]
    finally:
        for site in SITES:
            stop_server(site.server)
            site.monitor.close()
        SITES.clear()


def describe(site: Site, timed: dict, rates: dict, statements: dict) -> dict:
    meta = site.meta
    with psycopg.connect(site.url, autocommit=True) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in meta["rows"]
        }
    probes = meta["probe_members"]
    return {
        "scale": site.scale,
        "database": site.database,
        "dataset": {
            "rows": meta["rows"],
            "rows_now": counts,
            "loaded_at": meta["loaded_at"],
            "load_s": meta["load"]["total_s"],
            "loaded_this_run": meta["loaded_this_run"],
        },
        "probes": len(probes),
        "search": {
            "q": site.found["search"],
            "members_with_that_first_name": site.found["search_members"],
        },
        "older_pages_back": site.older_depths,
        "thread_messages": [p["typical_messages"] for p in probes],
        "long_thread_messages": [p["long_messages"] for p in probes if p["long_thread"]],
        "profile_second_degree": site.checks["profile"].get("second_degree", False),
        "statements": statements,
        "latency": timed["pages"],
        "latency_run": timed["run"],
        "throughput": rates,
    }


# --------------------------------------------------------------------------- report


def compare(results: list[dict]) -> dict:
    """Ratios of the largest scale to the smallest, per page, and the targets."""
    small, large = results[0], results[-1]
    ratios = {}
    for page in PAGES:
        a, b = small["latency"][page], large["latency"][page]
        ratios[page] = {
            "p50": round(b["median_ms"] / a["median_ms"], 2),
            "p95": round(b["p95_ms"] / a["p95_ms"], 2),
        }
    return {
        "from_scale": small["scale"],
        "to_scale": large["scale"],
        "ratios": ratios,
        "p95_ratio_within_target": all(r["p95"] <= TARGET_RATIO for r in ratios.values()),
    }


def targets(results: list[dict], comparison: dict | None) -> dict:
    large = results[-1]
    worst = max(large["latency"][page]["p95_ms"] for page in PAGES)
    share = large["throughput"]["thread_share_of_ping"]
    report = {
        f"p95 < {TARGET_P95_MS} ms at scale {large['scale']:g}": worst < TARGET_P95_MS,
        f"thread page >= {TARGET_THROUGHPUT_SHARE:.0%} of /ping": share >= TARGET_THROUGHPUT_SHARE,
    }
    if comparison:
        report[f"p95 ratio <= {TARGET_RATIO}"] = comparison["p95_ratio_within_target"]
    return report


def print_report(report: dict) -> None:
    machine = report["machine"]
    log("")
    server = report["server"]
    log(f"{machine_line(machine)}; gunicorn {server['workers']} workers ({server['config']})")
    for result in report["scales"]:
        rows = result["dataset"]["rows"]
        log(
            f"\nscale {result['scale']:g}: {rows['member']:,} members, {rows['thread']:,} threads,"
            f" {rows['message']:,} messages"
        )
        for page in PAGES:
            stats = result["latency"][page]
            log(
                f"  {page:<8} median {stats['median_ms']:7.2f} ms   p95 {stats['p95_ms']:7.2f} ms"
                f"   p99 {stats['p99_ms']:7.2f} ms   n={stats['n']:<5} {stats['statuses']}"
                + ("  (sends a cookie on every request)" if stats.get("sets_cookie") else "")
            )
        t = result["throughput"]
        log(
            f"  throughput at concurrency {t['concurrency']}, {t['rounds']} x"
            f" {t['seconds_per_round']:g} s per route; CPU ms per request:"
        )
        for route in ROUTES:
            entry = t[route]
            share = "" if route == "ping" else f" = {t['share_of_ping'][route]:6.1%} of /ping"
            statements = "" if route == "ping" else result["statements"][route]["per_request"]
            log(
                f"    {route:<8} {entry['requests_per_s']:8.1f} req/s{share:<17}"
                f" app {entry['app_cpu_ms_per_request']}"
                f"  postgresql {entry['postgresql_cpu_ms_per_request']}"
                f"  client {entry['client_cpu_ms_per_request']}"
                f"  statements {statements}  {entry['statuses']}"
                f"  workers' CPU s {entry['workers_cpu_s']}"
            )
        if "in_process" in result:
            profile = result["in_process"]
            log(
                f"  in process, CPU ms per request over {profile['requests']}: "
                + ", ".join(f"{page} {ms}" for page, ms in profile["cpu_ms_per_request"].items())
                + f"; the thread page's profile: {profile['thread_tree']}"
            )
    if report.get("comparison"):
        ratios = report["comparison"]["ratios"]
        log(
            "\nratios scale "
            f"{report['comparison']['to_scale']:g} / {report['comparison']['from_scale']:g}: "
            + ", ".join(f"{page} p95 {r['p95']}x (p50 {r['p50']}x)" for page, r in ratios.items())
        )
    for name, met in report["targets"].items():
        log(f"target {name}: {'met' if met else 'MISSED'}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.pages", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scales", type=float, nargs="+", default=[0.01, 1.0])
    parser.add_argument(
        "--databases", nargs="+", help="one per scale (default: linkmsg_bench_<scale>)"
    )
    parser.add_argument("--server", default=generate.DEFAULT_SERVER, help="PostgreSQL")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per page")
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients (latency)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per URL")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (throughput)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per route and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of /ping and each page")
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.05,
        help="seconds between opening the throughput connections (so each worker gets some)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="N in-process requests per page"
    )
    args = parser.parse_args(argv)
    if args.databases and len(args.databases) != len(args.scales):
        parser.error("give one database per scale")
    return args


def worker_class(config: bool) -> str:
    return os.environ.get("GUNICORN_WORKER_CLASS") or ("gevent" if config else "gthread")


def main(argv=None) -> int:
    args = parse_args(argv)
    databases = args.databases or [None] * len(args.scales)
    results = asyncio.run(run(args, databases))
    comparison = compare(results) if len(results) > 1 else None
    config = (ROOT / "gunicorn.conf.py").exists()
    report = {
        "benchmark": "pages",
        "command": "python -m bench.pages " + " ".join(sys.argv[1:] if argv is None else argv),
        "server": {
            "gunicorn": "gunicorn -c gunicorn.conf.py" if config else "gunicorn (defaults)",
            "config": "gunicorn.conf.py" if config else "none",
            "worker_class": worker_class(config),
            "workers": args.workers,
            "redis": args.redis,
        },
        "scales": results,
        "comparison": comparison,
    }
    report["targets"] = targets(results, comparison)
    with psycopg.connect(server_url(args.server, results[-1]["database"]), autocommit=True) as conn:
        report["machine"] = machine_info(
            conn,
            ("message", "pk_message", "ix_message_thread_id", "thread_member", "member", "thread"),
        )
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(args.output)
    log(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
