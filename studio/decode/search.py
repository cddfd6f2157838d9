"""Search beyond one sampled path: K candidate lines decoded as one batch, the one the
model itself finds most natural kept.

Every line of a poem is written K ways at once (K rows of one batch, each with its own
sampler; the masks hold every row to the form).  When each row has finished the line (or
the text), the rows are ranked by the mean log-probability of the line's tokens under the
model's own logits, before steering and masks: the line the unconstrained model finds
likeliest.  The best row is kept; the others are replaced by forks of it (its cache rows
copied, studio/decode/generation.py Generation.fork), and the next line is tried K ways
again.  With K = 1 this is plain decoding.

A LineSearch reads like a Generation: iterate it for the chosen lines as they are decided,
``result`` when done, ``cancel()`` from any thread.
"""

from __future__ import annotations

import threading
from typing import Iterator

import torch

from studio.decode.generation import Generation, Result, SeqView
from studio.decode.loop import Decoder


class LineSearch:
    def __init__(self, engine, prompt: str, constraint, settings, mode: str = "continue", width: int = 4,
                 **kw):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"search width must be a positive integer (got {width!r})")
        self.engine, self.width = engine, width
        self.settings = settings
        self.cancel_event = threading.Event()
        self.first = engine.variant_rows(prompt, constraint, settings, mode, width, cancel=self.cancel_event, **kw)
        self.masks = self.first[0].masks
        self.result: Result | None = None
        self.lines_decided = 0
        self._forks = 0
        # Per decided line: every candidate (its line text, whether it ended well, its mean
        # log-probability), and which one was kept.
        self.trace: list[dict] = []

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> Result:
        for _ in self:
            pass
        return self.result

    def __iter__(self) -> Iterator[str]:
        decoder = Decoder(self.engine)
        rows = list(self.first)
        for g in rows:
            g.track_likelihood = True
        decoder.add_copies(rows)
        shown = 0
        try:
            while True:
                starts = {id(g): len(g.history) for g in rows}
                lines = {id(g): g.newlines for g in rows}
                # Decode until every row has finished this line or its text.
                while any(not g.done and id(g) not in decoder.parked for g in rows):
                    decoder.step()
                    for g in rows:
                        if not g.done and g.newlines > lines[id(g)]:
                            decoder.parked.add(id(g))
                errors = [g.error for g in rows if g.error is not None]
                if errors and len(errors) == len(rows):
                    raise errors[0]
                alive = [g for g in rows if g.error is None]
                ranks = [self._rank(g, starts[id(g)]) for g in alive]
                best = alive[max(range(len(alive)), key=lambda i: ranks[i])]
                self.trace.append({"candidates": [(self._line_of(g, shown), ok, mean)
                                                  for g, (ok, mean) in zip(alive, ranks)],
                                   "kept": alive.index(best)})
                text = "".join(best.pieces)
                if best.done:
                    self.result = best.result
                    self.result.search = self.width
                    final = best.result.text
                    if len(final) > shown:
                        yield final[shown:]
                    return
                self.lines_decided += 1
                if len(text) > shown:
                    yield text[shown:]
                    shown = len(text)
                for g in rows:
                    if g is not best and not g.done:
                        decoder.discard(g)
                decoder.parked.discard(id(best))
                rows = [best] + self._forks_of(best, decoder)
        finally:
            decoder.close()

    def _rank(self, g: Generation, start: int) -> tuple:
        """Rows that ended well first (not dead ends), then the line's mean log-probability."""
        ok = g.result is None or g.result.stop_reason != "dead_end"
        lp = g.logprobs[start:]
        mean = float(torch.stack(lp).mean()) if lp else float("-inf")
        return ok, mean

    @staticmethod
    def _line_of(g: Generation, shown: int) -> str:
        text = g.result.text if g.result is not None else "".join(g.pieces)
        return text[shown:]

    def _forks_of(self, best: Generation, decoder: Decoder) -> list[Generation]:
        batch = best.source.batch
        base = self.settings.seed
        out = []
        for sid in batch.fork(best.source.sid, self.width - 1):
            self._forks += 1
            seed = None if base is None else base + self.width + self._forks
            twin = best.fork(SeqView(batch, sid), seed)
            decoder.adopt(twin)
            out.append(twin)
        return out
