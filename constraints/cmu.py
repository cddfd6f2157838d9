"""The CMU pronouncing dictionary (the ``pronouncing`` package), loaded once under a lock.

``pronouncing.init_cmu`` marks itself loaded before it has filled its tables, so a second
thread that asks meanwhile skips the load and reads ``lookup`` half built ("dictionary
changed size during iteration" under concurrent requests on a fresh server).  Every
caller here loads it through ``init_cmu`` below instead.
"""

from __future__ import annotations

import threading

import pronouncing

_LOCK = threading.Lock()
_loaded = False


def init_cmu() -> None:
    """Load the dictionary if it is not yet: returns once its tables are whole."""
    global _loaded
    if _loaded:
        return
    with _LOCK:
        if not _loaded:
            pronouncing.init_cmu()
            _loaded = True
