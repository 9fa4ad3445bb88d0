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
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from ..extensions import db
from ..models import MESSAGE_TEXT, Member, Message, utcnow
from ..storage import get_storage
from . import blocks, groups, threads

BATCH = 500
CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9]+")
COLLAPSED = "A message from someone you blocked"


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
    here, before anything is streamed). A group's ZIP holds what the member may read:
    their spans, with the system lines; a message from someone they blocked is there
    as it shows to them, collapsed, without its body or files."""
    view = threads.get_thread_for(member_id, thread_id)
    me = db.session.get(Member, member_id)
    if not view.is_group:
        members = {me.id: me, view.other.id: view.other}
        return Export(
            _zip_chunks(view, me, members, f"Conversation between {me.name} and {view.other.name}"),
            f"linkmsg-conversation-{view.other.handle}.zip",
        )
    current = groups.members(thread_id)
    name = groups.display_name(view.thread, current, member_id)
    members = {m.id: m for m in current} | {me.id: me}
    return Export(
        _zip_chunks(view, me, members, f"Group conversation: {name}"),
        f"linkmsg-group-{_file_part(name)}.zip",
    )


def _file_part(name: str) -> str:
    """A group's name as part of a file name: ASCII letters (accents dropped), digits
    and dashes; never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "-".join(_UNSAFE_NAME.sub(" ", ascii_name).split())[:60].strip("-") or "conversation"


def _readable_batches(view, me: Member) -> Iterator[list[Message]]:
    """The thread's messages the member may read, oldest first, in batches."""
    query = db.select(Message).where(Message.thread_id == view.thread.id)
    if view.is_group:
        query = query.where(threads.visible_to(me.id))
    last_id = 0
    while batch := list(
        db.session.scalars(query.where(Message.id > last_id).order_by(Message.id).limit(BATCH))
    ):
        yield batch
        last_id = batch[-1].id


def _people(members: dict[int, Member], batch: list[Message]) -> None:
    """Load into `members` whoever in this batch sent a message or had one done to them
    (former members of a group included)."""
    wanted = {m.sender_id for m in batch} | {m.subject_id for m in batch if m.subject_id}
    missing = wanted - members.keys()
    if missing:
        members.update(
            (m.id, m) for m in db.session.scalars(db.select(Member).where(Member.id.in_(missing)))
        )


def _zip_chunks(view, me: Member, members: dict[int, Member], title: str) -> Iterator[bytes]:
    thread_id = view.thread.id
    exported_at = utcnow()
    storage = get_storage()
    sink = _Sink()
    records = []
    lines = [title, f"Exported from LinkMsg on {exported_at:%Y-%m-%d %H:%M} UTC", ""]
    listed = list(members.values())  # the conversation's members now, before senders join
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for batch in _readable_batches(view, me):
            _people(members, batch)
            blocked = set()
            if view.is_group:
                blocked = blocks.blocked_by(me.id, {m.sender_id for m in batch})
            for message in batch:
                sender = members[message.sender_id]
                when = f"[{message.created_at:%Y-%m-%d %H:%M} UTC]"
                record = {
                    "id": message.id,
                    "sender": sender.handle,
                    "sender_name": sender.name,
                    "sent_at": message.created_at.isoformat() + "Z",
                }
                if message.is_system:
                    # As the group's page says it, in the third person throughout.
                    sentence = groups.system_line(message, members, None)
                    records.append({**record, "kind": message.kind, "line": sentence})
                    lines += [f"{when} {sentence}", ""]
                    continue
                if message.sender_id in blocked and message.kind == MESSAGE_TEXT:
                    records.append({**record, "body": None, "collapsed": True, "attachments": []})
                    lines += [f"{when} {COLLAPSED}", ""]
                    continue
                files = []
                for index, attachment in enumerate(message.attachments, start=1):
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
                records.append({**record, "body": message.body, "attachments": files})
                lines.append(f"{when} {sender.name}:")
                lines.extend(message.body.split("\n") if message.body else [])
                lines.extend(f"  Attachment: {f['name']} ({f['path']})" for f in files)
                lines.append("")
        document = {
            "thread": {
                "id": thread_id,
                "kind": view.thread.kind,
                "members": [{"handle": m.handle, "name": m.name} for m in listed],
                "exported_at": exported_at.isoformat() + "Z",
            },
            "messages": records,
        }
        archive.writestr("conversation.txt", "\n".join(lines))
        archive.writestr("conversation.json", json.dumps(document, ensure_ascii=False, indent=2))
    yield sink.take()
