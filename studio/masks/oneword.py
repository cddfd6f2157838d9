"""``one-word`` as a mask: the whole text is one word, a dictionary word meeting the char
count and the letters at positions when one exists, else letters placed to meet them."""

from __future__ import annotations

import torch

from constraints.base import ImpossibleConstraint
from constraints.lexicon import default_lexicon
from constraints.structure import ANY, Count
from constraints.structure_plan import StructurePlan
from constraints.units import unit_key

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker
from studio.masks.structure_tokens import INF, LET, SLET, is_letters, structure_tokens
from studio.masks.words import WordMasker, WordSet, token_words

class OneWordMasker(Masker):
    """The whole text is one word: a dictionary word that meets the char count and the
    letters at positions if there is one, else letters that do."""

    def __init__(self, plan: StructurePlan, vocab: VocabIndex, name: str):
        super().__init__(name, vocab)
        self.plan = plan
        self.toks = structure_tokens(vocab)
        self.tw = token_words(vocab)
        t = plan.text
        self.count = t.chars if t.chars != ANY else Count(1)
        self.at = {p: ch.lower() for p, ch in t.char_at.items()}
        self.given = t.at.get(1) or t.at.get(-1)
        self.peers: list[Masker] = []
        self._words: WordSet | None = None
        self._letters: dict[int, torch.Tensor] = {}
        self.reset("")

    def bind(self, peers) -> None:
        self.peers = [m for m in peers if m is not self]
        self._words = None

    def _fits(self, word: str) -> bool:
        n = len(word)
        if n not in self.count:
            return False
        if self.given is not None and word != unit_key(self.given):
            return False
        for p, ch in self.at.items():
            i = p - 1 if p > 0 else n + p
            if not 0 <= i < n or word[i] != ch:
                return False
        return True

    def word_set(self) -> WordSet | None:
        """The dictionary words that fit (None: none does; letters are then free)."""
        if self._words is None:
            peer = next((m.words.set for m in self.peers if isinstance(m, WordMasker) and m.scope == "every"), None)
            pool = peer if peer is not None else default_lexicon().words
            words = frozenset(w for w in pool if is_letters(w) and self._fits(w))
            if self.given is not None and is_letters(self.given):
                words |= {unit_key(self.given)}
            self._words = WordSet(words, self.vocab, "one-word:" + self.name) if words else False
        return self._words or None

    def reset(self, context: str) -> None:
        self.p = ""
        self.case = 0
        self.drop = context.endswith(" ")

    def snapshot(self):
        return (self.p, self.case)

    def restore(self, snap) -> None:
        self.p, self.case = snap

    def allowed(self, steps_left: int) -> torch.Tensor:
        T = self.toks
        first = (T.masks[LET] | (T.masks[SLET] if (self.drop and not self.p) else T.none)) & T.alpha
        ws = self.word_set()
        if ws is not None:
            return ws.mask(self.p, final=steps_left <= 1, case=self.case if self.p else None) & (first | T.eos)
        # No dictionary word fits: letters, placed where the positions say.
        m = first & self._letter_mask(len(self.p)) & (self.toks.case[self.case] if self.p else self.toks.case[0])
        if self.done_ok():
            m = m | T.eos
        return m

    def _letter_mask(self, at: int) -> torch.Tensor:
        """Letter tokens that, written from position ``at``, keep the count and the
        positive positions reachable (negative ones need the final length: checked by
        done_ok and by the length bound)."""
        hit = self._letters.get(at)
        if hit is None:
            hi = self.count.hi if self.count.hi is not None else INF
            ok = []
            for i, q in enumerate(self.toks.letters):
                if not q or at + len(q) > hi:
                    continue
                if all(q[p - 1 - at] == ch for p, ch in self.at.items() if p > 0 and at < p <= at + len(q)):
                    ok.append(i)
            hit = self._letters[at] = self.vocab.ids_mask(ok)
        return hit

    def advance(self, token_id: int) -> None:
        q = self.toks.letters[token_id]
        self.case = self.tw.next_case(self.case, token_id) if self.p else self.tw.next_case(0, token_id)
        self.p += q

    def done_ok(self) -> bool:
        return bool(self.p) and self._fits(self.p)

    def safe(self) -> bool:
        return True

    def check_budget(self, max_new_tokens: int) -> None:
        if self.count.lo > max_new_tokens * self.toks.max_len:
            raise ImpossibleConstraint(f"'{self.name}' needs {self.count.lo} letters, more than "
                                       f"{max_new_tokens} tokens can write")
