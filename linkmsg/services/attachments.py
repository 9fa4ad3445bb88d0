"""Attachments: what may be sent (decided from the content), storing, thumbnails.

A message may carry up to 10 files of at most 100 MB each: images (PNG, JPEG, GIF, WebP)
and documents (PDF, DOCX, XLSX, PPTX, TXT, CSV). The type comes from the bytes; a file
whose name says otherwise, or whose type is not on the list, is refused.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

import filetype
from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from ..extensions import db
from ..models import Attachment
from ..storage import StorageFull, TooLarge, get_storage
from .errors import CouldNotStore, ValidationFailed

log = logging.getLogger(__name__)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# content type -> (file name endings it may have, what a member calls it)
ALLOWED = {
    "image/png": ((".png",), "PNG image"),
    "image/jpeg": ((".jpg", ".jpeg"), "JPEG image"),
    "image/gif": ((".gif",), "GIF image"),
    "image/webp": ((".webp",), "WebP image"),
    "application/pdf": ((".pdf",), "PDF"),
    DOCX: ((".docx",), "Word document"),
    XLSX: ((".xlsx",), "Excel spreadsheet"),
    PPTX: ((".pptx",), "PowerPoint presentation"),
    "text/plain": ((".txt",), "text file"),
    "text/csv": ((".csv",), "CSV file"),
}
ACCEPT = ",".join(ext for exts, _ in ALLOWED.values() for ext in exts)
ALLOWED_SENTENCE = (
    "LinkMsg accepts images (PNG, JPEG, GIF, WebP), PDF, Word, Excel and PowerPoint "
    "files, and text and CSV files."
)
_OOXML = {"word/document.xml": DOCX, "xl/workbook.xml": XLSX, "ppt/presentation.xml": PPTX}
_MARKUP = (b"<html", b"<svg", b"<script", b"<!doctype", b"<?xml", b"<body", b"<iframe", b"<head")
THUMB_SIZE = (360, 360)


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: the member's name for it and a readable stream."""

    filename: str
    stream: BinaryIO


@dataclass(frozen=True)
class Prepared:
    """A checked, stored file waiting for its message."""

    key: str
    name: str
    content_type: str
    size: int
    sha256: str
    thumb_key: str | None = None
    width: int | None = None
    height: int | None = None


