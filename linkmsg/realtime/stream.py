"""GET /stream: a member's own events, exactly once and in order, live and replayed.

Every event is a database row first, numbered densely per member in commit order
(`services.events`). The stream keeps the number of the last event it sent and checks
each message the transport brings against it:

- a number at or below it is a duplicate (already replayed or filled): dropped;
- the next number is sent as it came (its HTML was rendered by the sender's request);
- a number further on means events in between were published late or lost on the way:
  since numbers are handed out in commit order, those rows are committed, so the
  stream reads and renders them from the database and sends them first.

At each keep-alive the stream also asks the database for the member's newest number, so
that an event whose publish was lost is sent within one keep-alive even when nothing
follows it. The streams of a process whose keep-alives fall within CHECK_WINDOW_SECONDS
share one query (`Registry.newest`): 10,000 open streams asking one by one were 670
queries a second (bench/streams.py).

A resume (`Last-Event-ID` header or `last_event_id` parameter) replays the rows after it
in one indexed query, rendered and sent one by one; events that only restate a
thread's state are coalesced. When the rows cannot be replayed exactly (pruned, too many, an unknown
number), the page is told to reload.

A stream ends at once when its session ends (logout, password change, suspension), when
the process shuts down (`close_streams`), or when its member opens more than
`SSE_STREAMS_PER_MEMBER` streams in this process (the oldest goes).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass

import redis
from flask import Blueprint, current_app, request, stream_with_context
from flask_login import current_user
from flask_sse import Message
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..services import events
from ..web import current_session_id, parse_id
from .publish import SESSION_ENDED_TYPE, frame
from .transport import Subscription, broker, channel_for

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)

RELOAD = "reload"  # event type: the page renders afresh (the missed events cannot replay)
ENDED = "ended"  # event type: the stream's login ended; the page goes to the login page
SUPERSEDED = "superseded"  # event type: too many streams; this page stops listening
# Keep-alive checks this close together share one query (`Registry.newest`).
CHECK_WINDOW_SECONDS = 0.25
# Events that only restate a thread's state for the member: in a replay, the last one
# of a thread says all that the earlier ones did.
RESTATING = (events.THREAD_CHANGED, events.INMAIL_ANSWERED)


@dataclass(eq=False)
class OpenStream:
    member_id: int
    session_id: object
    subscription: Subscription
    ending: str | None = None  # why it must end: set by another thread, then woken

    def end(self, reason: str) -> None:
        self.ending = reason
        self.subscription.wake()


@dataclass(eq=False)
class _Check:
    """Members whose newest event number is wanted, answered by one query."""

    members: set[int]
    done: threading.Event
    newest: dict[int, int] | None = None
    error: Exception | None = None


class Registry:
    """An app's open streams in this process: for the per-member cap, for shutdown, and
    for the keep-alive checks, batched into one query."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_member: dict[int, list[OpenStream]] = {}
        self.closing = False
        self.check: _Check | None = None  # the batch collecting members now
        _registries.add(self)

    def add(self, stream: OpenStream, cap: int) -> None:
        with self.lock:
            if self.closing:
                stream.ending = "shutdown"
                return
            mine = self.by_member.setdefault(stream.member_id, [])
            mine.append(stream)
            while len(mine) > cap:
                mine.pop(0).end(SUPERSEDED)

    def newest(self, member_id: int) -> int:
        """The member's newest event number, read by a query that starts after this call.

        The streams whose keep-alives fall within CHECK_WINDOW_SECONDS of each other share
        one query: the first of them waits out the window, then asks for all of them.
        """
        with self.lock:
            check, leader = self.check, self.check is None
            if leader:
                check = self.check = _Check(set(), threading.Event())
            check.members.add(member_id)
        if leader:
            time.sleep(CHECK_WINDOW_SECONDS)
            with self.lock:
                self.check = None  # later callers start the next batch
            try:
                check.newest = events.latest_seqs(check.members)
            except Exception as error:  # each stream of the batch raises it, as its own would
                check.error = error
            finally:
                check.done.set()
        else:
            check.done.wait()
        if check.error is not None:
            raise check.error
        return check.newest.get(member_id, 0)

    def remove(self, stream: OpenStream) -> None:
        with self.lock:
            mine = self.by_member.get(stream.member_id)
            if mine and stream in mine:
                mine.remove(stream)
                if not mine:
                    del self.by_member[stream.member_id]

    def count(self, member_id: int) -> int:
        with self.lock:
            return len(self.by_member.get(member_id, ()))

    def close_all(self) -> int:
        with self.lock:
            self.closing = True
            streams = [s for mine in self.by_member.values() for s in mine]
        for stream in streams:
            stream.end("shutdown")
        return len(streams)


_registries: weakref.WeakSet[Registry] = weakref.WeakSet()
REGISTRY = "linkmsg.streams"  # app.extensions key


def registry() -> Registry:
    return current_app.extensions[REGISTRY]


def close_streams() -> int:
    """End every open stream of this process now (shutdown, reload): clients reconnect
    to another worker and replay what they missed. Returns how many were open."""
    return sum(each.close_all() for each in list(_registries))


OPENING = "linkmsg.stream-opening"  # app.extensions key: the gate of `opening_gate()`


def opening_gate(app) -> threading.BoundedSemaphore:
    """The stream opens of this process that may use the database at once. In a reconnect
    storm (every open page at once after a restart or an outage) thousands of streams
    open together, each needing a connection for a moment: they queued in the pool,
    where a wait past DB_POOL_TIMEOUT fails (bench/streams.py). They wait here instead,
    holding nothing, and at most STREAM_OPENS_AT_ONCE of them use the pool's
    connections, so that pages never wait behind a storm."""
    return threading.BoundedSemaphore(app.config["STREAM_OPENS_AT_ONCE"])


