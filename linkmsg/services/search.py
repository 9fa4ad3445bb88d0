"""Searching a member's own messages: bodies, the other member's name, attachment names.

Only threads the member is in and that no block hides are ever searched. PostgreSQL finds
candidates with full-text search over an indexed word vector (`message.search_vector`,
see migration 0008); SQLite, the embedded default, with LIKE. Both sets of candidates are
ranked by one scorer here, so the two databases agree: a whole word beats a word that
only starts with the query, more query words found beat fewer, newer beats older.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sqlalchemy import bindparam, literal_column

from ..extensions import db
from ..models import MESSAGE_TEXT, Attachment, Member, Message, Thread, ThreadMember
from ..text import like_pattern
from . import blocks, groups
from .threads import visible_to

RESULTS = 30  # results shown
CANDIDATES = 60  # candidates ranked per source (the database already put the best first)
MAX_WORDS = 8
MAX_WORD = 50
SNIPPET = 160
_WORD = re.compile(r"[^\W_]+")


def words_of(query: str | None) -> list[str]:
    """The words searched for: letters and digits, folded to lower case, no repeats."""
    found: list[str] = []
    for word in _WORD.findall((query or "").casefold()):
        word = word[:MAX_WORD]
        if word not in found:
            found.append(word)
    return found[:MAX_WORDS]


@dataclass(frozen=True)
class Hit:
    message: Message
    thread_id: int
    kind: str
    other: Member | None  # None in a group
    matched: str  # "message" | "name" | "file"
    snippet: list[tuple[str, bool]]  # pieces of text; True where a query word matched
    files: list[str]  # attachment names that matched
    score: float
    name: str = ""  # the group's name ("Ava, Ben and 3 others"), or the other member's


def search(member_id: int, query: str | None) -> list[Hit]:
    """The member's messages that match every word of the query, best first."""
    words = words_of(query)
    if not words:
        return []
    threads = _readable(member_id)
    candidates: dict[int, set[str]] = {}
    for source, ids in (
        ("message", _body_candidates(threads, words)),
        ("name", _name_candidates(member_id, threads, words)),
        ("file", _file_candidates(threads, words)),
    ):
        for message_id in ids:
            candidates.setdefault(message_id, set()).add(source)
    if not candidates:
        return []
    rows = db.session.execute(
        db.select(Message, Thread.kind, Member)
        .join(Thread, Thread.id == Message.thread_id)
        .join(
            ThreadMember,
            (ThreadMember.thread_id == Message.thread_id) & (ThreadMember.member_id == member_id),
        )
        .outerjoin(Member, Member.id == ThreadMember.other_id)
        .where(Message.id.in_(candidates), Message.kind == MESSAGE_TEXT)
    ).all()
    hits = [
        _hit(message, kind, other, words, candidates[message.id]) for message, kind, other in rows
    ]
    hits = [hit for hit in hits if hit.score > 0]
    hits.sort(key=lambda hit: (-hit.score, -hit.message.id))
    hits = hits[:RESULTS]
    names = _group_names(member_id, {hit.thread_id for hit in hits if hit.other is None})
    return [
        replace(
            hit,
            snippet=snippet(hit.message.body or "", words),
            name=names.get(hit.thread_id) or (hit.other.name if hit.other else ""),
        )
        for hit in hits
    ]


def _group_names(member_id: int, thread_ids: set[int]) -> dict[int, str]:
    """The names of the groups of a page of hits, as the member sees them (two queries)."""
    if not thread_ids:
        return {}
    current = groups.members_of(sorted(thread_ids))
    found = db.session.scalars(db.select(Thread).where(Thread.id.in_(thread_ids)))
    return {t.id: groups.display_name(t, current.get(t.id, []), member_id) for t in found}


def _readable(member_id: int):
    """SQL over Message: what the member may read — their one-to-one threads less those
    a block hides, and in their groups what their spans cover. Every query below stays
    inside."""
    pairs = db.select(ThreadMember.thread_id).where(
        ThreadMember.member_id == member_id,
        ThreadMember.other_id.is_not(None),
        ThreadMember.other_id.not_in(blocks.hidden_member_ids_query(member_id)),
    )
    in_groups = db.select(ThreadMember.thread_id).where(
        ThreadMember.member_id == member_id, ThreadMember.other_id.is_(None)
    )
    return db.or_(
        Message.thread_id.in_(pairs),
        # In a group, what a blocked member wrote shows collapsed: never searched.
        db.and_(
            Message.thread_id.in_(in_groups),
            visible_to(member_id),
            Message.sender_id.not_in(blocks.blocked_ids_query(member_id)),
        ),
    )


