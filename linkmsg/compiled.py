"""SQLAlchemy's cache of compiled statements, found by the statement's own key object.

SQLAlchemy looks a statement's compiled form up in a dict under a new tuple built for
every execution: (dialect, the statement's cache key, its column keys, two flags). The
cache key is a tree of tuples spelling the whole statement, and Python does not keep a
tuple's hash, so each lookup hashed the whole tree again: 4,177 nodes for the session
loader's statement, ~0.1-0.2 ms of every request for it alone (`bench/README.md`).

A statement built once and kept (the loader's, the thread view's, a search's shape)
gives the same cache key object every time: SQLAlchemy memoizes it on the statement.
`IdentityCache` answers such a lookup by that object's identity first, and falls back to
the full lookup (hash and compare) for anything else. The identity map holds the key
objects it answers for, so an id is never taken by another object while it is in there;
it is bounded, and emptied when full (a statement built per request adds one entry).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.util import LRUCache

# As SQLAlchemy's own default (create_engine's query_cache_size).
ENTRIES = 500
# Statements kept by identity: a page runs a few; a full map is emptied and refills.
BY_IDENTITY = 256


class IdentityCache:
    """A compiled cache for `create_engine(execution_options={"compiled_cache": ...})`:
    SQLAlchemy calls only `get` and `__setitem__` on it."""

    def __init__(self, entries: int = ENTRIES, by_identity: int = BY_IDENTITY):
        self.entries = LRUCache(entries)
        self.by_identity: dict[tuple, tuple[Any, Any]] = {}
        self.most = by_identity

    @staticmethod
    def _short(key) -> tuple | None:
        """The lookup key with the statement's tree replaced by its identity, or None for
        a key not of SQLAlchemy's shape."""
        if type(key) is tuple and len(key) == 5:
            dialect, tree, columns, translate, many = key
            return (id(dialect), id(tree), columns, translate, many)
        return None

    def _remember(self, short: tuple, key: tuple, compiled) -> None:
        if len(self.by_identity) >= self.most:
            self.by_identity.clear()
        # The key itself is kept with the answer: its parts cannot die and lend their ids.
        self.by_identity[short] = (key, compiled)

    def get(self, key, default=None):
        short = self._short(key)
        if short is not None:
            found = self.by_identity.get(short)
            if found is not None and found[0][0] is key[0] and found[0][1] is key[1]:
                return found[1]
        compiled = self.entries.get(key)
        if compiled is None:
            return default
        if short is not None:
            self._remember(short, key, compiled)
        return compiled

    def __setitem__(self, key, compiled) -> None:
        self.entries[key] = compiled
        short = self._short(key)
        if short is not None:
            self._remember(short, key, compiled)

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.by_identity.clear()
