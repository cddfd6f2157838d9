"""Speed measurements as honest ratios (``perec bench``, ``make bench``); never asserted in tests.

Every row is timed the same way: the same prompts, the same number of new tokens (the end
of text is held off so every run writes exactly that many), the same number of rounds.
The rows are interleaved round by round, so a change in the machine's load hits them
alike; a ratio is computed within each round and reported as the median over rounds with
the minimum and maximum beside it, and every round's value is kept.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from constraints.spec import parse_spec
from studio.decode.settings import Settings

PROMPTS = (
    "The old house on the hill",
    "She opened the letter and",
    "In the morning the village",
)


@dataclass
class Rows:
    """Seconds per row per round; ratios of two rows, round by round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # tokens one run of the row writes

    def time(self, name: str, tokens: int, fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        self.seconds.setdefault(name, []).append(dt)
        self.tokens[name] = tokens
        return dt

    def tps(self, name: str) -> list[float]:
        return [self.tokens[name] / s for s in self.seconds[name]]

    def ratio(self, num: str, den: str, speed: bool = True) -> list[float]:
        """Per round: tokens/s of ``num`` over tokens/s of ``den`` (``speed=False``: the
        plain ratio of seconds)."""
        a, b = self.seconds[num], self.seconds[den]
        if speed:
            return [(self.tokens[num] / x) / (self.tokens[den] / y) for x, y in zip(a, b)]
        return [x / y for x, y in zip(a, b)]


def summary(values: list[float], fmt: str = "{:.2f}") -> str:
    """'median [min–max] (n runs: a, b, c)'."""
    med = statistics.median(values)
    runs = ", ".join(fmt.format(v) for v in values)
    return f"{fmt.format(med)} [{fmt.format(min(values))}–{fmt.format(max(values))}] ({len(values)} runs: {runs})"


def hf_generate(engine, prompt: str, tokens: int, processors=None) -> list[int]:
    from transformers import LogitsProcessorList

    ids = engine.tokenizer(prompt, return_tensors="pt").input_ids.to(engine.device)
    with torch.inference_mode():
        out = engine.model.generate(
            ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
            logits_processor=LogitsProcessorList(processors or []),
            pad_token_id=engine.tokenizer.eos_token_id,
        )
    return out[0, ids.shape[1]:].tolist()


def ours(engine, prompt: str, tokens: int, spec: str | None) -> list[int]:
    c = parse_spec(spec) if spec else None
    s = Settings(max_new_tokens=tokens, min_new_tokens=tokens, greedy=True, repetition_penalty=1.0)
    return engine.generate(prompt, c, s).token_ids


@torch.inference_mode()
def ctgs_baseline(engine, prompt: str, tokens: int, banned: str = "e") -> str:
    """The original studio's loop: no KV cache, the whole vocabulary decoded and filtered
    as strings in Python every step."""
    tok, model = engine.tokenizer, engine.model
    text = prompt
    for _ in range(tokens):
        ids = tok(text, return_tensors="pt").input_ids.to(engine.device)
        logits = model(input_ids=ids).logits[0, -1]
        order = torch.argsort(logits, descending=True).tolist()
        strings = [tok.decode([i]) for i in range(len(tok))]
        for i in order:
            if i < len(strings) and strings[i] and banned not in strings[i].lower():
                text += strings[i]
                break
    return text[len(prompt):]


def run_speed(engine, tokens: int = 100, repeats: int = 3, spec: str = "lipogram:e", prompts=PROMPTS) -> dict:
    """Our loop against transformers' generate, and constrained against unconstrained:
    ``repeats`` interleaved rounds over ``prompts``."""
    from studio.bridges.hf import ConstraintLogitsProcessor

    # Warm up: build masks and caches once, so rows compare steady-state decoding.
    ours(engine, prompts[0], 4, spec)
    hf_generate(engine, prompts[0], 4)
    c = parse_spec(spec)
    rows = Rows()
    n = tokens * len(prompts)
    fns = {
        "transformers generate": lambda: [hf_generate(engine, p, tokens) for p in prompts],
        "ours, unconstrained": lambda: [ours(engine, p, tokens, None) for p in prompts],
        f"ours, {spec}": lambda: [ours(engine, p, tokens, spec) for p in prompts],
        f"generate + our LogitsProcessor, {spec}": lambda: [
            hf_generate(engine, p, tokens, [ConstraintLogitsProcessor(c, engine.tokenizer)]) for p in prompts],
    }
    for _ in range(repeats):
        for name, fn in fns.items():
            rows.time(name, n, fn)
    ratios = {
        "ours / generate (unconstrained)": rows.ratio("ours, unconstrained", "transformers generate"),
        f"ours {spec} / ours unconstrained": rows.ratio(f"ours, {spec}", "ours, unconstrained"),
        f"generate + our processor, {spec} / generate": rows.ratio(
            f"generate + our LogitsProcessor, {spec}", "transformers generate"),
    }
    lines = [f"device {engine.device}, model {engine.name}, greedy, {tokens} new tokens x {len(prompts)} prompts, "
             f"{repeats} interleaved rounds; median [min-max]"]
    lines += [f"  {k:<52} {summary(rows.tps(k), '{:.1f}')} tok/s" for k in fns]
    lines += [f"  {k:<52} {summary(v)}" for k, v in ratios.items()]
    return {"device": str(engine.device), "model": engine.name, "tokens": tokens,
            "tokens_per_second": {k: rows.tps(k) for k in fns}, "ratios": ratios, "table": "\n".join(lines)}


def write_report(text: str, name: str, device, out: str | Path | None = None) -> Path:
    """Print a benchmark's report and keep it in ``out`` (default:
    bench/results/NAME-DEVICE.md, DEVICE being cpu or cuda)."""
    dev = str(device).split(":")[0]
    path = Path(out) if out else Path(__file__).resolve().parents[1] / "bench" / "results" / f"{name}-{dev}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(text)
    return path
