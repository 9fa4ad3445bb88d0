"""Live delivery: one private event stream per member, with replay.

Our own instance of flask-sse's ServerSentEventsBlueprint (`events_bp`), subclassed so
that:
- the transport is Redis pub/sub when REDIS_URL is set (one pub/sub connection per
  process, shared by its streams: `RedisHub`) and an in-process fan-out otherwise; either
  way each open stream reads a bounded queue of its own;
- the stream's channel is the logged-in member's (`member:<id>`), never `?channel=`;
- every event is a database row first: a stream replays the rows after Last-Event-ID
  (header or `last_event_id` parameter), then goes live, skipping what it replayed.

Event rows are published after the transaction that wrote them commits (see
`init_app`), best effort: a publish that fails leaves the row for the next replay.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading

import redis
from flask import Flask, current_app, g, has_request_context, request
from flask_login import current_user
from flask_sqlalchemy.session import Session
from flask_sse import Message, ServerSentEventsBlueprint
from sqlalchemy import event as sa_event

from .extensions import db
from .models import Event

log = logging.getLogger(__name__)

EXTENSION = "linkmsg.realtime"


def channel_for(member_id: int) -> str:
    """`member:<id>`, namespaced so that two sites sharing one Redis never cross-talk
    (Redis pub/sub channels ignore the database number)."""
    return f"{current_app.config['EVENT_CHANNEL_PREFIX']}member:{member_id}"


# ---------------------------------------------------------------- transports


class Subscription:
    """One open stream's view of one channel."""

    def get(self, timeout: float) -> Message | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        """True when events may have been lost: the stream should end so the client
        reconnects and replays from the database."""
        return False


