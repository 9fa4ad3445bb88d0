"""Publishing: event rows go to their members' channels once their transaction commits.

The HTML of an event is rendered here (`live.render_for`; why here is in `__init__.py`).
Publishing is best effort: a publish that fails leaves the row for the stream's gap
check or the next replay.
"""

from __future__ import annotations

import json
import logging
import time

from flask import current_app, g, has_request_context
from flask_sqlalchemy.session import Session
from flask_sse import Message
from sqlalchemy import event as sa_event

from ..extensions import db
from ..models import Event
from ..services import events
from .transport import broker, channel_for

log = logging.getLogger(__name__)

PAUSE_SECONDS = 5.0  # after a failed publish, skip the transport for this long


# Events rendered, then published in one round trip, this many at a time: a group's 50
# members cost 5 round trips to Redis instead of 50, and the first members need not wait
# for the last one's render.
PUBLISH_CHUNK = 10

SESSION_ENDED_TYPE = "session-ended"  # for the streams only; never sent to a page


def frame(row: Event) -> Message:
    """The SSE frame of an event row for its member: `id:` is the member's event number."""
    from .. import live

    if row.kind == events.SESSION_ENDED:
        return Message(
            json.dumps(row.payload.get("sessions", [])), type=SESSION_ENDED_TYPE, id=row.seq
        )
    return Message(live.render(row), type="update", id=row.seq)


def publish_events(rows: list[Event]) -> None:
    """Render and publish event rows. Never raises: the rows are in the database."""
    active = broker()
    if time.monotonic() < active.paused_until:
        return  # the transport failed a moment ago: streams will fill from the database
    from .. import live

    with live.batch(rows):
        for start in range(0, len(rows), PUBLISH_CHUNK):
            frames = []
            for row in rows[start : start + PUBLISH_CHUNK]:
                try:
                    frames.append((channel_for(row.member_id), frame(row)))
                except Exception as error:  # a template error: the others still go
                    log.warning("could not render event %s: %s", row.id, error)
            try:
                active.publish_many(frames)
            except Exception as error:  # Redis down or hung
                log.warning("could not publish events %s…: %s", rows[start].id, error)
                if _is_transport_error(error):
                    active.paused_until = time.monotonic() + PAUSE_SECONDS
                    return


def _is_transport_error(error: Exception) -> bool:
    import redis

    return isinstance(error, redis.RedisError | OSError)


@sa_event.listens_for(Session, "after_commit")
def _committed(session):
    ids = session.info.pop(events.COMMITTED, None)
    if ids:
        # The session cannot run SQL inside after_commit: publish when the request ends.
        g.setdefault("linkmsg_events", []).extend(ids)


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
