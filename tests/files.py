"""Real files of every kind, made on the spot, for upload tests."""

from __future__ import annotations

import io
import shutil
import zipfile

from PIL import Image


def image(fmt: str, size=(64, 48), color=(10, 102, 194)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(out, "PDF")
    return out.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/></Types>'
)


def ooxml(kind: str) -> bytes:
    """A minimal Office Open XML package: docx, xlsx or pptx."""
    part = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml", "pptx": "ppt/presentation.xml"}[
        kind
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        archive.writestr(part, '<?xml version="1.0"?><root/>')
    return out.getvalue()


def executable() -> bytes:
    with open(shutil.which("true") or "/bin/true", "rb") as handle:
        return handle.read()


ALLOWED = {
    "photo.png": (lambda: image("PNG"), "image/png"),
    "photo.jpg": (lambda: image("JPEG"), "image/jpeg"),
    "anim.gif": (lambda: image("GIF"), "image/gif"),
    "pic.webp": (lambda: image("WEBP"), "image/webp"),
    "report.pdf": (pdf, "application/pdf"),
    "letter.docx": (
        lambda: ooxml("docx"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "budget.xlsx": (
        lambda: ooxml("xlsx"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "deck.pptx": (
        lambda: ooxml("pptx"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    "notes.txt": (lambda: "Plain notes\nwith ünïcödé\n".encode(), "text/plain"),
    "table.csv": (lambda: b"name,role\nAnn,Recruiter\n", "text/csv"),
}

REFUSED = {
    "page.png": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
    "logo.svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
    "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "tool.exe": None,  # filled with a real executable
    "archive.zip": None,  # a zip that is no Office document
    "fake.docx": b"PK\x03\x04 not really a zip",
}


def refused(name: str) -> bytes:
    if name == "tool.exe":
        return executable()
    if name == "archive.zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("hello.txt", "hi")
        return out.getvalue()
    return REFUSED[name]