def _like(column, word: str):
    return column.ilike(like_pattern(word), escape="\\")


def _body_candidates(threads, words: list[str]) -> list[int]:
    if db.session.get_bind().dialect.name == "postgresql":
        vector = literal_column("message.search_vector")
        prefixes = " & ".join(f"{word}:*" for word in words)
        prefix = db.func.to_tsquery("simple", bindparam("prefix", prefixes))
        exact = db.func.to_tsquery("simple", bindparam("exact", " & ".join(words)))
        # Messages with every word whole come first, then the newest: a cheap test per
        # matching row, where ts_rank() would weigh every row of a long history.
        query = (
            db.select(Message.id)
            .where(threads, vector.op("@@")(prefix))
            .order_by(vector.op("@@")(exact).desc(), Message.id.desc())
        )
    else:
        query = (
            db.select(Message.id)
            .where(threads, *(_like(Message.body, w) for w in words))
            .order_by(Message.id.desc())
        )
    return list(db.session.scalars(query.limit(CANDIDATES)))


def _name_candidates(member_id: int, threads, words: list[str]) -> list[int]:
    """The newest message of each thread whose other member's name has every word."""
    return list(
        db.session.scalars(
            db.select(ThreadMember.last_message_id)
            .join(Member, Member.id == ThreadMember.other_id)
            .join(Message, Message.id == ThreadMember.last_message_id)
            .where(
                threads,
                ThreadMember.member_id == member_id,
                *(_like(Member.name, w) for w in words),
            )
            .distinct()
            .limit(CANDIDATES)
        )
    )


def _file_candidates(threads, words: list[str]) -> list[int]:
    return list(
        db.session.scalars(
            db.select(Attachment.message_id)
            .join(Message, Message.id == Attachment.message_id)
            .where(threads, *(_like(Attachment.name, w) for w in words))
            .distinct()
            .order_by(Attachment.message_id.desc())
            .limit(CANDIDATES)
        )
    )


def _score_text(text: str, words: list[str]) -> tuple[float, int]:
    """(score, words found): 2 for a whole word, 1 for the start of a word, 0.5 inside one."""
    tokens = _WORD.findall(text.casefold())
    score, found = 0.0, 0
    for word in words:
        if word in tokens:
            score, found = score + 2, found + 1
        elif any(token.startswith(word) for token in tokens):
            score, found = score + 1, found + 1
        elif word in text.casefold():
            score, found = score + 0.5, found + 1
    return score, found


def _hit(message: Message, kind: str, other: Member, words: list[str], sources: set[str]) -> Hit:
    body_score, body_found = _score_text(message.body or "", words)
    name_score, name_found = _score_text(other.name, words) if "name" in sources else (0, 0)
    files = [a.name for a in message.attachments if _score_text(a.name, words)[1] == len(words)]
    file_score = max((_score_text(name, words)[0] for name in files), default=0)
    if body_found == len(words):
        matched, score = "message", body_score
    elif name_found == len(words):
        matched, score = "name", name_score
    elif files:
        matched, score = "file", file_score
    else:
        matched, score = "message", 0.0
    return Hit(
        message,
        message.thread_id,
        kind,
        other,
        matched,
        [],  # made for the results shown only
        files,
        score,
    )


def snippet(text: str, words: list[str], width: int = SNIPPET) -> list[tuple[str, bool]]:
    """A window of the text around the first match, cut into (piece, is_match) parts.

    The template escapes every piece and marks the matches: no markup is built here.
    """
    text = " ".join(text.split())
    if not words or not text:
        return [(text[:width], False)] if text else []
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - width // 3)
    window = text[start : start + width]
    pieces: list[tuple[str, bool]] = []
    if start > 0:
        pieces.append(("…", False))
    position = 0
    for match in pattern.finditer(window):
        if match.start() > position:
            pieces.append((window[position : match.start()], False))
        pieces.append((match.group(0), True))
        position = match.end()
    pieces.append((window[position:], False))
    if start + width < len(text):
        pieces.append(("…", False))
    return [piece for piece in pieces if piece[0]]
