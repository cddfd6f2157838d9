"""Occurrence counts (constraints/counts.py) held by construction.

The state is the counter's automaton state (studio/masks/occurrences.py) and the
occurrences written so far.  Per state, every token's effect is tabled once per
vocabulary: the occurrences it completes and the state it leaves (so an occurrence split
across tokens is seen where it completes).  Then, per step:

- an upper bound: tokens that would complete more occurrences than are left are masked;
- a lower bound: ``need`` is the fewest tokens that still write the missing occurrences
  (a shortest path over the states and counts tokens lead to).  Tokens that complete an occurrence are steered toward while there is room
  (the model writes them itself where it will); once ``need + MARGIN`` reaches the tokens
  left, only tokens that bring ``need`` down are allowed, so the count is met before the
  budget runs out (and structure rules keep ``need`` tokens free for it).  A forced placeholder or highlight is opened, the model writes its
  inside (its first token is enough), and the closing mark is forced;
- the end: EOS only where the count (with a counted word in progress) is within bounds.
"""

from __future__ import annotations

from collections import deque

import torch

from constraints.base import ImpossibleConstraint
from constraints.cache import BoundedCache
from constraints.counts import OccurrenceCount, TextCount, WordCount

from studio.decode.vocab import VocabIndex
from studio.masks.base import NO_BUDGET, Masker
from studio.masks.include import _spell, _tail_index
from studio.masks.occurrences import counter_for

INF = 10**6


