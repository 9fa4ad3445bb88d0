"""Rendering member-written text: escaped, newlines kept, web links made clickable."""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape

# http(s) URLs and bare www. addresses; nothing else (no javascript:, data:, ...).
_URL_RE = re.compile(r"(?i)\b(https?://[^\s<>\"']+|www\.[^\s<>\"']+)")
_TRAILING = ".,;:!?)]}'\""

# Letters and marks that draw nothing, though Unicode does not file them under spaces or
# format characters: Hangul fillers, the braille blank, the combining grapheme joiner.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str | None) -> bool:
    """True when `text` shows nothing: only whitespace, format characters (zero-width
    space and joiners, word joiner, BOM, bidirectional marks…), controls and fillers."""
    return all(
        ch.isspace()
        or ch in _INVISIBLE
        or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")
        for ch in text or ""
    )


def normalise_newlines(text: str | None) -> str:
    """Member-written text with every line ending as \\n (browsers send \\r\\n)."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def join_and(items: list[str]) -> str:
    """Words joined as a sentence joins them: a; a and b; a, b and c."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def like_pattern(word: str) -> str:
    """A LIKE pattern that finds `word` anywhere, its % and _ taken literally (use it with
    escape="\\")."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def short_duration(seconds: float) -> str:
    """How long, in the unit a glance needs: 12m, 3h, 2d."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        return f"{hours}h"
    return f"{hours // 24}d"


def linkify(text: str | None) -> Markup:
    """Escape `text` and turn http(s) and www. addresses into nofollow links."""
    text = text or ""
    out: list[str] = []
    position = 0
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        trail = ""
        while url and url[-1] in _TRAILING:
            # Keep a closing bracket that belongs to the URL, e.g. wiki links.
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            trail = url[-1] + trail
            url = url[:-1]
        out.append(str(escape(text[position : match.start()])))
        href = url if url.lower().startswith(("http://", "https://")) else "https://" + url
        out.append(
            f'<a href="{escape(href)}" rel="nofollow noopener" target="_blank">{escape(url)}</a>'
        )
        out.append(str(escape(trail)))
        position = match.end()
    out.append(str(escape(text[position:])))
    return Markup("".join(out))