@bp.route("/stream")
def stream():
    config = current_app.config
    gate = current_app.extensions[OPENING]
    if not gate.acquire(timeout=config["STREAM_OPEN_WAIT_SECONDS"]):
        response = current_app.response_class(
            "Too many event streams are opening at once; try again shortly.\n",
            status=503,
            mimetype="text/plain",
        )
        response.headers["Retry-After"] = str(max(1, config["SSE_RETRY_MS"] // 1000))
        return response
    try:
        if not current_user.is_authenticated:
            return current_app.response_class(
                "Log in to receive events.\n", status=401, mimetype="text/plain"
            )
        member_id = current_user.id
        after = parse_id(request.headers.get("Last-Event-ID") or request.args.get("last_event_id"))
        # Subscribe first, then read the database: an event committed in between is in
        # both, and its number tells the copies apart. No transaction is held while
        # subscribing.
        db.session.remove()
        try:
            subscription = broker().subscribe(channel_for(member_id))
        except redis.RedisError as error:
            log.warning("event stream could not subscribe: %s", error)
            subscription = None
        try:
            replay = events.since(member_id, after) if after is not None else []
            newest = after if after is not None else events.latest_seq(member_id)
            # The missed events rendered now, inside the gate: rendering reads the database.
            replayed = [frame(row) for row in _coalesced(replay)] if replay else []
        except BaseException:
            if subscription is not None:
                subscription.close()  # no stream will: the hub would keep queuing for it
            raise
    finally:
        gate.release()
        db.session.remove()  # nothing is held while the stream waits
    streams = registry()
    opened = OpenStream(member_id, current_session_id(), subscription) if subscription else None
    # Jittered so that after an outage or a restart the reconnects spread out.
    retry = random.randint(config["SSE_RETRY_MS"], 2 * config["SSE_RETRY_MS"])

    def generate():
        sent = newest
        if opened is not None:
            streams.add(opened, config["SSE_STREAMS_PER_MEMBER"])
        try:
            yield f": open\nretry: {retry}\n\n"
            if replay is None:
                yield str(Message(RELOAD, type=RELOAD))
                return
            for message in replayed:
                yield from _deliver(opened, message)
            if replay:
                sent = replay[-1].seq
            db.session.remove()
            if opened is None:
                return  # no transport now: the client reconnects and replays later
            while opened.ending is None:
                message = subscription.get(timeout=config["SSE_KEEPALIVE_SECONDS"])
                if opened.ending is not None or subscription.broken:
                    break
                if message is None:
                    yield ": keep-alive\n\n"
                    missed = _check(member_id, sent, streams)
                else:
                    seq = parse_id(str(message.id or ""))
                    if seq is None or seq <= sent:
                        continue  # a duplicate: replayed or filled already
                    missed = _fill(member_id, sent, seq - 1, streams) + [message]
                for item in missed:
                    yield from _deliver(opened, item)
                    sent = int(item.id)
                    if opened.ending is not None:
                        break
            if opened.ending == SUPERSEDED:
                yield str(Message(SUPERSEDED, type=SUPERSEDED))
            elif opened.ending == "session":
                yield str(Message(ENDED, type=ENDED))
        finally:
            if opened is not None:
                streams.remove(opened)
            if subscription is not None:
                subscription.close()
            db.session.remove()

    response = current_app.response_class(
        stream_with_context(generate()), mimetype="text/event-stream"
    )
    if subscription is not None:
        response.call_on_close(subscription.close)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _deliver(opened: OpenStream | None, message: Message):
    """Send one frame, unless it says that this stream's session ended: then the stream
    ends instead (other sessions' ends are not the page's business)."""
    if message.type == SESSION_ENDED_TYPE:
        if opened is not None and opened.session_id in json.loads(message.data):
            opened.ending = "session"
        return
    yield str(message)


def _fill(member_id: int, after: int, through: int | None, streams: Registry) -> list[Message]:
    """Frames of the events the transport did not bring (late or lost), from the
    database. Numbers are handed out in commit order, so every one up to a number seen
    is committed: the gap is filled now, not waited for."""
    if through is not None and through <= after:
        return []
    try:
        if through is None:
            through = streams.newest(member_id)
            if through <= after:
                return []
        rows = events.between(member_id, after, through)
        if [row.seq for row in rows] != list(range(after + 1, through + 1)):
            log.error("member %s: events %s..%s are not all there", member_id, after, through)
        return [frame(row) for row in rows]
    finally:
        db.session.remove()


def _check(member_id: int, sent: int, streams: Registry) -> list[Message]:
    """The keep-alive check: events past `sent` that the transport did not bring. When the
    database cannot answer now (down, or every connection busy in a reconnect storm) the
    stream stays open and the next keep-alive asks again: ending it would send its client
    into the storm too (bench/streams.py)."""
    try:
        return _fill(member_id, sent, None, streams)
    except SQLAlchemyError as error:
        log.warning(
            "event stream of member %s could not check for missed events: %s", member_id, error
        )
        return []


def _coalesced(rows):
    """The replay, without the events that a later one of the same thread restates."""
    last = {}
    for index, row in enumerate(rows):
        if row.kind in RESTATING:
            last[(row.kind, row.payload.get("thread_id"))] = index
    for index, row in enumerate(rows):
        if row.kind in RESTATING and last[(row.kind, row.payload.get("thread_id"))] != index:
            continue
        yield row