class _Tables:
    """Per automaton state: each token's (occurrences completed, forceable ones among
    them, state after), as tensors.
    Built the first time a state is reached; shared by every sequence of a vocabulary."""

    def __init__(self, counter, vocab: VocabIndex, allowed: torch.Tensor | None = None):
        self.counter, self.vocab = counter, vocab
        self.states: list = []  # index -> state
        self.index: dict = {}  # state -> index
        self.by_state: dict = {}  # state index -> (hits, nice, ends) tensors
        self.steps_of: dict = {}  # state index -> the distinct (state after, nice) of its tokens
        # Each token's text in stand-ins (None: writes nothing), and the distinct ones.
        self.kinds = [None if sp or not t else "".join(counter.kind(ch) for ch in t)
                      for t, sp in zip(vocab.texts, vocab.special)]
        if allowed is not None:
            # Tokens the other rules ban outright ("uppercase": " sneaker") lead nowhere:
            # ``need`` counts only spellings that can be written (" SNE" "AKER").
            ok = allowed.tolist()
            self.kinds = [k if ok[i] or k is None else _BANNED for i, k in enumerate(self.kinds)]
        self.distinct = sorted({k for k in self.kinds if isinstance(k, str)})
        self.writes_nothing = None in self.kinds

    def idx(self, state) -> int:
        i = self.index.get(state)
        if i is None:
            i = self.index[state] = len(self.states)
            self.states.append(state)
        return i

    def run(self, state, text: str) -> tuple[int, int, object]:
        hits = nice = 0
        for ch in text:
            state, h, g = self.counter.step(state, ch)
            hits, nice = hits + h, nice + g
        return hits, nice, state

    def of(self, si: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hit = self.by_state.get(si)
        if hit is None:
            state = self.states[si]
            memo = {}
            for k in self.distinct:
                h, g, end = self.run(state, k)
                memo[k] = (h, g, self.idx(end))
            # Special tokens and empty ones write nothing: no occurrence, the same state.
            nothing = (0, 0, si)
            rows = [memo[k] if isinstance(k, str) else nothing for k in self.kinds]
            hit = self.by_state[si] = tuple(torch.tensor(col, dtype=torch.long, device=self.vocab.device)
                                            for col in zip(*rows))
            steps = {(e, g) for _h, g, e in memo.values()}
            if self.writes_nothing:
                steps.add((si, 0))
            self.steps_of[si] = steps
        return hit

    def steps(self, si: int) -> set[tuple[int, int]]:
        """The distinct (state after, forceable occurrences) the tokens lead to from ``si``."""
        self.of(si)
        return self.steps_of[si]


_BANNED = object()  # the kind of a token the other rules never allow


def _tables(rule: OccurrenceCount, vocab: VocabIndex, allowed: torch.Tensor | None = None,
            by: tuple = ()) -> _Tables:
    """The tables of ``rule``'s automaton; with ``allowed``, the static mask of the rules
    named ``by``, over the tokens they allow."""
    return vocab.derived(("occurrence-tables", rule.name, _key(rule), by),
                         lambda v: _Tables(counter_for(rule), v, allowed))


def _key(rule: OccurrenceCount) -> tuple:
    # The automaton depends on what is counted, not on the count.
    return (rule.target(), getattr(rule, "case", False))


class CountMasker(Masker):
    STEER = 4.0  # logit bonus on tokens that complete a missing occurrence, at full urgency
    MARGIN = 3  # tokens of slack per missing occurrence when forcing starts
    FLOOR = 0.25  # the least urgency: a light pull from the start

    def __init__(self, rule: OccurrenceCount, vocab: VocabIndex):
        super().__init__(rule.spec(), vocab)
        self.rule = rule
        self.lo, self.hi = rule.count.lo, rule.count.hi
        self.tables = _tables(rule, vocab)
        self.counter = self.tables.counter
        self._need: dict[tuple, int] = {}
        self._after: BoundedCache = BoundedCache(256)
        self.eos = vocab.ids_mask(vocab.eos_ids)
        self.reset("")

    def bind(self, peers) -> None:
        """Plan occurrences with the tokens the other rules allow whatever the state."""
        static, by = None, []
        for m in peers:
            mask = m.static_mask() if m is not self else None
            if mask is not None:
                static = mask if static is None else static & mask
                by.append(m.name)
        tables = _tables(self.rule, self.vocab, static, tuple(by)) if by else self.tables
        if tables is not self.tables:
            self.tables, self.counter = tables, tables.counter
            self._need, self._after = {}, BoundedCache(256)
            self.reset("")

    # ------------------------------------------------------------ need

    def need(self, si: int, missing: int) -> int:
        """Fewest tokens that write ``missing`` more forceable occurrences from state
        ``si`` (a breadth-first search over the states and counts the tokens lead to)."""
        pending = self.counter.pending
        states = self.tables.states
        if missing <= pending(states[si]):
            return 0
        key = (si, missing)
        hit = self._need.get(key)
        if hit is not None:
            return hit
        seen, queue, found = {key}, deque([(si, missing, 0)]), INF
        while queue:
            s, r, d = queue.popleft()
            if r <= pending(states[s]):
                found = d
                break
            for node in self._moves(s, r):
                if node not in seen:
                    seen.add(node)
                    queue.append((node[0], node[1], d + 1))
        self._need[key] = found
        return found

    def _moves(self, si: int, missing: int) -> set[tuple[int, int]]:
        """The distinct (state, occurrences still missing) one token leads to."""
        return {(e, max(0, missing - g)) for e, g in self.tables.steps(si)}

    def _missing(self, n: int) -> int:
        return max(0, self.lo - n)

    def tokens_needed(self) -> int:
        """The fewest tokens that still write the missing occurrences (forcing takes no
        more): structure counts keep them free."""
        return self.need(self.si, self._missing(self.n))

    def tokens_reserved(self) -> int:
        missing = self._missing(self.n)
        return self.tokens_needed() + self.MARGIN * missing if missing else 0

    def _after_need(self) -> torch.Tensor:
        """Every token's ``need`` once it is written (cached per state and count)."""
        key = (self.si, self.n)
        hit = self._after.get(key)
        if hit is None:
            _hits, nice, ends = self.tables.of(self.si)
            # Only forceable occurrences count as progress ("[]" is a placeholder, not one
            # worth forcing).
            missing = (self.lo - self.n - nice).clamp(min=0)
            lookup = {(e, m): self.need(e, m) for e, m in self._moves(self.si, self._missing(self.n))}
            width = max(m for _e, m in lookup) + 1
            table = torch.full((len(self.tables.states), width), INF, dtype=torch.long, device=nice.device)
            for (e, m), v in lookup.items():
                table[e, m] = v
            hit = self._after[key] = table[ends, missing]
        return hit

    # ------------------------------------------------------------ Masker protocol

    @property
    def state(self):
        """The counter's automaton state (``si`` indexes it in the tables)."""
        return self.tables.states[self.si]

    def reset(self, context: str) -> None:
        # Occurrences are counted in the generated text, as check() counts the output.
        self.si = self.tables.idx(self.counter.start)
        self.n = 0
        self.forced = 0  # tokens chosen under forcing
        self._forcing = False

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        self._forcing = False
        m = None
        if self.hi is not None:
            hits, _nice, _ends = self.tables.of(self.si)
            m = hits <= self.hi - self.n
        missing = self._missing(self.n)
        if missing and steps_left < NO_BUDGET:  # (no budget: nothing to force, no need to know)
            need = self.need(self.si, missing)
            if need + self.MARGIN * missing >= steps_left:
                self._forcing = True
                after = self._after_need()
                f = (after < need) | (after == 0)
                if need > 0:
                    f = f & ~self.eos
                m = f if m is None else m & f
        return m

    def bias(self, steps_left: int) -> torch.Tensor | None:
        missing = self._missing(self.n)
        if not missing:
            return None
        hits, nice, _ends = self.tables.of(self.si)
        good = nice > 0
        if self.hi is not None:
            good = good & (hits <= self.hi - self.n)
        need = self.need(self.si, missing)
        urgency = max(self.FLOOR, min(1.0, (need + self.MARGIN * missing) / max(steps_left, 1)))
        return good.to(torch.float32) * (self.STEER * urgency)

    def advance(self, token_id: int) -> None:
        if self._forcing:
            self.forced += 1
        hits, _nice, ends = self.tables.of(self.si)
        self.n += int(hits[token_id])
        self.si = int(ends[token_id])

    def done_ok(self) -> bool:
        total = self.n + self.counter.pending(self.state)
        return total >= self.lo and (self.hi is None or total <= self.hi)

    def snapshot(self):
        return (self.si, self.n, self.forced)

    def restore(self, snap) -> None:
        self.si, self.n, self.forced = snap

    # ------------------------------------------------------------ before decoding

    def check_with(self, others) -> None:
        """Refuse, before decoding, a count the vocabulary or the other rules (``others``,
        a MaskSet without this masker) cannot meet, naming them."""
        rule = self.rule
        target = rule.literal if isinstance(rule, TextCount) else rule.word if isinstance(rule, WordCount) else ""
        if not target.isascii():
            raise ImpossibleConstraint(f"'{self.name}': only ASCII text is counted while decoding in this version")
        if not self.lo:
            return
        sample = self._sample()
        by_text = _tail_index(self.vocab)[3]
        # In any case the rule counts (a sentence may have to start with a capital), after
        # a space, a newline, or as the first characters of free text.
        cased = (sample,) if getattr(rule, "case", False) else (sample, sample.capitalize(), sample.upper())
        if not any(_spell(lead + b + v, others, by_text, self.vocab.text_mask())
                   for lead in others.lead_ins() for v in dict.fromkeys(cased) for b in (" ", "\n", "")):
            names = " & ".join(f"'{n}'" for n in others.names) or "the vocabulary"
            raise ImpossibleConstraint(f"'{self.name}': {sample.strip()!r} cannot be written under {names}")

    def _sample(self) -> str:
        """One forceable occurrence, the shortest the automaton's alphabet writes."""
        seen, queue = {self.counter.start}, deque([(self.counter.start, "")])
        while queue:
            s, text = queue.popleft()
            for ch in self.counter.alphabet:
                s2, _h, nice = self.counter.step(s, ch)
                if nice or self.counter.pending(s2):
                    return (text + ch).rstrip()
                if s2 not in seen:
                    seen.add(s2)
                    queue.append((s2, text + ch))
        raise ImpossibleConstraint(f"'{self.name}': no text can hold one occurrence")

    def check_budget(self, max_new_tokens: int) -> None:
        """Refuse a budget in which the occurrences cannot all be written."""
        least = self.need(self.tables.idx(self.counter.start), self.lo)
        if least > max_new_tokens:
            raise ImpossibleConstraint(f"'{self.name}' needs at least {least} tokens, more than the "
                                       f"{max_new_tokens} allowed (raise max_new_tokens)")


def build_counts(cs: list[OccurrenceCount], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    return [CountMasker(c, vocab) for c in cs]
