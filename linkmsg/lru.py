"""A bounded store of the most recently used values, for what a process keeps rendered
(linkmsg/list_pane.py, linkmsg/pieces.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict


class Store:
    """The `size` most recently used values of a process (a lock for threaded servers)."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0  # values served from here (for tests and the benchmark)
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key, kept) -> None:
        with self._lock:
            self._entries[key] = kept
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
