"""Exporting a thread: a ZIP holding the conversation as text and JSON, and its files.

Both sides of the conversation are in it, oldest first, with every attachment byte for
byte under `attachments/`. The archive is written to a temporary file (spooled in memory
while small), files are copied into it in chunks and messages are read in batches, so
large attachments never sit in memory.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO

from ..extensions import db
from ..models import Member, Message, utcnow
from ..storage import get_storage
from . import messaging

BATCH = 500
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class Export:
    file: IO[bytes]  # positioned at the start; the caller closes it
    filename: str


def _archive_name(message_id: int, index: int, name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip(" .") or "file"
    return f"attachments/{message_id}-{index}-{safe[:120]}"


def export_thread(member_id: int, thread_id: int) -> Export:
    """The thread as a ZIP for one of its two members (NotFound for anyone else)."""
    view = messaging.get_thread_for(member_id, thread_id)
    me = db.session.get(Member, member_id)
    members = {me.id: me, view.other.id: view.other}
    exported_at = utcnow()
    storage = get_storage()
    output = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    records = []
    lines = [
        f"Conversation between {me.name} and {view.other.name}",
        f"Exported from LinkMsg on {exported_at:%Y-%m-%d %H:%M} UTC",
        "",
    ]
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        last_id = 0
        while True:
            batch = list(
                db.session.scalars(
                    db.select(Message)
                    .where(Message.thread_id == thread_id, Message.id > last_id)
                    .order_by(Message.id)
                    .limit(BATCH)
                )
            )
            if not batch:
                break
            for message in batch:
                sender = members[message.sender_id]
                files = []
                for index, attachment in enumerate(message.attachments, start=1):
                    path = _archive_name(message.id, index, attachment.name)
                    with (
                        storage.open(attachment.storage_key) as source,
                        archive.open(
                            zipfile.ZipInfo(path, date_time=message.created_at.timetuple()[:6]), "w"
                        ) as target,
                    ):
                        shutil.copyfileobj(source, target, 1024 * 1024)
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
                        "body": message.body,
                        "attachments": files,
                    }
                )
                lines.append(f"[{message.created_at:%Y-%m-%d %H:%M} UTC] {sender.name}:")
                lines.extend(message.body.split("\n") if message.body else [])
                lines.extend(f"  Attachment: {f['name']} ({f['path']})" for f in files)
                lines.append("")
            last_id = batch[-1].id
        document = {
            "thread": {
                "id": view.thread.id,
                "kind": view.thread.kind,
                "members": [{"handle": m.handle, "name": m.name} for m in members.values()],
                "exported_at": exported_at.isoformat() + "Z",
            },
            "messages": records,
        }
        archive.writestr("conversation.txt", "\n".join(lines))
        archive.writestr("conversation.json", json.dumps(document, ensure_ascii=False, indent=2))
    output.seek(0)
    return Export(output, f"linkmsg-conversation-{view.other.handle}.zip")
