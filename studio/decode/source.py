"""Where logits come from (pipeline steps 1-2): a KV-cached forward of the model.

``ModelSource`` is the plain case: one sequence, one cache.  Adapter mixing and prompt
contrast (models/adapters.py, models/controllers.py) provide other sources with the same
three calls, so the decode loop never changes.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache


def _cache_kw(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` during 5.x; accept both."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def forward(model, input_ids: torch.Tensor, cache, **kw):
    """One cached forward; returns (logits, cache)."""
    out = model(input_ids=input_ids, use_cache=True, **{_cache_kw(model): cache}, **kw)
    new_cache = getattr(out, "cache", None)
    return out.logits, new_cache if new_cache is not None else out.past_key_values


class ModelSource:
    """KV-cached next-token logits for one sequence."""

    def __init__(self, model):
        self.model = model
        self.device = next(model.parameters()).device
        self.cache: DynamicCache | None = None
        self.length = 0

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, self.cache = forward(self.model, x, self.cache, logits_to_keep=1)
        self.length += x.shape[1]
        return logits[0, -1].float()

    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Logits after the prompt (a new cache)."""
        self.cache = DynamicCache(config=self.model.config)
        self.length = 0
        return self._forward(torch.tensor([ids], device=self.device))

    def step(self, token_id: int, token: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after appending one token.  ``token``, the sampled id still on the
        device, saves a host-to-device copy per step."""
        x = token.reshape(1, 1) if token is not None else torch.tensor([[token_id]], device=self.device)
        return self._forward(x)

    def crop(self, length: int) -> None:
        """Forget everything after the first ``length`` tokens (dead-end back-off)."""
        if length < self.length:
            self.cache.crop(-(self.length - length))  # negative: tokens to remove
            self.length = length
