"""gunicorn settings for serving LinkMsg in production: `gunicorn -c gunicorn.conf.py`.

Every logged-in page holds one event stream (`GET /stream`) open for as long as it is
shown, so the worker class must hold many idle connections cheaply. gevent does: an
open stream is a greenlet waiting on its queue. Measured with bench/live.py (1,000 open
streams, 2 workers, 2 cores): gevent 30 KiB of server memory per open stream against
61 KiB for gthread (a thread per stream), the same delivery latency within the noise,
and no ceiling of `threads` streams per worker (a gthread worker whose threads all hold
streams serves nothing else).

Settings from the environment:
  BIND                       address to listen on (default 127.0.0.1:8000)
  WEB_CONCURRENCY            worker processes (default: one per CPU core)
  GUNICORN_WORKER_CLASS      gevent (default) or gthread
  GUNICORN_WORKER_CONNECTIONS  open connections per gevent worker (default 10000)
  GUNICORN_BACKLOG           connections waiting to be accepted (default 4096)
  GUNICORN_THREADS           threads per gthread worker (default 500; one per open stream)
  GUNICORN_TIMEOUT           seconds before a silent worker is restarted (default 30)
  GUNICORN_FIRST_REQUEST_WAIT  seconds a new connection may take to send its request
                             (default 30)
  GUNICORN_KEEPALIVE         seconds an idle connection waits for its next request (default 2)
  GUNICORN_MAX_ACCEPT        connections a gevent worker accepts at once (default 100)
  GUNICORN_ACCESS_LOG        "-" for stdout, a path, or unset for none

Streams and the worker timeout: gunicorn's `timeout` is a heartbeat from the worker
process to the master, not a limit on one request. With gevent the heartbeat comes
from the worker's main greenlet, and with gthread from its main thread, while streams
wait in their own greenlets or threads; so a stream stays open for hours, and the
keep-alive comment it writes every SSE_KEEPALIVE_SECONDS (15 s) is what finds a client
that has gone away. (The `sync` worker would kill every stream after `timeout`: never
use it here.)

The app is not preloaded: the gevent worker monkey-patches the standard library before
it imports the app, so psycopg 3 sees the patched `select` and picks its cooperative
wait function, and redis-py's sockets are gevent sockets. (So the hooks below import
linkmsg inside the worker, never at the top of this file, which the master runs.)

The first request of a connection: gunicorn's gevent worker reads every request of a
connection, its first one included, within `keepalive` seconds, and closes the connection
without a word when it does not come. In a reconnect storm the listen queue overflows, and
the kernel drops a client's final handshake packet along with its request; the connection
is completed later by a retransmission, and the request follows a few seconds after that,
on the client's retransmission timer. With 2 s for it, the all-at-once storm of
bench/streams.py ended in 11,202 failed reconnects (closed without an answer, or reset);
with 30 s, in none (bench/README.md, "Storms without a reset"). So a new connection has
`first_request_wait` (30 s) for its request, and an idle one between requests still only
`keepalive` (2 s): a stopping worker waits for its idle connections, and a longer
keep-alive held every restart behind a proxy past `graceful_timeout`.

Accepting in a storm: with more than one worker, gunicorn has each gevent worker accept
one connection per turn of its loop (`max_accept` 1, against gevent's 100). In a storm a
turn runs every request that is ready, so the workers fell behind the arrivals: the
listen queue overflowed (58,963 times in one run, by the kernel's count) and the kernel
reset the connections it had to give up on (1,737 to 2,536 in the storm that honours
`retry:`, exactly its count of failed SYN cookies). The workers keep gevent's batch of 100
(`GUNICORN_MAX_ACCEPT`): no overflow, no reset, and the streams still split evenly
between the workers.

Restarts and reloads: on SIGTERM (a restart, or the old workers of a SIGHUP reload) a
worker stops accepting, finishes the requests in flight and exits. Open streams never
finish by themselves, so the worker ends them at once (`linkmsg.realtime.close_streams`)
and their connections close with them; browsers reconnect to a live worker and replay
what they missed from the event table. The worker then leaves without tearing down the
interpreter. A restart or reload takes about a second with streams open (the gevent
worker's poll; tests/test_restart.py); an idle keep-alive connection of a proxy can hold
it up to `keepalive` seconds more, and a request in flight (a large upload) up to
`graceful_timeout`, after which it is cut.
"""

import gc
import logging
import os
import signal
import sys
import threading


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


wsgi_app = "app:app"
bind = os.environ.get("BIND") or "127.0.0.1:8000"

worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"
# An event loop per core; more processes only add memory (and Redis/PostgreSQL clients).
workers = _int("WEB_CONCURRENCY", os.cpu_count() or 1)
# gevent: each worker holds up to this many connections (open streams and requests). A
# worker at its cap stops accepting and the other workers take the connections; the
# accept order is uneven, so each worker may hold all the streams one host is sized for
# (10,000 on 2 cores: bench/streams.py). An idle greenlet costs a few KiB.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 10000)
# In a reconnect storm thousands of pages reconnect within seconds while both workers are
# busy: with gunicorn's default of 2,048 the listen queue overflowed and some reconnects
# were reset (bench/streams.py, the storm that honours `retry:`: 327 of 10,000; none in
# two runs at 4,096). The kernel caps it at net.core.somaxconn (4,096 on current Linux).
backlog = _int("GUNICORN_BACKLOG", 4096)
# gthread: a thread per open stream, so as many threads as streams a worker may hold.
threads = _int("GUNICORN_THREADS", 500) if worker_class == "gthread" else 1

