"""One bounded cache for derived tables (lexicon sets, per-vocabulary masks, decoder
states): a long-running studio sees endless new prefixes and rhyme states, so every
memo table has a size bound, and the least recently used entries go first.

Torch-free, so the lexicon tables here and the decoder's tables in ``studio`` share it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
_MISSING = object()


class BoundedCache(Generic[V]):
    """A mapping that keeps at most ``limit`` entries (least recently used evicted)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be >= 1 (got {limit})")
        self.limit = limit
        self._d: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable, default=None):
        value = self._d.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._d.move_to_end(key)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __setitem__(self, key: Hashable, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        if len(self._d) > self.limit:
            self._d.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or ``make()`` stored under ``key`` (None is a valid value)."""
        value = self._d.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self[key] = value
        else:
            self._d.move_to_end(key)
        return value

    def clear(self) -> None:
        self._d.clear()
