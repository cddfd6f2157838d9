"""From constraints to per-step token masks (pipeline step 4).

A Masker turns one kind of constraint into a boolean mask over the vocabulary at each
step, keeping whatever state it needs (the tail of the text, the word in progress, what
is still missing).  Masks are built once and cached on the model's device; per step a
masker only looks up and combines tensors.

Builders for each level register in ``BUILDERS``; ``build_maskers`` groups the top-level
conjuncts of a constraint and asks each builder for its maskers.
"""

from __future__ import annotations

from typing import Callable

import torch

from constraints.base import CharConstraint, Constraint, ImpossibleConstraint
from constraints.letters import RequiredChars, conflicts

from .vocab import VocabIndex


class Masker:
    """One constraint (or a group of the same kind) as per-step masks."""

    def __init__(self, name: str, vocab: VocabIndex):
        self.name = name  # the spec, for messages
        self.vocab = vocab

    def reset(self, context: str) -> None:
        """Start a new generation after ``context`` (the text the model continues)."""

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        """Boolean mask of allowed next tokens (EOS included), or None for 'all'."""
        return None

    def bias(self, steps_left: int) -> torch.Tensor | None:
        """Soft steering added to the logits (float tensor), or None."""
        return None

    def advance(self, token_id: int) -> None:
        """The token was chosen: update state."""

    def done_ok(self) -> bool:
        """Whether the text may end here."""
        return True

    def safe(self) -> bool:
        """Whether text up to here can be streamed for good.  Rules that force their way
        to the end (required letters) are always safe; a rule that may have to trim the
        text back to its last good point (line-final words) is safe only where it holds."""
        return True

    def snapshot(self):
        return None

    def restore(self, snap) -> None:
        pass

    def static_mask(self) -> torch.Tensor | None:
        """What is allowed regardless of state (for up-front feasibility checks)."""
        return None


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


# ------------------------------------------------------------------ building

Builder = Callable[[list[Constraint], VocabIndex], list[Masker]]
# (claims(constraint) -> bool, builder for all the claimed conjuncts together)
BUILDERS: list[tuple[Callable[[Constraint], bool], Builder]] = []


def register_builder(claims: Callable[[Constraint], bool]):
    def deco(builder: Builder) -> Builder:
        BUILDERS.append((claims, builder))
        return builder

    return deco


@register_builder(lambda c: isinstance(c, CharConstraint))
def _char(cs, vocab):
    return [CharMasker(cs, vocab)]


@register_builder(lambda c: isinstance(c, RequiredChars))
def _required(cs, vocab):
    return [RequiredMasker(c, vocab) for c in cs]


def _load_builders() -> None:
    # Word- and text-level maskers register themselves when their modules are imported.
    import importlib

    for mod in ("wordmask", "formmask", "textmask"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise


def build_maskers(constraint: Constraint | None, vocab: VocabIndex) -> list[Masker]:
    """Maskers for every conjunct of ``constraint``; refuses impossible sets up front."""
    if constraint is None:
        return []
    _load_builders()
    groups: dict[int, list[Constraint]] = {}
    for leaf in constraint.leaves():
        for i, (claims, _b) in enumerate(BUILDERS):
            if claims(leaf):
                groups.setdefault(i, []).append(leaf)
                break
        else:
            raise ImpossibleConstraint(f"no decoder for constraint '{leaf.spec()}' in this version")
    maskers = [m for i, cs in sorted(groups.items()) for m in BUILDERS[i][1](cs, vocab)]
    check_feasible(constraint, maskers, vocab)
    return maskers


def check_feasible(constraint: Constraint, maskers: list[Masker], vocab: VocabIndex) -> None:
    """Refuse, before decoding, constraint sets no text can satisfy."""
    chars = [c for c in constraint.leaves() if isinstance(c, CharConstraint)]
    for req in (c for c in constraint.leaves() if isinstance(c, RequiredChars)):
        for ch in chars:
            bad = conflicts(ch, req)
            if bad:
                raise ImpossibleConstraint(
                    f"'{req.spec()}' needs the letter '{bad}' but '{ch.spec()}' bans it"
                )
    # Maskers that need the whole set to judge themselves (must-use words: is each word
    # still writable under the other rules?) raise ImpossibleConstraint here.
    for m in maskers:
        hook = getattr(m, "check_with", None)
        if hook is not None:
            hook(maskers)
    static = [m.static_mask() for m in maskers if m.static_mask() is not None]
    if static:
        allowed = static[0]
        for m in static[1:]:
            allowed = allowed & m
        # Writing needs letters of the Latin alphabet (the lexicon's and the forms' alphabet).
        letters = vocab.mask("has-latin", lambda _i, t: any("a" <= ch.lower() <= "z" for ch in t),
                             allow_eos=False)
        if not bool((allowed & letters).any()):
            names = ", ".join(f"'{m.name}'" for m in maskers if m.static_mask() is not None)
            raise ImpossibleConstraint(f"{names}: every letter is banned, nothing can be written")
