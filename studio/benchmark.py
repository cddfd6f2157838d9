"""Speed measurements, printed as ratios measured in one run (never asserted in tests).

Rows: transformers' ``model.generate`` unconstrained; our loop unconstrained; our loop
under a constraint; and a CTGS-style baseline (each step re-encodes the whole text, runs
the model without a cache, decodes the entire vocabulary and filters it in Python).
All greedy, same prompts, same number of new tokens.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from studio.decode.settings import Settings
from constraints.spec import parse_spec

PROMPTS = (
    "The old house on the hill",
    "She opened the letter and",
    "In the morning the village",
)


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


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


def run_speed(engine, tokens: int = 100, repeats: int = 2, spec: str = "lipogram:e",
              baseline_tokens: int | None = None, prompts=PROMPTS) -> dict:
    """Tokens per second of each row (best of ``repeats`` per prompt, summed over prompts)."""
    from studio.bridges.hf import ConstraintLogitsProcessor

    # Warm up: build masks and caches once, so rows compare steady-state decoding.
    ours(engine, prompts[0], 4, spec)
    hf_generate(engine, prompts[0], 4)
    c = parse_spec(spec)
    fns = {
        "transformers generate": lambda p: hf_generate(engine, p, tokens),
        "ours, unconstrained": lambda p: ours(engine, p, tokens, None),
        f"ours, {spec}": lambda p: ours(engine, p, tokens, spec),
        f"generate + our LogitsProcessor, {spec}": lambda p: hf_generate(
            engine, p, tokens, [ConstraintLogitsProcessor(c, engine.tokenizer)]),
    }
    # Interleave the rows prompt by prompt, so a change in machine load hits them alike.
    rows = {k: [0.0, 0] for k in fns}
    for p in prompts:
        for k, fn in fns.items():
            rows[k][0] += _time(lambda: fn(p), repeats)
            rows[k][1] += tokens
    bt = baseline_tokens if baseline_tokens is not None else tokens
    if bt and spec.startswith("lipogram:"):
        letters = spec.split(":", 1)[1]
        rows[f"CTGS-style baseline, {spec}"] = [_time(lambda: ctgs_baseline(engine, prompts[0], bt, letters), 1), bt]
    tps = {k: n / s for k, (s, n) in rows.items()}
    unc = tps["ours, unconstrained"]
    ratios = {
        "ours / generate (unconstrained)": unc / tps["transformers generate"],
        f"ours {spec} / ours unconstrained": tps[f"ours, {spec}"] / unc,
    }
    base_key = f"CTGS-style baseline, {spec}"
    if base_key in tps:
        ratios[f"ours {spec} / CTGS-style baseline"] = tps[f"ours, {spec}"] / tps[base_key]
    lines = [f"device {engine.device}, model {engine.name}, greedy, {tokens} new tokens, "
             f"{len(prompts)} prompts, best of {repeats}"]
    lines += [f"  {k:<48} {v:8.2f} tok/s" for k, v in tps.items()]
    lines += [f"  {k:<48} {v:8.2f}x" for k, v in ratios.items()]
    return {"device": str(engine.device), "model": engine.name, "tokens": tokens,
            "tokens_per_second": tps, "ratios": ratios, "table": "\n".join(lines)}


def write_report(text: str, name: str, device, out: str | Path | None = None) -> Path:
    """Print a benchmark's report and keep it in ``out`` (default:
    bench/results/NAME-DEVICE.md, DEVICE being cpu or cuda)."""
    dev = str(device).split(":")[0]
    path = Path(out) if out else Path(__file__).resolve().parents[1] / "bench" / "results" / f"{name}-{dev}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(text)
    return path
