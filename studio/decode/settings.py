"""Generation settings: the sampling knobs, the budget, stop strings and back-off bound,
validated with messages that name the setting.  Torch-free, so the command line can build
its options without loading torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from constraints.base import shown

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
        # Types before ranges: a value sent as JSON or typed in a box may be any type, and a
        # comparison with the wrong one fails with Python's words instead of the setting's name.
        def bad(name, why):
            raise ValueError(f"{name} {why} (got {shown(getattr(self, name))})")

        def whole(name):
            v = getattr(self, name)
            return isinstance(v, int) and not isinstance(v, bool)

        def real(name):
            v = getattr(self, name)
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if not whole("max_new_tokens") or self.max_new_tokens < 1:
            bad("max_new_tokens", "must be a positive integer")
        if not whole("min_new_tokens") or self.min_new_tokens < 0:
            bad("min_new_tokens", "must be a non-negative integer")
        if self.min_new_tokens > self.max_new_tokens:
            bad("min_new_tokens", f"must not exceed max_new_tokens ({self.max_new_tokens})")
        if not real("temperature") or not (self.temperature > 0):
            bad("temperature", "must be a number > 0 (use greedy for deterministic decoding)")
        if not whole("top_k") or self.top_k < 0:
            bad("top_k", "must be an integer >= 0 (0 turns it off)")
        if not real("top_p") or not (0 < self.top_p <= 1):
            bad("top_p", "must be a number in (0, 1] (1 turns it off)")
        if not real("repetition_penalty") or not (self.repetition_penalty > 0):
            bad("repetition_penalty", "must be a number > 0 (1 turns it off)")
        if not isinstance(self.greedy, bool):
            bad("greedy", "must be true or false")
        # torch's generators take a 64-bit seed; a larger one fails later, in the decoder thread.
        if self.seed is not None and (not whole("seed") or not 0 <= self.seed < 2**63):
            bad("seed", f"must be empty or a whole number from 0 to {2**63 - 1}")
        if not whole("max_backoffs") or self.max_backoffs < 0:
            bad("max_backoffs", "must be an integer >= 0")
        # A bare string would be read letter by letter as stop strings.
        if not isinstance(self.stop, (list, tuple)) or any(not isinstance(x, str) or not x for x in self.stop):
            bad("stop", "must be a list of non-empty strings")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(shown(k) for k in sorted(map(str, unknown)))}")
        return cls(**d)
