"""Our constraints as a ``transformers.LogitsProcessor``, for ``model.generate``.

    proc = ConstraintLogitsProcessor(parse_spec("lipogram:e"), tokenizer)
    model.generate(ids, logits_processor=LogitsProcessorList([proc]), max_new_tokens=50)

Each row of the batch (beams included) keeps its own masker state, found by the tokens it
generated so far, so beam reordering and sampling both work.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from constraints.base import Constraint

from studio.decode.maskset import compile_masks
from studio.decode.vocab import vocab_index


class ConstraintLogitsProcessor(LogitsProcessor):
    def __init__(self, constraint: Constraint, tokenizer, vocab_size: int | None = None,
                 context: str = "", max_new_tokens: int | None = None):
        if constraint is None:
            raise ValueError("constraint must be a Constraint (got None)")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
        self.constraint = constraint
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.context = context
        self.max_new_tokens = max_new_tokens
        self.reset()

    def reset(self) -> None:
        """Forget all state; call before each generation (done automatically on a new prompt)."""
        self._prompt_len: int | None = None
        self._states: dict[tuple, list] = {}
        self._vocab = None
        self._masks = None

    def _setup(self, scores: torch.Tensor, prompt_len: int) -> None:
        size = self.vocab_size or scores.shape[-1]
        self._vocab = vocab_index(self.tokenizer, size, scores.device)
        self._masks = compile_masks(self.constraint, self._vocab)
        self._masks.reset(self.context)
        self._prompt_len = prompt_len
        self._states = {(): self._masks.snapshot()}

    def _state_for(self, generated: tuple) -> list:
        state = self._states.get(generated)
        if state is None:
            self._masks.restore(self._state_for(generated[:-1]))
            self._masks.advance(generated[-1])
            state = self._masks.snapshot()
            self._states[generated] = state
        return state

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prompt_len is None or input_ids.shape[1] <= self._prompt_len:  # a new generation
            self._setup(scores, input_ids.shape[1])
        step = input_ids.shape[1] - self._prompt_len
        steps_left = (self.max_new_tokens - step) if self.max_new_tokens else 10**6
        rows = []
        for row in input_ids[:, self._prompt_len:].tolist():
            self._masks.restore(self._state_for(tuple(row)))
            rows.append(self._masks.step_mask(steps_left))
        allowed = torch.stack(rows)
        if allowed.shape[-1] < scores.shape[-1]:  # a padded output layer
            pad = torch.zeros(allowed.shape[0], scores.shape[-1] - allowed.shape[-1],
                              dtype=torch.bool, device=allowed.device)
            allowed = torch.cat([allowed, pad], dim=-1)
        return scores.masked_fill(~allowed, float("-inf"))
