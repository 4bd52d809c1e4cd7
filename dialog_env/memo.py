"""A bounded, thread-safe memo of a pure function's results, off until switched on.

The LM voice (``dialog_env.lm.voice.remember_turns``) and the chat reward model
(``dialog_env.tasks.chat.reward_model.remember_scores``) each keep one: ``dialog-bench
run`` switches them on for the whole run, so the replay that verifies episodes just played
reads what the play computed, and baselines that meet the same turns share them. Off,
``get`` always misses and ``put`` keeps nothing, so tests of
determinism and benchmarks of the work see every computation.

>>> memo = Memo(size=2)
>>> memo.put(key("a"), 1); memo.get(key("a"), None)  # off: nothing is kept
>>> memo.switch(True)
False
>>> memo.put(key("a"), 1); memo.put(key("b"), 2); memo.put(key("c"), 3)
>>> memo.get(key("a"), "miss"), memo.get(key("c"), "miss"), len(memo)  # oldest went first
('miss', 3, 2)
>>> memo.switch(False), len(memo)  # switching off forgets
(True, 0)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

__all__ = ["Memo", "key"]


def key(*parts: Any) -> bytes:
    """A 16-byte key of ``parts`` (anything with a faithful ``repr``: str, int, bytes)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()


class Memo:
    """At most ``size`` results, the least recently used dropped first; off until
    :meth:`switch` turns it on (or made ``on``)."""

    def __init__(self, size: int, on: bool = False):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.on = bool(on)
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def switch(self, on: bool) -> bool:
        """Turn the memo on or off (off forgets what it held); returns whether it was on."""
        before, self.on = self.on, bool(on)
        if not on:
            with self._lock:
                self._items.clear()
        return before

    def get(self, key: bytes, default: Any) -> Any:
        """The result kept under ``key``, or ``default`` (always, while off)."""
        if not self.on:
            return default
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: bytes, value: Any) -> None:
        """Keep ``value`` under ``key`` (nothing, while off)."""
        if not self.on:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
