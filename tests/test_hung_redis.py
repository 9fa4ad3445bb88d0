"""A hung Redis (it accepts connections and never answers) must not stall requests: the
rate limiter's Redis client gives up after REDIS_SOCKET_TIMEOUT, members get through, and
the limits go on counting in the process until Redis answers again."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from linkmsg.config import Config

from .factories import Browser


class HungRedis:
    """A TCP server that accepts every connection and never says a word."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.server.close()
        for connection in self.held:
            connection.close()
        self.thread.join(timeout=5)


@pytest.fixture
def hung_redis():
    server = HungRedis()
    yield server
    server.close()


def timed(call, limit: float = 10.0):
    """The call's result and how long it took; a call still waiting after `limit` seconds
    fails the test instead of hanging it."""
    done = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: done.append(call()), daemon=True)
    worker.start()
    worker.join(limit)
    assert done, f"no answer after {limit:.0f} s: the request hangs on Redis"
    return done[0], time.monotonic() - started


def test_the_default_redis_timeout_is_short():
    assert Config.REDIS_SOCKET_TIMEOUT == 1.0


def test_a_hung_rate_limit_store_does_not_stall_requests(app_factory, hung_redis):
    app = app_factory(
        RATELIMIT_STORAGE_URI=hung_redis.url,
        LOGIN_ACCOUNT_RATE_LIMIT="3 per minute",
        REDIS_SOCKET_TIMEOUT=Config.REDIS_SOCKET_TIMEOUT,
    )
    browser = Browser(app)
    wrong = {"email": "ann@example.test", "password": "not her password"}

    # The first request pays the timeout twice: its own call, then Flask-Limiter's check
    # of the store before it counts in memory instead.
    first, seconds = timed(lambda: browser.post("/login", wrong))
    assert first.status_code == 401  # answered, not stalled: the limiter let it through
    assert seconds < 3, f"the first request waited {seconds:.1f} s for a hung Redis"
    assert hung_redis.held, "the limiter never tried the hung Redis"

    # Redis is known to be gone: the next requests do not wait for it at all, and the
    # limit still counts (in this process) so a guesser is still stopped.
    statuses = []
    for _ in range(3):
        response, seconds = timed(lambda: browser.post("/login", wrong))
        assert seconds < 0.5, f"a later request waited {seconds:.1f} s for a hung Redis"
        statuses.append(response.status_code)
    assert statuses == [401, 401, 429]