def display_name(filename: str | None) -> str:
    """The member's file name, safe to show and to offer as a download name."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        return "file"
    if len(name) > 200:
        stem, ext = os.path.splitext(name)
        name = stem[: 200 - len(ext)] + ext
    return name


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size} bytes"


def label(content_type: str) -> str:
    return ALLOWED.get(content_type, ((), "file"))[1]


def sniff(stream: BinaryIO) -> str | None:
    """The content type the bytes show, from the allowed list, or None."""
    stream.seek(0)
    head = stream.read(65536)
    stream.seek(0)
    if not head:
        return None
    kind = filetype.guess(head)
    if kind is not None and kind.mime in (
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
    ):
        return kind.mime
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        finally:
            stream.seek(0)
        if "[Content_Types].xml" in names:
            for marker, mime in _OOXML.items():
                if marker in names:
                    return mime
        return None
    if kind is not None or b"\x00" in head:
        return None  # a binary format that is not on the list (executables included)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    start = head.lstrip().lower()[:2048]
    if start.startswith(b"<") and any(tag in start for tag in _MARKUP):
        return None  # HTML, SVG or XML: never served back as a document
    return "text/plain"


def _check(name: str, detected: str | None) -> str:
    """The content type to store, or a ValidationFailed naming the problem."""
    ext = os.path.splitext(name)[1].lower()
    if detected is None:
        raise ValidationFailed(
            f"“{name}” is not a file type LinkMsg accepts. {ALLOWED_SENTENCE}", field="files"
        )
    if detected == "text/plain" and ext == ".csv":
        detected = "text/csv"
    endings, what = ALLOWED[detected]
    if ext not in endings:
        raise ValidationFailed(
            f"“{name}” does not contain what its name says: "
            f"it is a {what}, not a {ext or 'file without a type'} file.",
            field="files",
        )
    return detected


def _thumbnail(
    stream: BinaryIO, name: str, size=THUMB_SIZE, *, crop: bool = False
) -> tuple[str, int, int]:
    """A small WebP of the first frame, made once. Its cost is bounded before any pixel is
    decoded: the header's size is checked against MAX_IMAGE_PIXELS, a JPEG is decoded
    straight at 1/2, 1/4 or 1/8 scale, and the picture is shrunk before it is turned
    upright (so no full-size copy is ever made)."""
    storage = get_storage()
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow's own limit is far above ours, which is checked before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                width, height = image.size
                image.draft("RGB", size)
                _check_pixels(name, (width, height), image.size)
                if crop:
                    image = ImageOps.fit(image, size)
                else:
                    image.thumbnail(size)
                image = ImageOps.exif_transpose(image)
                image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
                out = io.BytesIO()
                image.save(out, "WEBP", quality=80)
    except Image.DecompressionBombError:
        raise ValidationFailed(_too_many_pixels(name), field="files") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ValidationFailed(f"“{name}” could not be read as an image.", field="files") from None
    out.seek(0)
    stored = storage.save(out, limit=10 * 1024 * 1024, suffix=".webp")
    return stored.key, width, height


# A JPEG decoded at 1/8 scale still reads every coefficient: its full size is bounded too.
JPEG_DRAFT_ALLOWANCE = 4


def _check_pixels(name: str, full: tuple[int, int], decoded: tuple[int, int]) -> None:
    """Refuse an image whose decoding would cost more than MAX_IMAGE_PIXELS allow.

    `decoded` is the size the decoder will produce (smaller than `full` for a JPEG
    drafted to scale); about 4 bytes of memory and a few nanoseconds each."""
    limit = current_app.config["MAX_IMAGE_PIXELS"]
    if decoded[0] * decoded[1] > limit or full[0] * full[1] > limit * JPEG_DRAFT_ALLOWANCE:
        raise ValidationFailed(_too_many_pixels(name, full), field="files")


def _too_many_pixels(name: str, full: tuple[int, int] | None = None) -> str:
    megapixels = current_app.config["MAX_IMAGE_PIXELS"] / 1_000_000
    shown = f" ({full[0]:,} × {full[1]:,} pixels)" if full else ""
    return (
        f"“{name}” is too large an image to process{shown}: the most is "
        f"{megapixels:g} megapixels, or {megapixels * JPEG_DRAFT_ALLOWANCE:g} for a JPEG."
    )


def prepare(uploads: list[Upload]) -> list[Prepared]:
    """Check and store every upload. All or nothing: on any refusal nothing is kept.

    Raises ValidationFailed (field "files") with a sentence naming the file and why.
    """
    config = current_app.config
    uploads = [u for u in uploads if u.filename]
    if len(uploads) > config["MAX_ATTACHMENTS_PER_MESSAGE"]:
        raise ValidationFailed(
            f"You can attach at most {config['MAX_ATTACHMENTS_PER_MESSAGE']} files to a message.",
            field="files",
        )
    limit = config["MAX_ATTACHMENT_BYTES"]
    storage = get_storage()
    prepared: list[Prepared] = []
    try:
        for upload in uploads:
            name = display_name(upload.filename)
            try:
                stored = storage.save(upload.stream, limit=limit)
            except TooLarge:
                raise ValidationFailed(
                    f"“{name}” is larger than {human_size(limit)}, the most an attachment can be.",
                    field="files",
                ) from None
            item = Prepared(stored.key, name, "", stored.size, stored.sha256)
            prepared.append(item)
            if stored.size == 0:
                raise ValidationFailed(f"“{name}” is empty.", field="files")
            with storage.open(stored.key) as saved:
                content_type = _check(name, sniff(saved))
                thumb = _thumbnail(saved, name) if content_type.startswith("image/") else None
            prepared[-1] = Prepared(
                stored.key,
                name,
                content_type,
                stored.size,
                stored.sha256,
                *(thumb or (None, None, None)),
            )
    except StorageFull as error:
        discard(prepared)
        raise not_stored(error, "files") from None
    except BaseException:
        discard(prepared)
        raise
    return prepared


NOT_STORED = {
    "files": "Your file could not be stored: LinkMsg has run out of storage space. "
    "Your message was not sent; please try again later.",
    "avatar": "Your picture could not be stored: LinkMsg has run out of storage space. "
    "Nothing was changed; please try again later.",
}


def not_stored(error: StorageFull, field: str) -> CouldNotStore:
    """The member's sentence for a full disk; the operator's log line, written once here."""
    log.error("upload not stored, no space left: %s", error)
    return CouldNotStore(NOT_STORED[field], field=field)


def discard(prepared: list[Prepared]) -> None:
    """Remove stored files whose message was never saved."""
    storage = get_storage()
    for item in prepared:
        storage.delete(item.key)
        if item.thumb_key:
            storage.delete(item.thumb_key)


def attach(message_id: int, prepared: list[Prepared]) -> None:
    """Add the attachment rows to the current transaction."""
    for item in prepared:
        db.session.add(
            Attachment(
                message_id=message_id,
                storage_key=item.key,
                name=item.name,
                content_type=item.content_type,
                size=item.size,
                sha256=item.sha256,
                thumb_key=item.thumb_key,
                width=item.width,
                height=item.height,
            )
        )


AVATAR_SIZE = (192, 192)
AVATAR_MAX_BYTES = 10 * 1024 * 1024


def store_avatar(upload: Upload) -> str:
    """Check an avatar image and store a square WebP of it. Returns its storage key.

    Raises ValidationFailed (field "avatar") for anything but a PNG, JPEG, GIF or WebP
    image of at most 10 MB; the original is not kept.
    """
    storage = get_storage()
    name = display_name(upload.filename)
    try:
        stored = storage.save(upload.stream, limit=AVATAR_MAX_BYTES)
    except TooLarge:
        raise ValidationFailed(f"“{name}” is larger than 10 MB.", field="avatar") from None
    except StorageFull as error:
        raise not_stored(error, "avatar") from None
    try:
        with storage.open(stored.key) as saved:
            content_type = _check(name, sniff(saved))
            if not content_type.startswith("image/"):
                raise ValidationFailed("Choose a PNG, JPEG, GIF or WebP picture.", field="avatar")
            key, _, _ = _thumbnail(saved, name, AVATAR_SIZE, crop=True)
    except ValidationFailed as error:
        raise ValidationFailed(error.message, field="avatar") from None
    except StorageFull as error:
        raise not_stored(error, "avatar") from None
    finally:
        storage.delete(stored.key)
    return key
