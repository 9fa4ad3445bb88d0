"""Where attachment bytes live. Local disk now; an object store would implement the same
four methods (and `local_path` returning None, so downloads stream instead)."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from flask import current_app

CHUNK = 1024 * 1024


class TooLarge(Exception):
    """The stream ran past the size limit; nothing was kept."""


class StorageFull(Exception):
    """No room left (disk full or quota reached); nothing was kept."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


class Storage(Protocol):
    def save(self, stream: BinaryIO, *, limit: int, suffix: str = "") -> Stored: ...
    def open(self, key: str) -> BinaryIO: ...
    def local_path(self, key: str) -> str | None: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under one folder, in random two-level directories, under random names."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(os.path.join(self.root, "tmp"), exist_ok=True)

    def _path(self, key: str) -> str:
        path = os.path.abspath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep) or ".." in key.split("/"):
            raise ValueError("bad storage key")
        return path

    def save(self, stream: BinaryIO, *, limit: int, suffix: str = "") -> Stored:
        """Copy a stream in 1 MB chunks, hashing as it goes; never more than `limit` bytes.

        Raises TooLarge when the stream is longer and StorageFull when the disk is; either
        way nothing is kept.
        """
        try:
            return self._save(stream, limit=limit, suffix=suffix)
        except OSError as error:
            if error.errno in NO_SPACE:
                raise StorageFull(str(error)) from error
            raise

    def _save(self, stream: BinaryIO, *, limit: int, suffix: str) -> Stored:
        key = f"{secrets.token_hex(1)}/{secrets.token_hex(1)}/{secrets.token_hex(16)}{suffix}"
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=os.path.join(self.root, "tmp"))
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge()
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return Stored(key, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass


def get_storage() -> Storage:
    app = current_app._get_current_object()
    storage = app.extensions.get("linkmsg.storage")
    if storage is None:
        storage = app.extensions["linkmsg.storage"] = LocalStorage(app.config["UPLOAD_FOLDER"])
    return storage
