"""Character-level maskers: banned characters and strings (a static mask plus strings that
span tokens), required letters and pangrams (steered, then forced, never ended early)."""

from __future__ import annotations

import torch

from constraints.base import CharConstraint
from constraints.letters import RequiredChars
from constraints.sequence import Pangram

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker


class CharMasker(Masker):
    """Character rules: a static mask (a token passes iff its text passes) plus banned
    multi-character strings, which can span tokens: if the text ends with the first k
    characters of a banned string, tokens starting with the rest are masked too."""

    def __init__(self, constraints: list[CharConstraint], vocab: VocabIndex):
        super().__init__(" & ".join(c.spec() for c in constraints), vocab)
        self.constraints = constraints
        self._static = vocab.mask(("char", self.name), self._token_ok)
        self._strings = [
            (s, c.ignore_case) for c in constraints for s in c.banned_strings
        ]
        self._window = max((len(s) for s, _ in self._strings), default=1) - 1
        self.tail = ""

    def _token_ok(self, _id: int, text: str) -> bool:
        for c in self.constraints:
            if not all(c.char_ok(ch) for ch in text):
                return False
            hay = text.lower() if c.ignore_case else text
            if any(s in hay for s in c.banned_strings):
                return False
        return True

    def _starts_with(self, rest: str, ignore_case: bool) -> torch.Tensor:
        def starts(_i, t):
            return (t.lower() if ignore_case else t).startswith(rest)

        return self.vocab.mask(("starts", rest, ignore_case), starts, allow_eos=False)

    def reset(self, context: str) -> None:
        self.tail = context[-self._window:] if self._window else ""

    def static_mask(self) -> torch.Tensor:
        return self._static

    def allowed(self, steps_left: int) -> torch.Tensor:
        mask = self._static
        for s, ignore_case in self._strings:
            tail = self.tail.lower() if ignore_case else self.tail
            for k in range(1, len(s)):
                if tail.endswith(s[:k]):
                    mask = mask & ~self._starts_with(s[k:], ignore_case)
        return mask

    def advance(self, token_id: int) -> None:
        if self._window:
            self.tail = (self.tail + self.vocab.texts[token_id])[-self._window:]

    def snapshot(self):
        return self.tail

    def restore(self, snap) -> None:
        self.tail = snap


class RequiredMasker(Masker):
    """Required letters: steer toward missing ones as the budget shrinks, force them when
    only as many steps remain as letters are missing (plus one to finish a word), and
    forbid ending the text while any is missing."""

    STEER = 3.0  # logit bonus at full urgency

    def __init__(self, constraint: RequiredChars, vocab: VocabIndex):
        super().__init__(constraint.spec(), vocab)
        self.constraint = constraint
        self.missing = set(constraint.chars)

    def _has(self, ch: str) -> torch.Tensor:
        return self.vocab.mask(("has", ch), lambda _i, t: ch in t.lower(), allow_eos=False)

    def _any_missing(self) -> torch.Tensor:
        key = ("has-any", "".join(sorted(self.missing)))
        chars = frozenset(self.missing)
        return self.vocab.mask(key, lambda _i, t: any(c in t.lower() for c in chars), allow_eos=False)

    def reset(self, context: str) -> None:
        self.missing = set(self.constraint.chars)

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        if not self.missing:
            return None
        if steps_left <= len(self.missing) + 1:
            return self._any_missing()
        return self.vocab.mask("no-eos", lambda _i, t: True, allow_eos=False)

    def bias(self, steps_left: int) -> torch.Tensor | None:
        if not self.missing:
            return None
        urgency = min(1.0, (len(self.missing) + 1) / max(steps_left, 1))
        return self._any_missing().to(torch.float32) * (self.STEER * urgency)

    def advance(self, token_id: int) -> None:
        if self.missing:
            text = self.vocab.texts[token_id].lower()
            self.missing = {c for c in self.missing if c not in text}

    def done_ok(self) -> bool:
        return not self.missing

    def snapshot(self):
        return frozenset(self.missing)

    def restore(self, snap) -> None:
        self.missing = set(snap)


class PangramMasker(RequiredMasker):
    """Required letters, steered for a whole alphabet.  Common letters come by themselves;
    the rare ones (q, j, z, x, ...) get a bonus by their rarity in the vocabulary, from the
    start, so " quiz" has its chance long before forcing must spell out a q.  A token's
    bonus is that of the rarest missing letter it uses."""

    STEER = 3.0
    FLOOR = 0.5

    def __init__(self, constraint: Pangram, vocab: VocabIndex):
        super().__init__(constraint, vocab)
        n = max(1, sum(1 for t in vocab.texts if t.strip().isalpha()))
        self._weight = {}
        for c in constraint.chars:
            share = float(self._has(c).sum()) / n
            self._weight[c] = min(2.0, 0.02 / max(share, 1e-4))  # q ~1.7, x ~0.9, e ~0.04
        self._bias_cache: dict[frozenset, torch.Tensor] = {}

    def bias(self, steps_left: int) -> torch.Tensor | None:
        if not self.missing:
            return None
        key = frozenset(self.missing)
        unit = self._bias_cache.get(key)
        if unit is None:
            unit = torch.zeros(self.vocab.size, dtype=torch.float32, device=self.vocab.device)
            for c in self.missing:
                unit = torch.maximum(unit, self._has(c).to(torch.float32) * self._weight[c])
            self._bias_cache[key] = unit
        urgency = min(1.0, (len(self.missing) + 1) / max(steps_left, 1))
        return unit * (self.STEER * max(urgency, self.FLOOR))


def build_chars(cs: list[CharConstraint], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    """All character rules share one masker: their static masks AND once."""
    return [CharMasker(cs, vocab)]


def build_required(cs: list[RequiredChars], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    return [RequiredMasker(c, vocab) for c in cs]


def build_pangram(cs: list[Pangram], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    return [PangramMasker(c, vocab) for c in cs]
