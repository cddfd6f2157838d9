"""Search beyond one sampled path: K candidate lines decoded as one batch, the one the
model itself finds most natural kept.

Every line of a poem is written K ways at once (K rows of one batch, each with its own
sampler; the masks hold every row to the form).  When each row has finished the line (or
the text), the rows are ranked by the mean log-probability of the line's tokens under the
model's own logits, before steering and masks: the line the unconstrained model finds
likeliest.  The best row is kept; the others are replaced by forks of it (its cache rows
copied, studio/decode/generation.py Generation.fork), and the next line is tried K ways
again.  With K = 1 this is plain decoding.

**The end word, planned** (``plan_ends``, on by default).  A form's masks meet the rhyme at
the last moment: when a line's syllables run out, only the rhyme words that fit are left,
and the model takes one it would never choose there ("the sky was a mer.").  So after the
K lines are written, the kept line's last word is judged by the model's own probability of
it there.  Below ``END_WORD_FLOOR`` the line is written again, K more ways, each with its
end word chosen first: the rhyme words the model itself found likeliest at the end of the
first K lines (ranked in context: the poem so far and the line's own words).  The masks then
hold each new row to its planned word (constraints.formspec.Planned), so the words before it
are chosen with that ending fixed, and all 2K lines are ranked together: lines whose last
word clears the floor first, then by mean log-probability.

**Particles** (``particles``, on by default): within a line the K rows are a particle
filter in the manner of LLaMPPL's sequential Monte Carlo.  Every ``RESAMPLE_EVERY`` steps,
when the rows' weights have grown uneven (effective sample size under ``RESAMPLE_ESS`` ×
the live rows), the live rows are drawn again by systematic resampling: light rows are
dropped and heavy ones forked, so the K rows spend the rest of the line on the paths that
cost least.  A row's weight since the last draw is, by ``particle_weight``:

- ``"likelihood"`` (the default): the model's own log-probability of the tokens it wrote
  (before steering and masks).  Per token that is the log of the mass the masks left
  allowed (``Generation.kept_mass``) plus the log of the token's share of it, so a row pays
  both for what the rules removed and for an unlikely word it then took.
- ``"mass"``: the mass the masks left alone, the weight of the locally optimal proposal
  (sampling from the masked model), which pays only for what the rules removed.

bench/cost.py measured both on prose (bench/results/cost-cpu.md): the mass weights did not
lower the perplexity of ``syllables:1 & lipogram:e`` below K ranked lines, the likelihood
weights did.  Rows written again with a planned end word are not resampled: they exist to
try different words.  Prose decoded with a width (``--search K``) is one long "line" per
paragraph, so the same filter runs through it.

A LineSearch reads like a Generation: iterate it for the chosen lines as they are decided,
``result`` when done, ``cancel()`` from any thread.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Iterator

import torch

from studio.decode.generation import Generation, Result, SeqView
from studio.decode.loop import Decoder
from studio.masks.forms import FormMasker

# A line's last word below this log-probability (nats, under the model, in context) is one a
# poet would not have written there: the 10th percentile of Shakespeare's own 14th lines'
# last words given the line before (-10.84 by bench/cost.py on SmolLM2-135M).
END_WORD_FLOOR = -10.8
# The particle filter: check the weights every RESAMPLE_EVERY steps; resample when the
# effective sample size falls under RESAMPLE_ESS of the live rows (the usual half).
RESAMPLE_EVERY = 2
RESAMPLE_ESS = 0.5
PARTICLE_WEIGHTS = {"likelihood": "logprobs", "mass": "kept_mass"}


def resample_counts(log_weights: list[float], u: float, threshold: float = RESAMPLE_ESS) -> list[int] | None:
    """Systematic resampling of particles with these log weights: how many copies of each
    the next generation holds (they sum to the number of particles), or None when the
    weights are even enough to go on (effective sample size at least ``threshold`` × n).
    ``u`` in [0, 1) is the one uniform draw that places the n evenly spaced pointers."""
    n = len(log_weights)
    top = max(log_weights)
    if n < 2 or top == float("-inf"):
        return None
    w = [math.exp(x - top) for x in log_weights]
    total = sum(w)
    w = [x / total for x in w]
    if 1.0 / sum(x * x for x in w) >= threshold * n:
        return None
    counts, cum, i = [0] * n, w[0], 0
    for k in range(n):
        point = (u + k) / n
        while point > cum and i < n - 1:
            i += 1
            cum += w[i]
        counts[i] += 1
    return counts


class LineSearch:
    def __init__(self, engine, prompt: str, constraint, settings, mode: str = "continue", width: int = 4,
                 plan_ends: bool = True, particles: bool = True, particle_weight: str = "likelihood", **kw):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"search width must be a positive integer (got {width!r})")
        self.engine, self.width, self.plan_ends = engine, width, bool(plan_ends)
        if particle_weight not in PARTICLE_WEIGHTS:
            raise ValueError(f"particle_weight must be one of {', '.join(PARTICLE_WEIGHTS)} (got {particle_weight!r})")
        self.particles = bool(particles)
        self._weights_of = PARTICLE_WEIGHTS[particle_weight]  # the Generation list a weight sums
        self._by_mass = particle_weight == "mass"
        self.replanned = 0  # lines written again with their end word planned
        self.resamples = 0  # times the particle filter drew the live rows again
        self._rng = random.Random(settings.seed)
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
            g.track_kept_mass = self._by_mass
        decoder.add_copies(rows)
        shown = 0
        try:
            while True:
                start = len(rows[0].history)
                form = self._form_of(rows[0])
                # A copy of the line's start, kept aside for planned rows.
                spare, self._chosen = None, []
                if self.plan_ends and form is not None and form.at_line_start():
                    spare = self._fork(rows[0], decoder, 1)[0]
                    decoder.parked.add(id(spare))
                self._decode_line(rows, decoder, particles=self.particles)
                errors = [g.error for g in rows if g.error is not None]
                if errors and len(errors) == len(rows):
                    raise errors[0]
                alive = [g for g in rows if g.error is None]
                ranks = [self._rank(g, start) for g in alive]
                best = alive[max(range(len(alive)), key=lambda i: ranks[i])]
                if spare is not None:
                    if not ranks[alive.index(best)][1]:
                        planned = self._planned_rows(spare, alive, start, decoder)
                        if planned:
                            self.replanned += 1
                            self._decode_line(planned, decoder)
                            more = [g for g in planned if g.error is None]
                            rows, alive = rows + planned, alive + more
                            ranks += [self._rank(g, start) for g in more]
                            best = alive[max(range(len(alive)), key=lambda i: ranks[i])]
                    decoder.discard(spare)
                self.trace.append({"candidates": [(self._line_of(g, shown), ok, mean)
                                                  for g, (ok, _, mean) in zip(alive, ranks)],
                                   "end_word_ok": [r[1] for r in ranks],
                                   # the end words of the planned rows, after the first K
                                   "planned": list(self._chosen),
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

    def _decode_line(self, rows: list[Generation], decoder: Decoder, particles: bool = False) -> None:
        """Decode until every row has finished this line or its text (parked at its newline);
        with ``particles``, resample the live rows as the masks' cost makes them uneven
        (``rows`` is updated in place)."""
        lines = {id(g): g.newlines for g in rows}
        since = {id(g): len(self._weights(g)) for g in rows}  # where each row's weight starts
        steps = 0
        while any(not g.done and id(g) not in decoder.parked for g in rows):
            decoder.step()
            for g in rows:
                if not g.done and g.newlines > lines[id(g)]:
                    decoder.parked.add(id(g))
            steps += 1
            if particles and steps % RESAMPLE_EVERY == 0:
                self._resample(rows, decoder, lines, since)

    def _weights(self, g: Generation) -> list:
        """Per token of ``g``, what its particle weight sums (``particle_weight``)."""
        return getattr(g, self._weights_of)

    def _resample(self, rows: list[Generation], decoder: Decoder, lines: dict, since: dict) -> None:
        live = [g for g in rows if not g.done and id(g) not in decoder.parked]
        if len(live) < 2:
            return
        zero = torch.zeros((), device=self.engine.device)
        parts = [self._weights(g)[since[id(g)]:] for g in live]
        weights = torch.stack([torch.stack(p).sum() if p else zero for p in parts]).tolist()  # one host sync
        counts = resample_counts(weights, self._rng.random())
        if counts is None:
            return
        self.resamples += 1
        for g, c in zip(live, counts):
            if c == 0:
                decoder.discard(g)
                rows.remove(g)
        for g, c in zip(live, counts):
            if c > 1:
                for twin in self._fork(g, decoder, c - 1):
                    rows.append(twin)
                    lines[id(twin)] = lines[id(g)]
        for g in rows:
            since[id(g)] = len(self._weights(g))

    def _rank(self, g: Generation, start: int) -> tuple:
        """Rows that ended well first (not dead ends), then lines whose last word the model
        would say there (above END_WORD_FLOOR), then the line's mean log-probability."""
        ok = g.result is None or g.result.stop_reason != "dead_end"
        lp = g.logprobs[start:]
        mean = float(torch.stack(lp).mean()) if lp else float("-inf")
        a, b = self._last_word(g, start)
        end = float(torch.stack(lp[a - start:b - start]).sum()) if b > a else float("-inf")
        return ok, end >= END_WORD_FLOOR, mean

    def _last_word(self, g: Generation, start: int) -> tuple[int, int]:
        """[a, b): the history steps of the last word written since ``start`` (its marks and
        line break after it left out)."""
        texts = self.engine.vocab.texts
        ids = [h[0] for h in g.history]
        b = len(ids)
        while b > start and not any(c.isalpha() for c in texts[ids[b - 1]]):
            b -= 1
        a = b
        while a > start:
            t = texts[ids[a - 1]]
            a -= 1
            if t[:1].isspace() or a == start or not texts[ids[a - 1]][-1:].isalpha():
                break
        return a, b

    @staticmethod
    def _form_of(g: Generation) -> FormMasker | None:
        forms = g.masks.of_type(FormMasker)
        return forms[0] if forms else None

    def _planned_rows(self, spare: Generation, alive: list[Generation], start: int,
                      decoder: Decoder) -> list[Generation]:
        """K rows from the line's start, each with its end word planned: the words that may
        end the line, ranked by the model's probability of each as the last word of the
        lines just written (the best over those lines), their own last words left out."""
        form = self._form_of(spare)
        whole = form.index.tok.whole_token  # words written whole by one token after a space
        first = {w: whole[w] for w in form.end_words() if w in whole}
        tried, dists = set(), []
        for g in alive:
            a, b = self._last_word(g, start)
            if b > a:
                tried.add(self.engine.vocab.decode([h[0] for h in g.history[a:b]]).strip().lower())
                dists.append(torch.log_softmax(g.history[a][1].float(), dim=-1))
        if not dists:
            return []
        best = torch.stack(dists).max(dim=0).values
        scored = sorted(((float(best[t]), w) for w, t in first.items() if w not in tried), reverse=True)
        chosen = [w for _, w in scored[: self.width]]
        if not chosen:
            return []
        self._chosen = chosen
        out = self._fork(spare, decoder, len(chosen))
        for g, w in zip(out, chosen):
            self._form_of(g).plan_end(w)
            g.track_likelihood = True
        return out

    @staticmethod
    def _line_of(g: Generation, shown: int) -> str:
        text = g.result.text if g.result is not None else "".join(g.pieces)
        return text[shown:]

    def _forks_of(self, best: Generation, decoder: Decoder) -> list[Generation]:
        return self._fork(best, decoder, self.width - 1)

    def _fork(self, best: Generation, decoder: Decoder, n: int) -> list[Generation]:
        batch = best.source.batch
        base = self.settings.seed
        out = []
        for sid in batch.fork(best.source.sid, n):
            self._forks += 1
            seed = None if base is None else base + self.width + self._forks
            twin = best.fork(SeqView(batch, sid), seed)
            decoder.adopt(twin)
            out.append(twin)
        return out
