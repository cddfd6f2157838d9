"""Fair shares of the decoder: what one session may run at once.

The scheduler has a fixed number of rows for everyone (studio/decode/scheduler.py), and
the queue a fixed number of workers; a client that opens generations as fast as it can
would hold them all.  So each session (gradio's session hash) may run
``GENERATIONS_PER_SESSION`` generations (Generate, Variants) of at most ``SESSION_ROWS``
rows in all, and as many next-word searches (the list, One more word); one more is refused
in one line while they run, never queued behind them.  The two kinds are counted apart:
the page refreshes its next-word list by itself (when the editor loses focus), and that
must never make the writer's own Generate click fail.

A ``Share`` is given back exactly once, by whichever comes first: the row's end (the
scheduler reports it, even if nobody reads the stream any more) or the caller's
``finally`` (the page closed the stream, the call failed or returned).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from constraints.limits import GENERATIONS_PER_SESSION, SESSION_ROWS, LimitError


GENERATION, NEXT_WORDS = "generation", "next words"
_RUNNING = {GENERATION: "a generation is already running in this session",
            NEXT_WORDS: "next words are already being found for this session"}


def session_key(request) -> str:
    """Whose share a gradio request uses: its session hash (a request without one shares
    the one anonymous share, so leaving it out gains a client nothing)."""
    return getattr(request, "session_hash", None) or ""


class Share:
    """One running decode of one session: ``release()`` gives it back (idempotent)."""

    def __init__(self, shares: "Shares", key: tuple[str, str], rows: int):
        self._shares, self.key, self.rows = shares, key, rows
        self._released = False

    def release(self) -> None:
        self._shares._give_back(self)


class Shares:
    def __init__(self, space: bool = False):
        self.space = space
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], list[Share]] = {}  # (session, kind) -> running

    def take(self, session: str, rows: int = 1, kind: str = GENERATION) -> Share:
        """A share for ``rows`` decoding rows of ``session``, or LimitError naming the cap
        and its setting while the session's running decodes of this kind use its part."""
        key = (session, kind)
        with self._lock:
            held = self._held.get(key, [])
            try:
                GENERATIONS_PER_SESSION.check(len(held) + 1, self.space)
                SESSION_ROWS.check(sum(s.rows for s in held) + rows, self.space)
            except LimitError as e:
                if not held:  # too many rows for one decode, whatever else runs
                    raise
                raise LimitError(f"{_RUNNING[kind]}: wait for it to end, or stop it ({e})") from None
            share = Share(self, key, rows)
            self._held.setdefault(key, []).append(share)
            return share

    @contextmanager
    def hold(self, session: str | None, rows: int = 1, kind: str = GENERATION) -> Iterator[None]:
        """Hold a share of ``session`` for the block (None: a caller with no session, the
        Python API and tests, runs unshared)."""
        if session is None:
            yield
            return
        share = self.take(session, rows, kind)
        try:
            yield
        finally:
            share.release()

    def running(self, session: str | None = None, kind: str = GENERATION) -> int:
        """Decodes of ``kind`` running now (of ``session``, or of everyone)."""
        with self._lock:
            if session is not None:
                return len(self._held.get((session, kind), ()))
            return sum(len(v) for (_, k), v in self._held.items() if k == kind)

    def _give_back(self, share: Share) -> None:
        with self._lock:
            if share._released:
                return
            share._released = True
            held = self._held.get(share.key, [])
            held.remove(share)
            if not held:
                self._held.pop(share.key, None)
