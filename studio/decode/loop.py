"""The decode loop: many rows, one forward per step.

A ``Decoder`` holds rows (Generations) and steps them together.  Per step, every row runs
its own pipeline up to sampling (``Generation.propose``: controllers, penalty, its mask
set, its sampler); the host learns every row's token in one sync; each row then backs off,
advances or finishes (``Generation.take``); and one forward per model appends the chosen
tokens of the rows that advanced.  A row that backed off waits with its saved logits; a
row that finished or was cancelled leaves the batch; new rows may join between steps.

Rows on the same model share one BatchSource (models/sources.py); a steered row whose
feed is a peft copy of the model (adapters) runs in a batch of its own model.
"""

from __future__ import annotations

import time

import torch

from models.sources import BatchSource
from studio.decode.generation import DONE, FEED, Generation, SeqView


class Decoder:
    def __init__(self, engine):
        self.engine = engine
        self.batches: dict[int, BatchSource] = {}  # id(model) -> its batch
        self.rows: list[Generation] = []
        # Rows that wait in the batch without stepping (a search holds a finished line
        # until every candidate line is done); they keep their place and state.
        self.parked: set[int] = set()

    def __len__(self) -> int:
        return len(self.rows)

    def _batch_for(self, model) -> BatchSource:
        batch = self.batches.get(id(model))
        if batch is None:
            batch = self.batches[id(model)] = BatchSource(model, config=self.engine.model.config)
        return batch

    def add(self, gen: Generation) -> None:
        """Prefill ``gen``'s prompt and take it into the batch of its model."""
        self.add_copies([gen])

    def add_copies(self, gens: list[Generation]) -> None:
        """Take rows that share one prompt and feed (variants, search candidates): the
        prompt is prefilled once and its cache copied to each row."""
        first = gens[0]
        if any(g.input_ids != first.input_ids or g.feed != first.feed for g in gens):
            raise ValueError("add_copies needs rows with the same prompt and feed")
        t0 = time.perf_counter()
        batch = self._batch_for(first.feed.model)
        for gen, (sid, logits) in zip(gens, batch.add(first.input_ids, first.feed.rows, copies=len(gens))):
            gen.begin(logits if len(gens) == 1 else logits.clone(), SeqView(batch, sid), t0)
            self.rows.append(gen)

    def step(self) -> list[Generation]:
        """One decoding step for every row; returns the rows that ended in it (finished, or
        failed: ``row.error`` says why)."""
        finished: list[Generation] = []
        proposals = []
        for g in [g for g in self.rows if id(g) not in self.parked]:
            try:
                p = g.propose()
            except Exception as e:  # noqa: BLE001  (one row's error must not stop the others)
                self._drop(g, e)
                finished.append(g)
                continue
            if p is None:
                self._finish(g)
                finished.append(g)
            else:
                proposals.append((g, *p))
        if not proposals:
            return finished
        n = len(proposals)
        # The host learns every row's token and dead-end flag in one sync.
        flat = torch.stack([c for _, c, _ in proposals] + [ok.long() for _, _, ok in proposals]).tolist()
        feeds: dict[int, dict[int, torch.Tensor]] = {}
        for (g, choice, _), token_id, ok in zip(proposals, flat[:n], flat[n:]):
            try:
                action = g.take(token_id, bool(ok), choice)
            except Exception as e:  # noqa: BLE001
                self._drop(g, e)
                finished.append(g)
                continue
            if action == DONE:
                self._finish(g)
                finished.append(g)
            elif action == FEED:
                feeds.setdefault(id(g.source.batch), {})[g.source.sid] = choice
        for batch in list(self.batches.values()):
            tokens = feeds.get(id(batch))
            if not tokens:
                continue
            by_sid = {g.source.sid: g for g in self.rows if g.source.batch is batch}
            try:
                logits = batch.step(tokens)
            except Exception as e:  # noqa: BLE001  (the shared forward failed: its rows end)
                for g in list(by_sid.values()):
                    self._drop(g, e)
                    finished.append(g)
                continue
            for sid, row_logits in logits.items():
                by_sid[sid].set_logits(row_logits)
        return finished

    def run(self) -> None:
        """Step until every row is done."""
        while self.rows:
            self.step()

    def close(self) -> None:
        """Stop every row still here (its reader went away)."""
        for g in list(self.rows):
            g.cancel()
            self._finish(g)

    # ------------------------------------------------------------------ leaving

    def adopt(self, g: Generation) -> None:
        """Take a row already in one of this decoder's batches (a fork)."""
        self.rows.append(g)

    def discard(self, g: Generation) -> None:
        """Drop a row without finishing it (a search's losing candidate)."""
        self._leave(g)

    def _leave(self, g: Generation) -> None:
        self.parked.discard(id(g))
        self.rows.remove(g)
        batch = g.source.batch
        batch.remove(g.source.sid)
        if not len(batch):
            self.batches.pop(id(batch.model), None)

    def _finish(self, g: Generation) -> None:
        self._leave(g)
        g.finish()

    def _drop(self, g: Generation, error: BaseException) -> None:
        self._leave(g)
        g.fail(error)
