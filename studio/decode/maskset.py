"""The mask set: one constraint compiled against one vocabulary, for one sequence.

``compile_masks(constraint, vocab)`` is the one explicit compile step.  Each top-level
conjunct of the constraint is claimed by the first family in ``FAMILIES`` (a table, in
this file, read top to bottom: no registration by import side effect), each family
builds its maskers (studio/masks/, a module per family; their heavy tables are derived
once per vocabulary and shared), and the whole set is checked for feasibility before any
decoding.  The result is a ``MaskSet``: the composition the decode loop, next-word
candidates, scoring, the transformers and vLLM bridges and the controllers all use.
Nothing else loops over maskers.

Like xgrammar's compiler / matcher split: the tables are compiled and cached once, the
state (word in progress, line, missing words) belongs to one sequence.  ``fork()`` gives
another sequence its own state over the same tables (variants, search, batched rows).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch

from constraints.base import CharConstraint, Constraint, ImpossibleConstraint, WordConstraint
from constraints.counts import OccurrenceCount
from constraints.formspec import FormConstraint
from constraints.grammar import GrammarRule
from constraints.letters import RequiredChars, conflicts
from constraints.lexicon import Lexicon, lexicon_for
from constraints.sequence import Include, Pangram, Rhopalism
from constraints.layout import LayoutRule
from constraints.layout_plan import literal_words, plan_layout
from constraints.structure import StructureRule
from constraints.structure_plan import plan_structure

from studio.decode.vocab import VocabIndex
from studio.masks.base import NO_BUDGET, Masker
from studio.masks.chars import build_chars, build_pangram, build_required
from studio.masks.counts import CountMasker, build_counts
from studio.masks.forms import build_form
from studio.masks.grammar import build_grammar
from studio.masks.include import IncludeMasker, build_include
from studio.masks.layout import build_layout
from studio.masks.rhopalism import build_rhopalism
from studio.masks.structure import build_structure
from studio.masks.words import build_words

# A builder gets its conjuncts, the vocabulary, and the writer's lexicon of the whole
# constraint (constraints.lexicon.lexicon_for: the words word masks and forms draw on;
# families that judge letters or other units leave it aside).
Builder = Callable[[list, VocabIndex, Lexicon], list[Masker]]

# (constraint class, builder of the maskers for all its conjuncts).  A conjunct belongs to
# the first class it is an instance of, so subclasses come before their bases (a pangram
# is a set of required letters, steered its own way).  The order is also the maskers'.
FAMILIES: tuple[tuple[type, Builder], ...] = (
    (Rhopalism, build_rhopalism),
    (Include, build_include),
    (Pangram, build_pangram),
    (CharConstraint, build_chars),
    (RequiredChars, build_required),
    (WordConstraint, build_words),
    (FormConstraint, build_form),
    (OccurrenceCount, build_counts),
    (StructureRule, build_structure),
    (LayoutRule, build_layout),
    (GrammarRule, build_grammar),
)


class MaskSet:
    """The maskers of one constraint for one sequence, composed.

    Per step: ``bias`` (soft steering, summed), ``allowed`` (hard masks, ANDed with the
    tokens that write text), then ``advance`` with the chosen token.  ``snapshot`` /
    ``restore`` rewind for back-off and search; ``done_ok`` says whether the text may end
    here, ``safe`` whether it may be streamed for good, ``blocking`` which rules leave
    nothing allowed."""

    def __init__(self, maskers: list[Masker], vocab: VocabIndex):
        self.maskers = maskers
        self.vocab = vocab
        self.text_mask = vocab.text_mask()
        self.eos_mask = vocab.ids_mask(vocab.eos_ids)

    def bind(self) -> "MaskSet":
        """Introduce the maskers that plan with the others (``bind(peers)``: structure
        rules end the text only where every rule may) to this set's maskers."""
        for m in self.maskers:
            if hasattr(m, "bind"):
                m.bind(self.maskers)
        return self

    def check_budget(self, max_new_tokens: int) -> None:
        """Refuse, before decoding, a token budget some rule cannot fit (ImpossibleConstraint)."""
        for m in self.maskers:
            if hasattr(m, "check_budget"):
                m.check_budget(max_new_tokens)

    def __len__(self) -> int:
        return len(self.maskers)

    def __iter__(self):
        return iter(self.maskers)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.maskers]

    def of_type(self, kind: type) -> list[Masker]:
        return [m for m in self.maskers if isinstance(m, kind)]

    # ------------------------------------------------------------------ per step

    def reset(self, context: str) -> None:
        """Start a sequence after ``context`` (the text the model continues)."""
        for m in self.maskers:
            m.reset(context)

    def budgets(self, steps_left: int) -> list[int]:
        """The steps left as each masker plans with them, unless it keeps room for the
        others itself (Masker.plans_with_peers): less what the maskers after it must
        still write, and less what the maskers before it reserve (their need and their
        forcing slack).  The order breaks the tie: of two counts that must both still be
        met, the later starts forcing first and is done before the earlier starts, so
        they never force at once (which would leave no token both allow)."""
        if steps_left >= NO_BUDGET:
            return [steps_left] * len(self.maskers)  # nothing counts down (up-front probes)
        needs = [min(m.tokens_needed(), steps_left) for m in self.maskers]
        held = [min(m.tokens_reserved(), steps_left) for m in self.maskers]
        out, before, after = [], 0, sum(needs)
        for m, need, keep in zip(self.maskers, needs, held):
            after -= need
            out.append(steps_left if m.plans_with_peers else steps_left - before - after)
            before += keep
        return out

    def bias(self, steps_left: int) -> torch.Tensor | None:
        total = None
        for m, steps in zip(self.maskers, self.budgets(steps_left)):
            b = m.bias(steps)
            if b is not None:
                total = b if total is None else total + b
        return total

    def allowed(self, steps_left: int) -> torch.Tensor:
        """Tokens every masker allows (EOS as the maskers say)."""
        allowed = self.text_mask
        for m, steps in zip(self.maskers, self.budgets(steps_left)):
            a = m.allowed(steps)
            if a is not None:
                allowed = allowed & a
        return allowed

    def step_mask(self, steps_left: int, may_end: bool = True) -> torch.Tensor:
        """What a decoder may write next: ``allowed``, and EOS only where the text may end
        (every rule done and, by the caller's settings, ``may_end``)."""
        allowed = self.allowed(steps_left)
        if not may_end or not self.done_ok():
            allowed = allowed & ~self.eos_mask
        return allowed

    def advance(self, token_id: int) -> None:
        for m in self.maskers:
            m.advance(token_id)

    def allows(self, token_id: int, steps_left: int = NO_BUDGET) -> bool:
        """Whether every masker allows ``token_id`` now (one token: no full AND)."""
        for m, steps in zip(self.maskers, self.budgets(steps_left)):
            a = m.allowed(steps)
            if a is not None and not bool(a[token_id]):
                return False
        return True

    def done_ok(self) -> bool:
        return all(m.done_ok() for m in self.maskers)

    def safe(self) -> bool:
        return all(m.safe() for m in self.maskers)

    def snapshot(self) -> tuple:
        return tuple(m.snapshot() for m in self.maskers)

    def restore(self, snap: tuple) -> None:
        for m, s in zip(self.maskers, snap):
            m.restore(s)

    def blocking(self, steps_left: int) -> list[str]:
        """The rules that allow nothing now (all of them when none does alone)."""
        names = [m.name for m, steps in zip(self.maskers, self.budgets(steps_left))
                 if (a := m.allowed(steps)) is not None and not bool(a.any())]
        return names or self.names

    def lead_ins(self) -> tuple[str, ...]:
        """Where free text may begin: the very start, or after a lead-in a masker names."""
        return ("",) + tuple(dict.fromkeys(t for m in self.maskers for t in m.lead_ins() if t))

    def static_mask(self) -> torch.Tensor | None:
        """What the rules allow whatever the state (None: no static rule)."""
        out = None
        for m in self.maskers:
            s = m.static_mask()
            if s is not None:
                out = s if out is None else out & s
        return out

    # ------------------------------------------------------------------ sequences

    def fork(self) -> "MaskSet":
        """Another sequence's mask set: the same compiled tables, its own state (a copy
        of this one's now)."""
        twin = MaskSet([copy.copy(m) for m in self.maskers], self.vocab).bind()
        twin.restore(self.snapshot())
        return twin

    def subset(self, maskers) -> "MaskSet":
        """Some of these maskers as a set of their own (sharing their state objects)."""
        return MaskSet(list(maskers), self.vocab)


