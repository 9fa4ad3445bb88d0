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
    timeout = Config.REDIS_SOCKET_TIMEOUT
    app = app_factory(
        RATELIMIT_STORAGE_URI=hung_redis.url,
        LOGIN_ACCOUNT_RATE_LIMIT="3 per minute",
        REDIS_SOCKET_TIMEOUT=timeout,
    )
    browser = Browser(app)
    wrong = {
        "email": "ann@example.test",
        "password": "not her password",
        "csrf_token": browser.token(),
    }

    def log_in():
        return browser.client.post("/login", data=wrong)

    # The first request pays the timeout twice: its own call, then Flask-Limiter's check
    # of the store before it counts in memory instead.
    first, seconds = timed(log_in)
    assert first.status_code == 401  # answered, not stalled: the limiter let it through
    assert seconds < 2 * timeout + 1, f"the first request waited {seconds:.1f} s"
    assert hung_redis.held, "the limiter never tried the hung Redis"

    # Redis is known to be gone: the next requests do not wait for it, and the limit
    # still counts, in this process, so a guesser is still stopped. Flask-Limiter
    # re-checks the store 2 s after its first check (then 4, 8 ... s): on a loaded machine
    # one of these requests may be that re-check, and wait the timeout once.
    statuses, waits = [], []
    for _ in range(3):
        response, seconds = timed(log_in)
        statuses.append(response.status_code)
        waits.append(seconds)
    assert statuses == [401, 401, 429]
    assert max(waits) < 2 * timeout, f"a later request waited {max(waits):.1f} s"
    assert sum(seconds >= timeout for seconds in waits) <= 1, waits
