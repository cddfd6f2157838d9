"""Rhopalism as token masks: each word one letter (or syllable) longer than the last.

State: the word in progress ``p`` and ``need``, the lengths the current word may have
(None: any, for the first word and after a sentence end with ``+restart``).  The words of
each ``need`` form a WordSet from the lexicon; a token is allowed iff

  - it has no boundary and ``p + text`` is a prefix of a word in ``need``'s set, or
  - it has one, ``p + head`` is empty or a whole word of the set, and what follows the
    head (boundaries, complete middle words, a tail that starts the next word) obeys the
    chain from the length that word sets.

The second part depends on the state only through the ``need`` after the head word, so
for each such ``need`` it is one static mask over the vocabulary (built on first use);
the first part walks the token trie along prefixes alive in the word set, cached per
state, as WordSet.mask does.
"""

from __future__ import annotations

import torch

from constraints.cache import BoundedCache

from constraints.lexicon import default_lexicon, normalize
from constraints.sequence import SENTENCE_END, Rhopalism, word_measures

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker
from constraints.units import is_word_char
from studio.masks.words import WordSet, _WordState, split_runs, token_words

Need = frozenset | None


class _Tables:
    """Per (vocabulary, unit, restart): word sets per need, chain masks per need."""

    def __init__(self, vocab: VocabIndex, unit: str, restart: bool):
        self.vocab, self.unit, self.restart = vocab, unit, restart
        self.tw = token_words(vocab)
        self.measures: dict[str, frozenset[int]] = {}
        for w in default_lexicon():
            m = word_measures(w, unit)
            if m:
                self.measures[w] = m
        self._sets: dict[Need, WordSet] = {}
        self._chains: dict[tuple, torch.Tensor] = {}
        # What follows each bounded token's head: ("b", ends a sentence) / ("w", word).
        self.after: dict[int, list[tuple[str, object]]] = {}
        for i, text in enumerate(vocab.texts):
            if vocab.special[i] or not self.tw.has_boundary[i]:
                continue
            runs = split_runs(text)
            if runs[0][0]:
                runs = runs[1:]  # the head: judged per state
            self.after[i] = [("w", normalize(r)) if k else ("b", any(c in SENTENCE_END for c in r))
                             for k, r in runs]

    def fits(self, word: str, need: Need) -> frozenset[int]:
        have = self.measures.get(word, frozenset())
        return have if need is None else have & need

    @staticmethod
    def next_need(fits: frozenset[int]) -> frozenset[int]:
        return frozenset(n + 1 for n in fits)

    def words(self, need: Need) -> WordSet:
        ws = self._sets.get(need)
        if ws is None:
            words = [w for w in self.measures if self.fits(w, need)]
            ws = self._sets[need] = WordSet(words, self.vocab, f"rhopalism:{sorted(need or ())}")
        return ws

    def chain(self, need: Need, final: bool = False) -> torch.Tensor:
        """Bounded tokens whose part after the head obeys the chain starting at ``need``
        (``final``: and the text could end right after them)."""
        m = self._chains.get((need, final))
        if m is None:
            ok = [False] * self.vocab.size
            for i, items in self.after.items():
                ok[i] = self._chain_ok(items, need, final)
            m = torch.tensor(ok, dtype=torch.bool, device=self.vocab.device)
            self._chains[(need, final)] = m
        return m

    def _chain_ok(self, items, need: Need, final: bool) -> bool:
        for n, (kind, val) in enumerate(items):
            if kind == "b":
                if val and self.restart:
                    need = None
                continue
            if n == len(items) - 1 and not final:  # the tail: a word still being written
                return self.words(need).is_prefix(val)
            fits = self.fits(val, need)
            if not fits:
                return False
            need = self.next_need(fits)
        return True


_TABLES: dict[tuple, _Tables] = {}


def _tables(vocab: VocabIndex, unit: str, restart: bool) -> _Tables:
    key = (id(vocab), unit, restart)
    t = _TABLES.get(key)
    if t is None or t.vocab is not vocab:
        t = _TABLES[key] = _Tables(vocab, unit, restart)
    return t


class RhopalismMasker(_WordState):
    def __init__(self, constraint: Rhopalism, vocab: VocabIndex):
        super().__init__(constraint.spec(), vocab)
        self.t = _tables(vocab, constraint.unit, constraint.restart)
        self.restart = constraint.restart
        self.need: Need = None
        self._masks: BoundedCache[torch.Tensor] = BoundedCache(8192)
        self.eos = vocab.ids_mask(vocab.eos_ids)

    def reset(self, context: str) -> None:
        super().reset(context)
        self.need = None  # the generated text starts a chain of its own

    def _state_mask(self, p: str, need: Need, final: bool) -> torch.Tensor:
        key = (p, need, final)
        m = self._masks.get(key)
        if m is not None:
            return m
        t, tw = self.t, self.tw
        ws = t.words(need)
        pure: list[int] = []
        bounded: dict[Need, list[int]] = {}
        stack = [("", tw.root)]
        while stack:
            s, node = stack.pop()
            word = p + s
            if s and (not final or word in ws.set):
                pure.extend(node.pure)
            if node.bounded:
                if not word:
                    bounded.setdefault(need, []).extend(node.bounded)
                elif word in ws.set:
                    bounded.setdefault(t.next_need(t.fits(word, need)), []).extend(node.bounded)
            for ch, child in node.children.items():
                if ws.is_prefix(word + ch):
                    stack.append((s + ch, child))
        m = self.vocab.ids_mask(pure)
        for nxt, ids in bounded.items():
            m = m | (self.vocab.ids_mask(ids) & t.chain(nxt, final))
        m = m & tw.clean_mask
        if not p or p in ws.set:
            m = m | self.eos
        self._masks[key] = m
        return m

    def allowed(self, steps_left: int) -> torch.Tensor:
        return self._break(self._state_mask(self.p, self.need, final=steps_left <= 1))

    def advance(self, token_id: int) -> None:
        self.must_break = False
        t = self.t
        for ch in self.vocab.texts[token_id]:  # one token's few characters
            if is_word_char(ch):
                self.p += normalize(ch)
                continue
            if self.p:
                self.need = t.next_need(t.fits(self.p, self.need))
                self.p = ""
            if self.restart and ch in SENTENCE_END:
                self.need = None

    def done_ok(self) -> bool:
        return not self.p or self.p in self.t.words(self.need).set

    def snapshot(self):
        return (self.p, self.must_break, self.need)

    def restore(self, snap) -> None:
        self.p, self.must_break, self.need = snap


def build_rhopalism(cs: list[Rhopalism], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    return [RhopalismMasker(c, vocab) for c in cs]