timeout = _int("GUNICORN_TIMEOUT", 30)
# Streams are ended at once (see the docstring); this bounds requests in flight.
graceful_timeout = 3
# Idle connections a proxy keeps for reuse hold a stopping worker this long at most.
keepalive = _int("GUNICORN_KEEPALIVE", 2)
# The gevent worker: seconds a new connection may take to send its first request, and
# connections accepted at each wake-up (see the docstring).
first_request_wait = max(keepalive, _int("GUNICORN_FIRST_REQUEST_WAIT", 30))
max_accept = max(1, _int("GUNICORN_MAX_ACCEPT", 100))

preload_app = False  # see the docstring: gevent must patch before the app is imported
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"
# Trust X-Forwarded-* from the proxy in front (on the same host by default).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"


def _close_streams(worker) -> None:
    """End every open event stream of this worker now; their clients reconnect and replay."""
    from linkmsg import realtime

    # The master repeats SIGTERM every second until the worker is gone: this runs again
    # then, and ends any stream accepted in between.
    try:
        realtime.close_streams()
    except Exception:  # a worker on its way out: say so, and let it exit anyway
        worker.log.exception("closing the open event streams failed")


def _gevent(worker) -> bool:
    """A gevent worker, whatever named it (this file's setting or `-k` on the command
    line). Its pywsgi kind has its own server and reader, which the hooks below leave be."""
    ggevent = sys.modules.get("gunicorn.workers.ggevent")
    return ggevent is not None and isinstance(worker, ggevent.GeventWorker)


def _first_request_wait(worker, seconds: int) -> None:
    """The worker reads each request within `timeout_ctx()`: a connection's first read
    (its greenlet's first ask) gets `seconds`, later ones `keepalive`."""
    import weakref

    import gevent

    served = weakref.WeakSet()  # the connections' greenlets that have asked once

    def timeout_ctx():
        current = gevent.getcurrent()
        if current in served:
            return gevent.Timeout(worker.cfg.keepalive, False)
        served.add(current)
        return gevent.Timeout(seconds, False)

    worker.timeout_ctx = timeout_ctx


def _accept_at_each_wake_up(count: int) -> None:
    """gunicorn's gevent worker sets its server's `max_accept` to 1 when there are several
    workers; its server class is given one that keeps `count` instead."""
    from gunicorn.workers import ggevent

    class StreamServer(ggevent.StreamServer):
        max_accept = property(lambda self: count, lambda self, value: None)

    ggevent.StreamServer = StreamServer


def post_worker_init(worker) -> None:
    """On SIGTERM, close the streams as well as stop accepting.

    gunicorn's own handler only marks the worker as stopping; it is kept and wrapped.
    Closing runs outside the signal handler (a greenlet, or a thread for gthread), where
    blocking calls are allowed.
    """
    stop, gevent_worker = worker.handle_exit, _gevent(worker)

    def handle_exit(sig, frame):
        stop(sig, frame)
        if gevent_worker:
            import gevent

            gevent.spawn(_close_streams, worker)
        else:
            threading.Thread(target=_close_streams, args=(worker,), daemon=True).start()

    signal.signal(signal.SIGTERM, handle_exit)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn sets it: requests go on
    if gevent_worker:
        _first_request_wait(worker, first_request_wait)
        _accept_at_each_wake_up(max_accept)
    # The app is loaded: its modules, templates' code and mapped classes live as long as
    # the worker. Out of the collector's generations, a full collection no longer walks
    # them in the middle of a request.
    gc.freeze()


def pre_request(worker, req) -> None:
    """An event stream is the last response on its connection: once it ends (closed at a
    restart) the connection closes too, rather than idle as a keep-alive one that holds
    the stopping worker, or carry the client's reconnection back to it."""
    worker.log.debug("%s %s", req.method, req.path)  # gunicorn's own pre_request
    if req.path == "/stream":
        req.must_close = True


def worker_int(worker) -> None:
    """SIGINT/SIGQUIT: the worker exits right after this; its streams end cleanly first."""
    _close_streams(worker)


def worker_abort(worker) -> None:
    """SIGABRT (the worker missed its heartbeat): end the streams before it dies."""
    _close_streams(worker)


def worker_exit(server, worker) -> None:
    """A worker that has finished its last request leaves at once.

    Tearing down the interpreter (every module of the app, under gevent) takes another
    half second that a restart would wait for and that frees nothing the exit does not.
    Database connections are closed properly first and the logs flushed. A worker that
    failed to boot, or crashed, exits the usual way with gunicorn's exit code.
    """
    leaving = sys.exc_info()[1]
    if not worker.booted or not isinstance(leaving, SystemExit) or leaving.code not in (0, None):
        return
    app = getattr(worker, "wsgi", None)
    try:
        from linkmsg.extensions import db

        with app.app_context():
            db.engine.dispose()
    except Exception:
        worker.log.exception("closing the database connections failed")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
