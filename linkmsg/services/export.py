"""Exporting a thread: a ZIP holding the conversation as text and JSON, and its files.

Both sides of the conversation are in it, oldest first, with every attachment byte for
byte under `attachments/`. The archive is streamed: it is written into a sink that the
response drains after every megabyte, messages are read in batches and files copied in
chunks, so neither memory nor a temporary file ever holds the thread's attachments.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from ..extensions import db
from ..models import Member, Message, utcnow
from ..storage import get_storage
from . import groups, threads

BATCH = 500
CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class Export:
    chunks: Iterator[bytes]  # the ZIP, produced as it is read (needs the app context)
    filename: str


class _Sink(io.RawIOBase):
    """Where the ZipFile writes: bytes wait here until the response takes them. Not
    seekable, so zipfile writes each entry's sizes after its data."""

    def __init__(self):
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _archive_name(message_id: int, index: int, name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip(" .") or "file"
    return f"attachments/{message_id}-{index}-{safe[:120]}"


def export_thread(member_id: int, thread_id: int) -> Export:
    """The thread as a ZIP for one of its members (NotFound for anyone else, raised
    here, before anything is streamed). From a group, only what the member may read:
    their stretches of it, a blocked member's messages collapsed."""
    view = threads.get_thread_for(member_id, thread_id)
    me = db.session.get(Member, member_id)
    if view.is_group:
        current = groups.members(thread_id)
        heading = f"Group conversation “{groups.display_name(view.thread, current, me.id)}”"
        return Export(
            _zip_chunks(view, me, current, heading),
            f"linkmsg-conversation-group-{thread_id}.zip",
        )
    return Export(
        _zip_chunks(
            view,
            me,
            [me, view.other],
            f"Conversation between {me.name} and {view.other.name}",
        ),
        f"linkmsg-conversation-{view.other.handle}.zip",
    )


def _zip_chunks(view, me: Member, members: list[Member], heading: str) -> Iterator[bytes]:
    thread_id = view.thread.id
    people = {m.id: m for m in members}
    exported_at = utcnow()
    storage = get_storage()
    sink = _Sink()
    records = []
    lines = [heading, f"Exported from LinkMsg on {exported_at:%Y-%m-%d %H:%M} UTC", ""]
    readable = [threads.visible_to(me.id)] if view.is_group else []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        last_id = 0
        while True:
            batch = list(
                db.session.scalars(
                    db.select(Message)
                    .where(Message.thread_id == thread_id, Message.id > last_id, *readable)
                    .order_by(Message.id)
                    .limit(BATCH)
                )
            )
            if not batch:
                break
            cast = groups.cast(me.id, batch) if view.is_group else None
            for message in batch:
                if message.is_system:
                    line = cast.line(message, me.id)
                    records.append(
                        {
                            "id": message.id,
                            "system": line,
                            "sent_at": message.created_at.isoformat() + "Z",
                        }
                    )
                    lines.extend([f"[{message.created_at:%Y-%m-%d %H:%M} UTC] — {line}", ""])
                    continue
                sender = cast.sender(message) if cast else people[message.sender_id]
                collapsed = cast is not None and cast.collapsed(message)
                body = "" if collapsed else message.body
                files = []
                for index, attachment in enumerate(
                    [] if collapsed else message.attachments, start=1
                ):
                    path = _archive_name(message.id, index, attachment.name)
                    entry = zipfile.ZipInfo(path, date_time=message.created_at.timetuple()[:6])
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = attachment.size  # zipfile picks ZIP64 from it
                    with (
                        storage.open(attachment.storage_key) as source,
                        archive.open(entry, "w") as target,
                    ):
                        while chunk := source.read(CHUNK):
                            target.write(chunk)
                            yield sink.take()
                    files.append(
                        {
                            "name": attachment.name,
                            "content_type": attachment.content_type,
                            "size": attachment.size,
                            "sha256": attachment.sha256,
                            "path": path,
                        }
                    )
                records.append(
                    {
                        "id": message.id,
                        "sender": sender.handle,
                        "sender_name": sender.name,
                        "sent_at": message.created_at.isoformat() + "Z",
                        "body": body,
                        "attachments": files,
                        **({"collapsed": True} if collapsed else {}),
                    }
                )
                lines.append(f"[{message.created_at:%Y-%m-%d %H:%M} UTC] {sender.name}:")
                if collapsed:
                    lines.append("A message from someone you blocked")
                lines.extend(body.split("\n") if body else [])
                lines.extend(f"  Attachment: {f['name']} ({f['path']})" for f in files)
                lines.append("")
            last_id = batch[-1].id
        document = {
            "thread": {
                "id": thread_id,
                "kind": view.thread.kind,
                "members": [{"handle": m.handle, "name": m.name} for m in members],
                "exported_at": exported_at.isoformat() + "Z",
            },
            "messages": records,
        }
        archive.writestr("conversation.txt", "\n".join(lines))
        archive.writestr("conversation.json", json.dumps(document, ensure_ascii=False, indent=2))
    yield sink.take()
