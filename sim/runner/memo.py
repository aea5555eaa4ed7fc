"""Remembered simulations: a bounded store of the runner's answers, keyed by request.

Off until a long-lived caller (the app's server) turns it on with :func:`remember`:
then asking a request again, with another quota, target or page, simulates nothing.
The keys hold no quota (:class:`~sim.runner.request.Request` drops it), so one answer
serves every quota. The least recently used answers go first when the store is full.
Answers are shared between callers and never changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

_lock = threading.Lock()
_store: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
_budget = 0  # bytes; 0: off


def remember(max_bytes: int) -> None:
    """Keep answers up to ``max_bytes`` of arrays in all (0 turns the store off and empties it)."""
    global _budget
    with _lock:
        _budget = int(max_bytes)
        _trim()


def forget() -> None:
    """Empty the store (it stays on)."""
    with _lock:
        _store.clear()


def get(key: Any) -> Any | None:
    """The answer kept for ``key``, or None."""
    with _lock:
        if key not in _store:
            return None
        _store.move_to_end(key)
        return _store[key][0]


def put(key: Any, answer: Any, nbytes: int) -> None:
    """Keep ``answer`` (its arrays take ``nbytes``) if the store is on and it fits."""
    with _lock:
        if not _budget or nbytes > _budget:
            return
        _store[key] = (answer, int(nbytes))
        _store.move_to_end(key)
        _trim()


def _trim() -> None:
    total = sum(n for _, n in _store.values())
    while _store and (not _budget or total > _budget):
        _, (_, n) = _store.popitem(last=False)
        total -= n
