"""Live delivery: one private, replayable event stream per member.

- `transport`: how a published event reaches the open streams (Redis pub/sub or an
  in-process fan-out);
- `publish`: event rows rendered and published once their transaction commits;
- `stream`: GET /stream, which checks every message against the member's event numbers
  and fills gaps from the database, so nothing is dropped or doubled.

The trade-off, stated once: live HTML is rendered in the request of whoever caused the
event, so that an open stream holds no database connection while it waits; a stream
reads the database only to replay, to fill a gap, and once per keep-alive (the streams'
keep-alive checks batched into one query).
"""

from __future__ import annotations

from flask import Flask

from .publish import flush_pending
from .stream import OPENING, REGISTRY, Registry, bp, close_streams, opening_gate, registry
from .transport import EXTENSION, MemoryBroker, RedisBroker, broker, channel_for

__all__ = ["broker", "channel_for", "close_streams", "init_app", "registry"]


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL"):
        app.extensions[EXTENSION] = RedisBroker(
            app.config["REDIS_URL"],
            app.config["SSE_QUEUE_SIZE"],
            app.config["REDIS_SOCKET_TIMEOUT"],
        )
    else:
        app.extensions[EXTENSION] = MemoryBroker(app.config["SSE_QUEUE_SIZE"])
    app.extensions[REGISTRY] = Registry()
    app.extensions[OPENING] = opening_gate(app)
    app.register_blueprint(bp)

    @app.after_request
    def publish_after_request(response):
        flush_pending()
        return response

    @app.teardown_appcontext
    def publish_at_teardown(exc):
        from flask import g

        from ..extensions import db

        if exc is None and "linkmsg_events" in g:
            try:
                flush_pending()
            finally:
                db.session.remove()
