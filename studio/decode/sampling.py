"""The sampler: greedy / temperature / top-k / top-p / repetition penalty, as the
Settings (studio/decode/settings.py) say.  Everything stays on the logits' device; nothing
edits its input in place."""

from __future__ import annotations

import torch

from studio.decode.settings import Settings


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty: divide positive logits of tokens already seen, multiply negative ones.
    ``seen`` is a bool mask over the vocabulary."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


class Sampler:
    """Chooses the next token from masked logits, on the logits' device."""

    def __init__(self, settings: Settings, device: torch.device):
        self.s = settings
        self.generator = None
        if not settings.greedy:
            self.generator = torch.Generator(device=device)
            if settings.seed is not None:
                self.generator.manual_seed(int(settings.seed))
            else:
                self.generator.seed()

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Token id as a 0-d tensor (no host sync here)."""
        if self.s.greedy:
            return torch.argmax(logits, dim=-1)
        scaled = logits.float() / self.s.temperature
        if self.s.top_k and self.s.top_k < scaled.shape[-1]:
            # Work on the k best only: sorting and sampling 50 values, not the vocabulary.
            vals, idx = torch.topk(scaled, self.s.top_k)
        else:
            vals, idx = torch.sort(scaled, descending=True)
        if self.s.top_p < 1.0:
            p = torch.softmax(vals, dim=-1)
            vals = vals.masked_fill((p.cumsum(-1) - p) >= self.s.top_p, float("-inf"))
        j = torch.multinomial(torch.softmax(vals, dim=-1), 1, generator=self.generator)
        return idx[j[0]]