class MemorySubscription(Subscription):
    def __init__(self, broker: MemoryBroker, channel: str, size: int):
        self.broker, self.channel = broker, channel
        self.queue: queue.Queue[Message] = queue.Queue(maxsize=size)
        self.overflowed = False
        self.closed = False

    def get(self, timeout: float) -> Message | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def offer(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            self.overflowed = True

    @property
    def broken(self) -> bool:
        return self.overflowed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker.remove(self)


class MemoryBroker:
    """In-process fan-out for a single process (`flask run`, tests)."""

    name = "memory"

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.channels: dict[str, set[MemorySubscription]] = {}

    def subscribe(self, channel: str) -> MemorySubscription:
        subscription = MemorySubscription(self, channel, self.queue_size)
        with self.lock:
            self.channels.setdefault(channel, set()).add(subscription)
        return subscription

    def remove(self, subscription: MemorySubscription) -> None:
        with self.lock:
            subscribers = self.channels.get(subscription.channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self.channels[subscription.channel]

    def publish(self, channel: str, message: Message) -> None:
        with self.lock:
            subscribers = list(self.channels.get(channel, ()))
        for subscription in subscribers:
            subscription.offer(message)

    def subscriber_count(self, channel: str) -> int:
        with self.lock:
            return len(self.channels.get(channel, ()))


class HubSubscription(MemorySubscription):
    """A stream's queue, fed by its process's RedisHub."""

    def __init__(self, hub: RedisHub, channel: str, size: int, generation: int):
        super().__init__(hub, channel, size)
        self.generation = generation
        self.failed = False

    def fail(self) -> None:
        """The hub lost Redis: end the stream, so that the client reconnects and replays."""
        self.failed = True
        try:
            self.queue.put_nowait(None)  # wakes the stream now rather than at its keep-alive
        except queue.Full:
            pass

    @property
    def broken(self) -> bool:
        return self.overflowed or self.failed


class RedisHub:
    """One Redis pub/sub connection per process, shared by every stream open in it.

    Each stream used to hold a pub/sub connection of its own: 1,000 open streams were
    1,000 Redis connections, past redis-py's default pool of 100, so streams beyond that
    failed to subscribe and publishes failed with them (bench/live.py). Here a listener
    thread (a greenlet under gevent) reads the one connection and hands each message to
    the local queues of its channel. A channel is subscribed while a stream of this
    process wants it; `subscribe` returns once Redis has confirmed, so that a stream can
    read its replay rows afterwards without a gap. If the connection fails, every local
    stream ends (its client reconnects and replays from the database) and the next
    subscriber connects again. The listener stops when the last stream closes.

    Writes on the connection happen under `lock`; only the listener reads it.
    """

    name = "redis"
    CONFIRM_SECONDS = 5.0
    IDLE_SECONDS = 10.0  # PING after this much silence; a second silence means it is gone

    def __init__(self, url: str, queue_size: int):
        self.pool = redis.ConnectionPool.from_url(
            url, socket_connect_timeout=2, health_check_interval=0
        )
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.connection = None
        self.generation = 0
        self.pid = None
        self.channels: dict[str, set[HubSubscription]] = {}
        self.sent: dict[str, int] = {}  # SUBSCRIBE commands sent, per channel
        self.confirmed: dict[str, int] = {}  # and confirmed by Redis

    def subscribe(self, channel: str) -> HubSubscription:
        """A local subscription to `channel`, live once this returns. Raises RedisError."""
        with self.lock:
            self._start()
            generation = self.generation
            subscription = HubSubscription(self, channel, self.queue_size, generation)
            subscribers = self.channels.setdefault(channel, set())
            subscribers.add(subscription)
            try:
                if len(subscribers) == 1:
                    self.connection.send_command("SUBSCRIBE", channel, check_health=False)
                    self.sent[channel] = self.sent.get(channel, 0) + 1
                wanted = self.sent[channel]
                confirmed = self.changed.wait_for(
                    lambda: (
                        self.generation != generation or self.confirmed.get(channel, 0) >= wanted
                    ),
                    timeout=self.CONFIRM_SECONDS,
                )
                if self.generation != generation:
                    raise redis.ConnectionError("lost Redis while subscribing")
                if not confirmed:
                    raise redis.TimeoutError("Redis did not confirm the subscription")
            except BaseException:
                subscription.closed = True
                self._discard(subscription)
                raise
            return subscription

    def remove(self, subscription: HubSubscription) -> None:
        with self.lock:
            self._discard(subscription)

    def _discard(self, subscription: HubSubscription) -> None:
        if subscription.generation != self.generation:
            return  # its connection is gone, and the channel table with it
        subscribers = self.channels.get(subscription.channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self.channels[subscription.channel]
            try:
                self.connection.send_command(
                    "UNSUBSCRIBE", subscription.channel, check_health=False
                )
            except (redis.RedisError, OSError) as error:
                log.warning("event hub could not unsubscribe: %s", error)

    def _start(self) -> None:
        """Connect and start the listener, unless this process already has them."""
        if self.connection is not None and self.pid == os.getpid():
            return
        if self.pid != os.getpid():  # forked: the parent's connection is not ours
            self.connection = None
            self.channels, self.sent, self.confirmed = {}, {}, {}
        connection = self.pool.make_connection()
        connection.connect()
        self.connection, self.pid = connection, os.getpid()
        self.generation += 1
        threading.Thread(
            target=self._listen, args=(connection,), name="linkmsg-event-hub", daemon=True
        ).start()

    def _listen(self, connection) -> None:
        waiting_for_pong = False
        try:
            while True:
                if not connection.can_read(timeout=self.IDLE_SECONDS):
                    if waiting_for_pong:
                        raise redis.TimeoutError("Redis stopped answering")
                    with self.lock:
                        if connection is not self.connection:
                            return
                        connection.send_command("PING", check_health=False)
                    waiting_for_pong = True
                    continue
                waiting_for_pong = False
                # RESP3 (redis-py's default) sends pub/sub messages as pushes.
                reply = connection.read_response(push_request=True)
                if not isinstance(reply, list) or len(reply) < 3:
                    continue  # the answer to a PING
                kind, channel = reply[0], reply[1].decode()
                if kind == b"message":
                    self._deliver(channel, reply[2])
                elif kind in (b"subscribe", b"unsubscribe"):
                    with self.lock:
                        if kind == b"subscribe":
                            self.confirmed[channel] = self.confirmed.get(channel, 0) + 1
                            self.changed.notify_all()
                        elif not self.channels and connection is self.connection:
                            self._stop(connection)  # the last stream of this process left
                            return
        except Exception as error:  # whatever it was, the streams must not wait on a dead hub
            log.warning("event hub lost Redis: %s", error)
            with self.lock:
                if connection is self.connection:
                    for subscribers in self.channels.values():
                        for subscription in subscribers:
                            subscription.fail()
                    self._stop(connection)

    def _stop(self, connection) -> None:
        """Forget the connection and every channel (call under `lock`)."""
        self.connection = None
        self.channels, self.sent, self.confirmed = {}, {}, {}
        self.generation += 1
        self.changed.notify_all()
        connection.disconnect()

    def _deliver(self, channel: str, data: bytes) -> None:
        try:
            message = Message(**json.loads(data))
        except (ValueError, TypeError) as error:
            log.warning("event hub got a malformed message on %s: %s", channel, error)
            return
        with self.lock:
            subscribers = list(self.channels.get(channel, ()))
        for subscription in subscribers:
            subscription.offer(message)


class RedisBroker:
    """Redis pub/sub, for several workers and hosts: a client (and pool) per app for
    publishing, and one hub per process for the streams."""

    name = "redis"

    def __init__(self, url: str, queue_size: int):
        # A burst of sends waits for a free connection rather than failing with "Too many
        # connections" (redis-py's pools hold 100; a gevent worker may serve far more).
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=100, timeout=5, socket_connect_timeout=2, health_check_interval=30
        )
        self.client = redis.Redis(connection_pool=pool)
        self.hub = RedisHub(url, queue_size)

    def subscribe(self, channel: str) -> HubSubscription:
        return self.hub.subscribe(channel)

    def publish(self, channel: str, message: Message) -> None:
        self.client.publish(channel, json.dumps(message.to_dict()))

    def subscriber_count(self, channel: str) -> int:
        """Subscribed connections in Redis: at most one per process, whatever its streams."""
        return dict(self.client.pubsub_numsub(channel)).get(channel.encode(), 0)


def broker():
    return current_app.extensions[EXTENSION]


# ---------------------------------------------------------------- the blueprint


class MemberEventStream(ServerSentEventsBlueprint):
    """flask-sse's blueprint, made private, replayable and transport-neutral."""

    @property
    def redis(self):
        # flask-sse would build a new client per call; ours is made once per app.
        active = broker()
        if not isinstance(active, RedisBroker):
            raise RuntimeError("no Redis configured: events go through the in-process broker")
        return active.client

    def publish(self, data, type=None, id=None, retry=None, channel="sse"):
        broker().publish(channel, Message(data, type=type, id=id, retry=retry))

    def messages(self, channel="sse"):  # flask-sse's API, on our transport
        subscription = broker().subscribe(channel)
        try:
            while True:
                message = subscription.get(timeout=1.0)
                if message is not None:
                    yield message
        finally:
            subscription.close()

    def stream(self):
        """GET /stream: the logged-in member's events, replayed after Last-Event-ID."""
        if not current_user.is_authenticated:
            return current_app.response_class(
                "Log in to receive events.\n", status=401, mimetype="text/plain"
            )
        from . import live
        from .services import events

        member_id = current_user.id
        config = current_app.config
        after_id = _last_event_id()
        active = broker()
        # Subscribe first, then read the rows: an event committed in between is in both,
        # and the id check below drops the live copy.
        try:
            subscription = active.subscribe(channel_for(member_id))
        except redis.RedisError as error:
            log.warning("event stream could not subscribe: %s", error)
            subscription = None
        replay: list[str] = []
        reload = False
        last_sent = after_id
        if after_id is not None:
            rows = events.since(member_id, after_id)
            if rows is None:
                reload = True
            else:
                for row in rows:
                    replay.append(str(Message(live.render(row), type="update", id=row.id)))
                    last_sent = row.id
        # Nothing below touches the database: give the connection back before streaming.
        db.session.remove()
        keepalive = config["SSE_KEEPALIVE_SECONDS"]
        retry = config["SSE_RETRY_MS"]

        def generate():
            try:
                yield f": open\nretry: {retry}\n\n"
                if reload:
                    yield str(Message(live.RELOAD, type="reload"))
                    return
                yield from replay
                if subscription is None:
                    return  # no transport now: the client reconnects and replays later
                newest = last_sent or 0
                while True:
                    message = subscription.get(timeout=keepalive)
                    if subscription.broken:
                        return
                    if message is None:
                        yield ": keep-alive\n\n"
                        continue
                    if message.id is not None and int(message.id) <= newest:
                        continue  # already replayed
                    newest = int(message.id) if message.id is not None else newest
                    yield str(message)
            finally:
                if subscription is not None:
                    subscription.close()

        response = current_app.response_class(generate(), mimetype="text/event-stream")
        if subscription is not None:
            response.call_on_close(subscription.close)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response


def _last_event_id() -> int | None:
    from .web import parse_id

    return parse_id(request.headers.get("Last-Event-ID") or request.args.get("last_event_id"))


events_bp = MemberEventStream("stream", __name__)
events_bp.add_url_rule("/stream", endpoint="stream", view_func=events_bp.stream)


# ---------------------------------------------------------------- publishing after commit


def publish_events(rows: list[Event]) -> None:
    """Render and publish event rows to their members' channels. Never raises: the rows
    are in the database, and a stream that missed them replays them."""
    from . import live

    active = broker()
    for row in rows:
        try:
            active.publish(
                channel_for(row.member_id), Message(live.render(row), type="update", id=row.id)
            )
        except Exception as error:  # Redis down, a template error: the row stays for replay
            log.warning("could not publish event %s: %s", row.id, error)


@sa_event.listens_for(Session, "after_flush")
def _collect(session, flush_context):
    new_events = [obj for obj in session.new if isinstance(obj, Event)]
    if new_events:
        session.info.setdefault("linkmsg_events", []).extend(new_events)


@sa_event.listens_for(Session, "after_commit")
def _committed(session):
    rows = session.info.pop("linkmsg_events", None)
    if rows:
        # The session cannot run SQL inside after_commit: publish when the request ends.
        pending = g.setdefault("linkmsg_events", [])
        pending.extend(row.id for row in rows)


@sa_event.listens_for(Session, "after_rollback")
def _rolled_back(session):
    session.info.pop("linkmsg_events", None)


def flush_pending() -> None:
    ids = g.pop("linkmsg_events", None)
    if not ids:
        return
    rows = list(db.session.scalars(db.select(Event).where(Event.id.in_(ids)).order_by(Event.id)))
    if has_request_context():
        publish_events(rows)
    else:
        with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
            publish_events(rows)


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL"):
        app.extensions[EXTENSION] = RedisBroker(
            app.config["REDIS_URL"], app.config["SSE_QUEUE_SIZE"]
        )
    else:
        app.extensions[EXTENSION] = MemoryBroker(app.config["SSE_QUEUE_SIZE"])
    app.register_blueprint(events_bp)

    @app.after_request
    def publish_after_request(response):
        flush_pending()
        return response

    @app.teardown_appcontext
    def publish_at_teardown(exc):
        if exc is None and "linkmsg_events" in g:
            try:
                flush_pending()
            finally:
                db.session.remove()
