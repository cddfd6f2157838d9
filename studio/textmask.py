"""Whole-text maskers: must-use words, pangrams, rhopalism (docs/design.md, "Two levels of
constraint (and a third for whole texts)").  ``masks._load_builders`` imports this module;
importing it registers the builders.

E-Prime, reverse lipograms, themes and the text transforms need no masker of their own:
they are word or character rules, decoded by wordmask.py and masks.CharMasker.
"""

from __future__ import annotations

import torch

from constraints.base import Constraint
from constraints.sequence import Include, Pangram, Rhopalism

from .includemask import IncludeMasker
from .masks import BUILDERS, Builder, RequiredMasker
from .rhopalmask import RhopalismMasker
from .vocab import VocabIndex


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


def forcing(generation) -> dict:
    """How much must-use forcing a finished generation needed: the tokens chosen under
    forcing, and the words they wrote a part of (the fewer, the more natural the text)."""
    ms = [m for m in generation.maskers if isinstance(m, IncludeMasker)]
    return {"forced_tokens": sum(m.forced for m in ms),
            "forced_words": sorted({w for m in ms for w in m.forced_words}),
            "words": sorted({w for m in ms for w in m.constraint.words})}


def _register_first(claims) -> callable:
    """Register a builder ahead of the generic ones (RequiredMasker, word masks), so it
    claims its constraints first."""

    def deco(builder: Builder) -> Builder:
        BUILDERS.insert(0, (claims, builder))
        return builder

    return deco


def _claims(kind: type):
    def claims(c: Constraint) -> bool:
        return isinstance(c, kind)

    return claims


@_register_first(_claims(Pangram))
def _pangram(cs, vocab):
    return [PangramMasker(c, vocab) for c in cs]


@_register_first(_claims(Include))
def _include(cs, vocab):
    return [IncludeMasker(c, vocab) for c in cs]


@_register_first(_claims(Rhopalism))
def _rhopalism(cs, vocab):
    return [RhopalismMasker(c, vocab) for c in cs]


__all__ = ["PangramMasker", "IncludeMasker", "RhopalismMasker", "forcing"]
