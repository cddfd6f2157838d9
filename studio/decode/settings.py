"""Generation settings: the sampling knobs, the budget, stop strings and back-off bound,
validated with messages that name the setting.  Torch-free, so the command line can build
its options without loading torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

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
