"""Transports: how a published event reaches the open streams of its member.

Redis pub/sub when REDIS_URL is set (one pub/sub connection per process, shared by its
streams: `RedisHub`), an in-process fan-out otherwise. Either way each open stream reads
a bounded queue of its own. A transport is a wake-up, not the record: what a stream
sends is checked against the member's event numbers in the database (`stream.py`), so a
message lost or late on the way is noticed and filled, never skipped.

flask-sse's `Message` formats the frames; its blueprint (one pub/sub connection per
stream, no replay) is not used.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading

import redis
from flask import current_app
from flask_sse import Message

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

    def wake(self) -> None:  # pragma: no cover - interface
        """Make a waiting `get` return None now (the stream then checks why)."""
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

    def wake(self) -> None:
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker.remove(self)


class MemoryBroker:
    """In-process fan-out for a single process (`flask run`, tests)."""

    paused_until = 0.0  # publishing skips the transport until then (`publish.py`)

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

    def publish_many(self, items: list[tuple[str, Message]]) -> None:
        for channel, message in items:
            self.publish(channel, message)

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
        self.wake()  # now rather than at its keep-alive

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

    CONFIRM_SECONDS = 5.0
    IDLE_SECONDS = 10.0  # PING after this much silence; a second silence means it is gone

    def __init__(self, url: str, queue_size: int, socket_timeout: float):
        # A Redis that hangs rather than refuses must not hold a subscriber forever.
        self.pool = redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=socket_timeout,
            socket_timeout=max(socket_timeout, 1.0),
            health_check_interval=0,
        )
        self.queue_size = queue_size
        self.lock = threading.Lock()
        # Subscribers waiting for Redis to confirm, per channel: a confirmation wakes the
        # waiters of its channel only (one condition for all woke every waiter at each
        # confirmation: quadratic in a reconnect storm of thousands of streams).
        self.waiting: dict[str, list] = {}  # channel -> [Condition on lock, waiters]
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
                confirmed = self._wait_confirmed(channel, generation, wanted)
                if self.generation != generation:
                    raise redis.ConnectionError("lost Redis while subscribing")
                if not confirmed:
                    raise redis.TimeoutError("Redis did not confirm the subscription")
            except BaseException:
                subscription.closed = True
                self._discard(subscription)
                raise
            return subscription

    def _wait_confirmed(self, channel: str, generation: int, wanted: int) -> bool:
        """Wait (under `lock`) until Redis has confirmed `wanted` SUBSCRIBEs of `channel`
        or the connection is gone. False on a timeout."""
        waiting = self.waiting.setdefault(channel, [threading.Condition(self.lock), 0])
        waiting[1] += 1
        try:
            return waiting[0].wait_for(
                lambda: self.generation != generation or self.confirmed.get(channel, 0) >= wanted,
                timeout=self.CONFIRM_SECONDS,
            )
        finally:
            waiting[1] -= 1
            if not waiting[1] and self.waiting.get(channel) is waiting:
                del self.waiting[channel]

    def _notify(self, channel: str | None = None) -> None:
        """Wake the subscribers waiting on `channel`, or all of them (under `lock`)."""
        for name in [channel] if channel is not None else list(self.waiting):
            waiting = self.waiting.get(name)
            if waiting is not None:
                waiting[0].notify_all()

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
            self.channels, self.sent, self.confirmed, self.waiting = {}, {}, {}, {}
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
                            self._notify(channel)
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
        self._notify()
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

    paused_until = 0.0  # publishing skips the transport until then (`publish.py`)

    def __init__(self, url: str, queue_size: int, socket_timeout: float):
        # A burst of sends waits for a free connection rather than failing with "Too many
        # connections" (redis-py's pools hold 100; a gevent worker may serve far more).
        # A hung Redis costs a send at most `socket_timeout`, then publishing pauses
        # (`publish.py`) and the events arrive by replay.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=100,
            timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            socket_timeout=socket_timeout,
            health_check_interval=30,
        )
        self.client = redis.Redis(connection_pool=pool)
        self.hub = RedisHub(url, queue_size, socket_timeout)

    def subscribe(self, channel: str) -> HubSubscription:
        return self.hub.subscribe(channel)

    def publish(self, channel: str, message: Message) -> None:
        self.client.publish(channel, json.dumps(message.to_dict()))

    def publish_many(self, items: list[tuple[str, Message]]) -> None:
        """Several messages in one round trip (a pipeline, not a transaction): a message
        to a group is an event for each member."""
        with self.client.pipeline(transaction=False) as pipe:
            for channel, message in items:
                pipe.publish(channel, json.dumps(message.to_dict()))
            pipe.execute()

    def subscriber_count(self, channel: str) -> int:
        """Subscribed connections in Redis: at most one per process, whatever its streams."""
        return dict(self.client.pubsub_numsub(channel)).get(channel.encode(), 0)


def broker():
    return current_app.extensions[EXTENSION]
