"""What every fuzz test asserts about a refusal, and the guard against a hang.

A refusal is an expected exception (SpecError, ImpossibleConstraint, FormError,
DraftError, RequestError: all ValueErrors; gr.Error from an endpoint) whose message is one
line that names the problem: not empty, no line break, short, and not Python's own words
for a type mix-up ("'>' not supported between instances of 'str' and 'int'"), which name
nothing a writer sent.

Sizes: each fuzz test runs ``EXAMPLES`` examples (a few seconds) in ``make test``; run
them longer with ``PEREC_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("PEREC_FUZZ_EXAMPLES", "150"))
DEADLINE_MS = 2000  # the bound: never a hang over 2 s
HANG_S = 10  # the wall-clock guard: stops a call that never returns (hypothesis only times finished ones)
MAX_MESSAGE = 400

def fuzz(scale: float = 1.0, deadline: int | None = DEADLINE_MS):
    """hypothesis settings for a fuzz test: ``scale`` fewer examples for the slower ones (a
    model call, HTTP); ``deadline`` None where one example is several round trips through
    a loaded server's queue (the wall-clock guard still stops a hang)."""
    return settings(max_examples=max(5, int(EXAMPLES * scale)), deadline=deadline, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


PYTHON_WORDS = (
    "Traceback", "object has no attribute", "not supported between instances", "unhashable type",
    "object is not iterable", "invalid literal for", "index out of range", "object is not subscriptable",
    "positional argument", "unexpected keyword argument", "could not convert", "object is not callable",
    "division by zero", "maximum recursion", "Exceeds the limit", "'NoneType' object", "Overflow when",
    "must be real number", "dictionary update sequence",
)


def refusal_problem(msg: str) -> str | None:
    """What keeps ``msg`` from being a clean refusal (None: it is one)."""
    if not msg.strip():
        return "no message"
    if "\n" in msg or "\r" in msg:
        return f"not one line: {msg!r}"
    if len(msg) > MAX_MESSAGE:
        return f"{len(msg)} characters: {msg[:120]!r}…"
    leaked = [w for w in PYTHON_WORDS if w in msg]
    if leaked:
        return f"Python's words, not the problem: {msg!r}"
    return None


def assert_refusal(e: BaseException) -> str:
    """``e`` is a clean refusal; returns its message."""
    msg = str(getattr(e, "message", None) or e)
    problem = refusal_problem(msg)
    assert problem is None, f"{type(e).__name__}: {problem}"
    return msg


class Hang(BaseException):
    """Raised into a call that ran past the guard (a BaseException: nothing under test
    catches it as an ordinary error)."""


@contextmanager
def guard(seconds: float = HANG_S):
    """Interrupt the block after ``seconds`` of wall time (main thread only: SIGALRM)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hang(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
