"""Sampling settings and the sampler: greedy / temperature / top-k / top-p / repetition
penalty.  Everything stays on the logits' device; nothing edits its input in place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

# Writing defaults, chosen by bench/defaults.py (distinct-2 and repetition over prompts,
# with and without a lipogram): greedy decoding under a lipogram loops, so we sample.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_K = 50
DEFAULT_TOP_P = 0.95
DEFAULT_REPETITION_PENALTY = 1.1  # bench/results/defaults.md


@dataclass
class Settings:
    max_new_tokens: int = 80
    min_new_tokens: int = 0
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K  # 0 = off
    top_p: float = DEFAULT_TOP_P  # 1.0 = off
    repetition_penalty: float = DEFAULT_REPETITION_PENALTY  # 1.0 = off
    greedy: bool = False
    seed: int | None = None
    stop: list[str] = field(default_factory=list)  # stop strings, not included in the output
    max_backoffs: int = 64  # dead-end back-offs before giving up

    def __post_init__(self):
        self.validate()

    def validate(self) -> "Settings":
        def bad(name, why):
            raise ValueError(f"{name} {why} (got {getattr(self, name)!r})")

        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            bad("max_new_tokens", "must be a positive integer")
        if not isinstance(self.min_new_tokens, int) or self.min_new_tokens < 0:
            bad("min_new_tokens", "must be a non-negative integer")
        if self.min_new_tokens > self.max_new_tokens:
            bad("min_new_tokens", f"must not exceed max_new_tokens ({self.max_new_tokens})")
        if not (self.temperature > 0):
            bad("temperature", "must be > 0 (use greedy for deterministic decoding)")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            bad("top_k", "must be an integer >= 0 (0 turns it off)")
        if not (0 < self.top_p <= 1):
            bad("top_p", "must be in (0, 1] (1 turns it off)")
        if not (self.repetition_penalty > 0):
            bad("repetition_penalty", "must be > 0 (1 turns it off)")
        if self.max_backoffs < 0:
            bad("max_backoffs", "must be >= 0")
        if any(not isinstance(s, str) or not s for s in self.stop):
            bad("stop", "must be non-empty strings")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**d)


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