def compile_masks(constraint: Constraint | None, vocab: VocabIndex) -> MaskSet:
    """The mask set of ``constraint`` over ``vocab``; refuses impossible sets up front
    (ImpossibleConstraint, naming the rules)."""
    if constraint is None:
        return MaskSet([], vocab)
    groups: dict[int, list[Constraint]] = {}
    for leaf in constraint.leaves():
        for i, (kind, _build) in enumerate(FAMILIES):
            if isinstance(leaf, kind):
                groups.setdefault(i, []).append(leaf)
                break
        else:
            raise ImpossibleConstraint(f"no decoder for constraint '{leaf.spec()}' in this version")
    lexicon = lexicon_for(constraint).with_words(literal_words(constraint))
    maskers = [m for i, cs in sorted(groups.items()) for m in FAMILIES[i][1](cs, vocab, lexicon)]
    masks = MaskSet(maskers, vocab).bind()
    check_feasible(constraint, masks)
    return masks


def check_feasible(constraint: Constraint, masks: MaskSet) -> None:
    """Refuse, before decoding, constraint sets no text can satisfy."""
    plan_structure(constraint)  # counts and given words against every rule, with the reason
    plan_layout(constraint)  # literals against every rule, layouts against structure counts
    chars = [c for c in constraint.leaves() if isinstance(c, CharConstraint)]
    for req in (c for c in constraint.leaves() if isinstance(c, RequiredChars)):
        for ch in chars:
            bad = conflicts(ch, req)
            if bad:
                raise ImpossibleConstraint(
                    f"'{req.spec()}' needs the letter '{bad}' but '{ch.spec()}' bans it"
                )
    # Must-use words judge themselves against the other rules: is each word writable?
    others = masks.subset(m for m in masks if not isinstance(m, IncludeMasker))
    for m in masks.of_type(IncludeMasker):
        m.check_with(others)
    # Counts that must be reached: is one occurrence writable under the other rules?
    for m in masks.of_type(CountMasker):
        m.check_with(masks.subset(x for x in masks if x is not m))
    static = masks.static_mask()
    if static is not None:
        # Writing needs letters of the Latin alphabet (the lexicon's and the forms' alphabet).
        vocab = masks.vocab
        letters = vocab.mask("has-latin", lambda _i, t: any("a" <= ch.lower() <= "z" for ch in t),
                             allow_eos=False)
        if not bool((static & letters).any()):
            names = ", ".join(f"'{m.name}'" for m in masks if m.static_mask() is not None)
            raise ImpossibleConstraint(f"{names}: every letter is banned, nothing can be written")
