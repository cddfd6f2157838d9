"""Pacing: each session's page events at most so many a second (limits.SESSION_EVENTS).

Any client can send events as fast as the server answers them.  Each one, even one refused
at once, costs the server a few milliseconds of Python (reading the request, the queue,
writing back), and those milliseconds hold the interpreter's lock that every writer's
decoding step needs too: one client sending New draft in a loop slowed another writer's
first streamed piece 3-7x (bench/abuse.py).  Refusing faster does not help, since a loop
only sends faster.  So past a burst (three seconds' worth), a session's events wait their
turn, asleep on the event loop where they cost nothing: the flood runs at the cap's rate
and the other writers keep their time.  An event that would wait more than ``MAX_WAIT_S``
(a client sending many at once) is refused in one line naming the setting.

The bucket is GCRA's (the "generic cell rate algorithm" of ATM networks and most HTTP rate
limiters): one number per session, the time at which its bucket would be full again.
A page's own events stay far below the cap: a change event runs one at a time per field
(gradio's ``always_last``), and a click chains two or three.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Callable

from constraints.limits import SESSION_EVENTS, LimitError

BURST_S = 3.0  # seconds' worth of events a session may send at once
MAX_WAIT_S = 30.0  # an event that would wait longer is refused


class Pacer:
    """Per-session event pacing.  ``key`` is the session's state object (a session's
    bucket goes with it); ``clock`` is injectable for deterministic tests."""

    def __init__(self, space: bool, clock: Callable[[], float] = time.monotonic, max_wait: float = MAX_WAIT_S):
        self.space = space
        self.clock = clock
        self.max_wait = max_wait
        self._full_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def delay(self, key) -> float:
        """Take a turn for ``key``'s next event: the seconds it must wait first (0: now).
        Raises LimitError when it would wait over ``max_wait`` (and takes no turn)."""
        rate = SESSION_EVENTS.value(self.space)
        step, burst = 1.0 / rate, BURST_S
        with self._lock:
            now = self.clock()
            full_at = max(self._full_at.get(key, now), now)  # the bucket never holds more than a burst
            wait = full_at + step - burst - now
            if wait > self.max_wait:
                raise LimitError(f"Too many events from this page: more than {rate} a second, for longer "
                                 f"than {BURST_S:g} s (setting {SESSION_EVENTS.setting})")
            self._full_at[key] = full_at + step
        return wait if wait > 1e-9 else 0.0  # (a sum of steps is off by rounding: that is no wait)

    async def pace(self, key) -> None:
        """Wait for ``key``'s turn (None: not a session's event, never paced)."""
        if key is None:
            return
        wait = self.delay(key)
        if wait > 0:
            await asyncio.sleep(wait)
