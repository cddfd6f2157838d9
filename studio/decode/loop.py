"""The decode loop: many rows, one forward per step.

A ``Decoder`` holds rows (Generations) and steps them together.  Per step, every row runs
its own pipeline up to sampling (``Generation.propose``: controllers, penalty, its mask
set, its sampler); the host learns every row's token in one sync; each row then backs off,
advances or finishes (``Generation.take``); and one forward per model appends the chosen
tokens of the rows that advanced.  A row that backed off waits with its saved logits; a
row that finished or was cancelled leaves the batch; new rows may join between steps.

Rows on the same model share one BatchSource (models/sources.py); a steered row whose
feed is a peft copy of the model (adapters) runs in a batch of its own model.

A row that *joins* a running batch (``join``: the scheduler's writers) has its prompt
prefilled ``prefill_chunk`` columns per step, in between the others' steps, so a long draft
joining never holds the other writers' streams for more than one chunk's forward.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import torch

from models.sources import BatchSource, Prefill
from studio.decode.generation import DONE, FEED, Generation, SeqView


@dataclass
class _Joining:
    gen: Generation
    prefill: Prefill
    t0: float  # when it asked to join (its first-token time counts the prefill)


class Decoder:
    def __init__(self, engine, prefill_chunk: int | None = None):
        if prefill_chunk is not None and prefill_chunk < 1:
            raise ValueError(f"prefill_chunk must be >= 1 (got {prefill_chunk})")
        self.engine = engine
        self.batches: dict[int, BatchSource] = {}  # id(model) -> its batch
        self.rows: list[Generation] = []
        # Rows that wait in the batch without stepping (a search holds a finished line
        # until every candidate line is done); they keep their place and state.
        self.parked: set[int] = set()
        # Rows whose prompts are being prefilled, first come first served; at most
        # ``prefill_chunk`` prompt columns run per step while other rows decode.
        self.joining: deque[_Joining] = deque()
        self.prefill_chunk = prefill_chunk
        self.prefilled = 0  # prompt columns run in the last step (tests and benches read it)

    def __len__(self) -> int:
        return len(self.rows) + len(self.joining)

    def _batch_for(self, model) -> BatchSource:
        batch = self.batches.get(id(model))
        if batch is None:
            batch = self.batches[id(model)] = self.engine.source_for(model)
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

    def join(self, gen: Generation) -> None:
        """Take ``gen`` into the batch of its model, its prompt prefilled over the next
        steps (``prefill_chunk`` columns each; all at once when no other row decodes)."""
        batch = self._batch_for(gen.feed.model)
        self.joining.append(_Joining(gen, batch.prefill(gen.input_ids, gen.feed.rows), time.perf_counter()))

    def _advance_joining(self, finished: list[Generation]) -> None:
        """Run this step's share of the joining prompts; a row whose prompt is done joins
        the batch and steps in this same step."""
        # Nobody else is decoding: nobody to stall, so the prompts run whole (the fastest
        # first token, and the numbers of a row decoded alone).
        budget = None if not self.rows or self.prefill_chunk is None else self.prefill_chunk
        for j in [j for j in self.joining if j.gen.cancel_event.is_set()]:
            self.joining.remove(j)
            self._end_unstarted(j)
            finished.append(j.gen)
        ran = 0
        while self.joining and (budget is None or ran < budget):
            j = self.joining[0]
            try:
                ran += j.prefill.advance(None if budget is None else budget - ran)
                if not j.prefill.done:
                    break
                self.joining.popleft()
                # The batch may have emptied (and gone) since the prefill began.
                batch = self._batch_for(j.gen.feed.model)
                ((sid, logits),) = batch.join(j.prefill)
            except Exception as e:  # noqa: BLE001  (a bad prompt fails alone)
                if self.joining and self.joining[0] is j:
                    self.joining.popleft()
                j.gen.fail(e)
                finished.append(j.gen)
                continue
            j.gen.begin(logits, SeqView(batch, sid), j.t0)
            self.rows.append(j.gen)
        self.prefilled = ran

    @staticmethod
    def _end_unstarted(j: _Joining) -> None:
        """A row cancelled before its prompt was prefilled: it ends as a cancelled row with
        no text, through the row's own stop path (``propose`` sees the cancel)."""
        g = j.gen
        g.begin(torch.zeros(g.engine.vocab.size, device=g.engine.device), None, j.t0)
        g.propose()
        g.finish()

    def step(self) -> list[Generation]:
        """One decoding step for every row (after this step's share of the joining
        prompts); returns the rows that ended in it (finished, or failed: ``row.error``
        says why)."""
        finished: list[Generation] = []
        self.prefilled = 0
        if self.joining:
            self._advance_joining(finished)
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
        while self.joining:
            j = self.joining.popleft()
            j.gen.cancel()
            self._end_unstarted(j)

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
