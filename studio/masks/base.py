"""The Masker protocol: one kind of constraint as per-step token masks (pipeline step 4).

A Masker turns one kind of constraint into a boolean mask over the vocabulary at each
step, keeping whatever state it needs (the tail of the text, the word in progress, what
is still missing).  Masks are built once and cached on the model's device; per step a
masker only looks up and combines tensors.  ``studio.decode.maskset`` compiles a
constraint into the maskers of each family (this package, a module per family) and
composes them; nothing else loops over maskers.
"""

from __future__ import annotations

import torch

from studio.decode.vocab import VocabIndex

NO_BUDGET = 10**6  # steps left when nothing counts down (candidates, up-front checks)


class Masker:
    """One constraint (or a group of the same kind) as per-step masks."""

    # A masker that keeps room itself for what its peers must still write (structure and
    # layout rules read the peers' ``tokens_needed``) gets the whole budget; every other
    # masker gets the budget less what the others still need (MaskSet.budgets), so two
    # counts, or a count and a closing phrase, do not both plan on the same last tokens.
    plans_with_peers = False

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

    def tokens_needed(self) -> int:
        """The fewest tokens this rule still has to write (0: it can end any time)."""
        return 0

    def lead_ins(self) -> tuple[str, ...]:
        """Texts after which the model may write freely, where the rule makes the text
        start with something else (a wrapping quote, a title's "<<", a JSON string's
        opening): up-front checks probe a required word there, not at the very start."""
        return ()

    def tokens_reserved(self) -> int:
        """The tokens it keeps for itself: its need and the slack it starts forcing with."""
        return self.tokens_needed()

    def peer_need(self) -> int:
        """What the other maskers of its set still have to write, for one that keeps that
        room itself (``plans_with_peers``; ``bind`` gives it ``peers``)."""
        return sum(m.tokens_needed() for m in getattr(self, "peers", ()))

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
