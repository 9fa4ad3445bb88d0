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
  GUNICORN_WORKER_CONNECTIONS  open connections per gevent worker (default 2000)
  GUNICORN_THREADS           threads per gthread worker (default 500; one per open stream)
  GUNICORN_TIMEOUT           seconds before a silent worker is restarted (default 30)
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
wait function, and redis-py's sockets are gevent sockets.
"""

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


wsgi_app = "app:app"
bind = os.environ.get("BIND") or "127.0.0.1:8000"

worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"
# An event loop per core; more processes only add memory (and Redis/PostgreSQL clients).
workers = _int("WEB_CONCURRENCY", os.cpu_count() or 1)
# gevent: each worker holds up to this many connections (open streams and requests).
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 2000)
# gthread: a thread per open stream, so as many threads as streams a worker may hold.
threads = _int("GUNICORN_THREADS", 500) if worker_class == "gthread" else 1

timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 10  # open streams do not end by themselves: do not wait long for them
keepalive = 5  # behind a proxy that reuses connections

preload_app = False  # see the docstring: gevent must patch before the app is imported
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"
# Trust X-Forwarded-* from the proxy in front (on the same host by default).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
