"""Distil a constraint into an adapter (the RLDAF idea in its simplest honest form).

1. Generate with the constraint enforced (a hard constraint, and/or controllers).
2. Train a LoRA adapter (SFT) on those outputs: the model learns the moves the constraint
   forced on it, so it stops walking into words it will not be allowed to finish.
3. Measure: generate again under the same constraint, from held-out prompts, with and
   without the adapter, and score both sets under the *base* model (no filter).  Lower
   perplexity there means the constrained text reads more like the model's own fluent
   text.  The constraint still holds either way: it is enforced at step 4.

It drives the engine, so it imports studio.decode.settings / studio.scoring inside its functions
(models/ never imports the studio at module level).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from models.adapters import adapters_for
from models.train import TrainingData, train_adapter

# Story openings for the distillation data; the measurement uses its own prompts.
OPENINGS = [
    "The old house on the hill", "She opened the letter and", "When the train stopped",
    "My father always said", "In the middle of the night", "The village had a small market",
    "Nobody in town could explain", "At the edge of the forest", "On the first warm day of spring",
    "The captain looked at the map", "Our school had a tall clock tower", "A dog ran across the road",
    "The baker woke up early", "Rain fell on the roof all morning", "The two brothers walked",
    "In a small room at the top of the stairs", "The king called his advisors",
    "A boy found a coin in the sand", "Long ago, a farmer lived", "The radio was playing softly",
]


def generate_examples(engine, constraint, prompts: list[str], per_prompt: int = 2, tokens: int = 60,
                      controllers: Callable | None = None, seed: int = 0, settings: dict | None = None,
                      progress: Callable | None = None) -> list[dict]:
    """{"prompt", "completion"} records: constrained continuations, ``per_prompt`` samples
    per prompt (fixed seeds).  ``controllers()`` returns fresh steering keyword arguments
    per generation.  Training then puts the loss on the completion only: the prompt was
    not written under the constraint."""
    from studio.decode.settings import Settings

    texts = []
    total = len(prompts) * per_prompt
    for i, p in enumerate(prompts):
        for j in range(per_prompt):
            kw = controllers() if controllers else {}
            r = engine.generate(p, constraint, Settings(max_new_tokens=tokens, seed=seed + i * per_prompt + j,
                                                        **(settings or {})), **kw)
            if r.text.strip():
                # Cut at the token budget unless the model ended it: no end-of-text then.
                texts.append({"prompt": p, "completion": r.text, "eos": r.stop_reason == "eos"})
            if progress:
                progress(len(texts), total)
    return texts


def distill(engine, constraint, out, *, prompts: list[str] = OPENINGS, per_prompt: int = 2,
            tokens: int = 60, max_steps: int = 100, controllers: Callable | None = None, **train_kw) -> dict:
    """Generate under ``constraint`` and train an adapter on the outputs into ``out``.
    The generated examples are kept in ``out/distilled.jsonl``."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / "distilled.jsonl"
    if data_file.is_file():  # a rerun trains on (and resumes with) the same examples
        texts = [json.loads(ln) for ln in data_file.read_text().splitlines() if ln.strip()]
    else:
        texts = generate_examples(engine, constraint, prompts, per_prompt, tokens, controllers)
        data_file.write_text("".join(json.dumps(t) + "\n" for t in texts))
    if not texts:
        raise ValueError("the constraint let nothing through: no examples to distil")
    td = TrainingData("text", texts, [str(data_file)])
    summary = train_adapter(td, out, model=train_kw.pop("model", None), max_steps=max_steps, **train_kw)
    return dict(summary, examples=len(texts))


def measure(engine, constraint, adapter_dir, prompts: list[str], *, tokens: int = 60, seed: int = 1000,
            settings: dict | None = None) -> dict:
    """Constrained generations with and without the adapter, each scored under the base
    model: {'base': {...}, 'adapter': {...}} with perplexity, constraint violations, tok/s."""
    from studio.decode.settings import Settings
    from studio.scoring import score_text

    from models.controllers import SourcePlan

    aset = adapters_for(engine)
    name = aset.load(adapter_dir).name
    report = {}
    for label in ("base", "adapter"):
        nll, count, seconds, toks, broken, texts = 0.0, 0, 0.0, 0, 0, []
        for i, p in enumerate(prompts):
            kw = {}
            if label == "adapter":
                kw = {"feed": SourcePlan(adapters=[(name, 1.0)]).build(engine, aset)}
            r = engine.generate(p, constraint, Settings(max_new_tokens=tokens, seed=seed + i, **(settings or {})), **kw)
            seconds, toks = seconds + r.seconds, toks + r.tokens
            texts.append(r.text)
            if constraint is not None and constraint.check(r.text):
                broken += 1
            if r.text.strip():
                s = score_text(engine, r.text, None, prompt=p)
                nll, count = nll + s.nll * s.tokens, count + s.tokens
        report[label] = {"perplexity_under_base": math.exp(nll / count) if count else float("inf"),
                         "tokens_scored": count, "violations": broken, "tokens_per_second": toks / seconds,
                         "samples": texts}
    return report
