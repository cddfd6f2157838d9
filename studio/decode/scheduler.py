"""Continuous batching: the decode steps of concurrent writers share one forward.

A Space serves many writers with one model.  Decoding one writer at a time makes the
third writer wait for the first two; decoding each in its own thread makes them fight for
the same cores.  Instead, one thread per engine owns a Decoder: a request thread submits
its Generation and reads the pieces as they come, while the scheduler thread takes new
rows in between steps (up to ``max_rows``; the rest queue in order) and runs every active
row's step in one forward.  On a memory-bound CPU, eight rows cost far less than eight
passes (bench/results/batching-cpu.md).  A joining row's prompt is prefilled
``prefill_chunk`` tokens per step (``PEREC_PREFILL_CHUNK``), so the others keep streaming.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections import deque
from typing import Callable

from constraints.limits import PREFILL_CHUNK
from studio.decode.generation import Generation
from studio.decode.loop import Decoder

log = logging.getLogger("perec.scheduler")

DEFAULT_MAX_ROWS = 16


class Scheduler:
    def __init__(self, engine, max_rows: int = DEFAULT_MAX_ROWS, prefill_chunk: int | None = None):
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1 (got {max_rows})")
        self.engine = engine
        self.max_rows = max_rows
        self.decoder = Decoder(engine, prefill_chunk or PREFILL_CHUNK.value())
        self._waiting: deque[Generation] = deque()
        # Called once when a row ends, however it ends (finished, failed, cancelled, shut
        # down), whether or not anyone still reads it: what a session holds is given back
        # when its row stops using the batch, not when a page happens to close its stream.
        self._on_end: dict[int, tuple[Generation, Callable[[], None]]] = {}
        self._wake = threading.Condition()
        self.steps = 0  # decoding steps run (each one forward per model in the batch)
        self.peak_rows = 0  # the most rows decoded together so far
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="perec-scheduler", daemon=True)
        self._thread.start()
        # Stop the thread before the interpreter tears torch down under it.
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every row and stop the thread (at exit, or when the engine goes)."""
        with self._wake:
            self._closed = True
            for g in list(self._waiting) + list(self.decoder.rows) + [j.gen for j in self.decoder.joining]:
                g.cancel()
            self._wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def submit(self, gen: Generation, on_end: Callable[[], None] | None = None) -> Generation:
        """Queue ``gen``; iterate it (in any thread) for its pieces as they are decoded.
        ``on_end`` is called (in the scheduler's thread) once the row has ended."""
        if gen.done or gen.source is not None:
            raise ValueError("this generation has already run")
        if self._closed:
            raise RuntimeError("the scheduler is closed")
        gen._outbox = queue.Queue()
        with self._wake:
            if on_end is not None:
                self._on_end[id(gen)] = (gen, on_end)
            self._waiting.append(gen)
            self._wake.notify()
        return gen

    def _report_ended(self) -> None:
        with self._wake:
            ended = [(k, hook) for k, (gen, hook) in self._on_end.items() if gen.done]
            for k, _ in ended:
                del self._on_end[k]
        for _, on_end in ended:
            try:
                on_end()
            except Exception:  # noqa: BLE001  (a caller's hook must not stop the batch)
                log.exception("a row's end hook failed")

    @property
    def active(self) -> int:
        return len(self.decoder)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _admit(self) -> None:
        """Take waiting rows while there is room (their prompts are prefilled over the next
        steps; a cancelled one just finishes)."""
        while self._waiting and len(self.decoder) < self.max_rows:
            with self._wake:
                gen = self._waiting.popleft()
            try:
                self.decoder.join(gen)
            except Exception as e:  # noqa: BLE001  (a bad row fails alone)
                gen.fail(e)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not len(self.decoder) and not self._closed:
                    self._wake.wait()
                if self._closed and not len(self.decoder):
                    for g in self._waiting:
                        g.fail(RuntimeError("the studio is shutting down"))
                    self._waiting.clear()
                    self._report_ended()
                    return
            self._admit()
            if not len(self.decoder):
                self._report_ended()
                continue
            self.peak_rows = max(self.peak_rows, len(self.decoder))
            try:
                self.decoder.step()
            except Exception:  # noqa: BLE001  (rows already told; the thread must live on)
                log.exception("decoding step failed")
            self.steps += 1
            self._report_ended()
