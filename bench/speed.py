"""`make bench`: every speed figure of the README, as ratios measured in one run.

    python bench/speed.py [--tokens 100] [--rounds 5] [--no-start] [--out FILE]

Rows are interleaved round by round (studio/benchmark.py); each ratio is the median over
rounds with min and max, every round listed.  The machine should be otherwise idle.

- our loop vs transformers' generate, unconstrained (greedy, same prompts and lengths)
- lipogram:e and syllables:1 vs unconstrained, our loop
- our processor inside generate vs plain generate
- batched rows: 8 concurrent sessions through the scheduler vs 1 session (aggregate
  tokens/s, sampling); 8 variants in one batch vs 1
- the line search: wall time of a sonnet at K = 1, 2, 4, 8
- a 200,000-character draft: seconds to the first token
- ours with lipogram:e vs a CTGS-style loop (no cache, the vocabulary filtered as strings)
- `perec check -c lipogram:e` wall time (no model; the command is meant to answer at once)
- cold start (GGUF conversion) and warm start to the first token, peak memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import studio  # noqa: E402
from studio.benchmark import PROMPTS, Rows, ctgs_baseline, hf_generate, ours, summary  # noqa: E402
from studio.decode.settings import Settings  # noqa: E402

NOVEL = ("The old house on the hill had stood empty for years, and the village told stories "
         "about it. ") * 2200


def sampled(tokens: int, seed: int) -> Settings:
    return Settings(max_new_tokens=tokens, min_new_tokens=tokens, seed=seed)


def sessions(engine, n: int, tokens: int) -> None:
    """``n`` writers at once, each a thread reading its own generation from the scheduler."""
    sched = engine.scheduler()
    gens = [sched.submit(engine.stream(PROMPTS[i % len(PROMPTS)], None, sampled(tokens, i))) for i in range(n)]
    threads = [threading.Thread(target=lambda g=g: [None for _ in g]) for g in gens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def sonnet(engine, width: int, seed: int) -> None:
    studio.generate("The sea at night", form="sonnet", search=width, seed=seed, engine=engine)


def first_token_of_long_draft(engine) -> None:
    g = engine.stream(NOVEL, None, Settings(max_new_tokens=1, seed=1))
    g.run()


def check_command() -> None:
    subprocess.run([sys.executable, "-m", "studio.cli", "check", "-c", "lipogram:e"], input="A cat sat.",
                   text=True, capture_output=True, check=True)


def start_times() -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as cold_cache:
        for label in ("cold (GGUF conversion)", "warm"):
            env = dict(os.environ, PEREC_CACHE=cold_cache)
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "first_token.py")], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            d = json.loads(out)
            rows.append(f"  start, {label:<24} first token after {d['first_token_seconds']:6.1f} s "
                        f"(model ready {d['load_seconds']:.1f} s), peak RSS {d['peak_rss_mb']:.0f} MB")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--search-rounds", type=int, default=3)
    ap.add_argument("--ctgs-tokens", type=int, default=20)
    ap.add_argument("--no-start", action="store_true", help="skip the cold/warm start runs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed-cpu.md"))
    args = ap.parse_args()

    engine = studio.load()
    n, rows = args.tokens, Rows()
    # Warm every path once: masks, word sets, the scheduler thread.
    ours(engine, PROMPTS[0], 4, "lipogram:e")
    ours(engine, PROMPTS[0], 4, "syllables:1")
    hf_generate(engine, PROMPTS[0], 4)
    sessions(engine, 2, 4)
    engine.variants(PROMPTS[0], None, sampled(4, 0), k=2)
    from studio.bridges.hf import ConstraintLogitsProcessor
    from constraints.spec import parse_spec

    lip = parse_spec("lipogram:e")
    each = n * len(PROMPTS)
    plan = {
        "transformers generate": (each, lambda: [hf_generate(engine, p, n) for p in PROMPTS]),
        "ours, unconstrained": (each, lambda: [ours(engine, p, n, None) for p in PROMPTS]),
        "ours, lipogram:e": (each, lambda: [ours(engine, p, n, "lipogram:e") for p in PROMPTS]),
        "ours, syllables:1": (each, lambda: [ours(engine, p, n, "syllables:1") for p in PROMPTS]),
        "generate + our processor, lipogram:e": (each, lambda: [
            hf_generate(engine, p, n, [ConstraintLogitsProcessor(lip, engine.tokenizer)]) for p in PROMPTS]),
        "1 session (scheduler)": (n, lambda: sessions(engine, 1, n)),
        "8 concurrent sessions (scheduler)": (8 * n, lambda: sessions(engine, 8, n)),
        "1 variant": (n, lambda: engine.variants(PROMPTS[1], None, sampled(n, 1), k=1)),
        "8 variants in one batch": (8 * n, lambda: engine.variants(PROMPTS[1], None, sampled(n, 1), k=8)),
        "200,000-character draft, first token": (1, lambda: first_token_of_long_draft(engine)),
        "ours, lipogram:e (CTGS length)": (args.ctgs_tokens,
                                           lambda: ours(engine, PROMPTS[0], args.ctgs_tokens, "lipogram:e")),
        "CTGS-style loop, lipogram:e": (args.ctgs_tokens,
                                        lambda: ctgs_baseline(engine, PROMPTS[0], args.ctgs_tokens, "e")),
        "perec check -c lipogram:e": (1, check_command),
    }
    t0 = time.time()
    for r in range(args.rounds):
        for name, (tokens, fn) in plan.items():
            if name.startswith("CTGS") and r >= 3:
                continue  # minutes per run: three rounds are enough to bound it
            rows.time(name, tokens, fn)
        print(f"round {r + 1}/{args.rounds} done after {time.time() - t0:.0f} s", flush=True)
    for r in range(args.search_rounds):
        for k in (1, 2, 4, 8):
            rows.time(f"sonnet, search K={k}", 1, lambda k=k: sonnet(engine, k, seed=r))
        print(f"search round {r + 1}/{args.search_rounds} done after {time.time() - t0:.0f} s", flush=True)

    ctgs_rounds = len(rows.seconds["CTGS-style loop, lipogram:e"])
    rows.seconds["ours, lipogram:e (CTGS length)"] = rows.seconds["ours, lipogram:e (CTGS length)"][:ctgs_rounds]
    ratios = [
        ("ours / transformers generate, unconstrained (target >= 1.0)",
         rows.ratio("ours, unconstrained", "transformers generate")),
        ("lipogram:e / unconstrained, our loop (target >= 0.95)", rows.ratio("ours, lipogram:e", "ours, unconstrained")),
        ("syllables:1 / unconstrained, our loop (target >= 0.95)",
         rows.ratio("ours, syllables:1", "ours, unconstrained")),
        ("generate + our processor / generate, lipogram:e",
         rows.ratio("generate + our processor, lipogram:e", "transformers generate")),
        ("8 concurrent sessions / 1 session, aggregate tokens/s (target >= 3)",
         rows.ratio("8 concurrent sessions (scheduler)", "1 session (scheduler)")),
        ("8 variants / 1 variant, aggregate tokens/s (target >= 3)",
         rows.ratio("8 variants in one batch", "1 variant")),
        ("ours lipogram:e / CTGS-style loop", rows.ratio("ours, lipogram:e (CTGS length)", "CTGS-style loop, lipogram:e")),
    ]
    walls = [(f"sonnet wall time, K={k} / K=1 (target for K=4: <= 2)",
              rows.ratio(f"sonnet, search K={k}", "sonnet, search K=1", speed=False)) for k in (2, 4, 8)]
    lines = [f"device {engine.device}, model {engine.name}, {n} new tokens per row per prompt, "
             f"{args.rounds} interleaved rounds; median [min–max] (every run)", "", "tokens per second:"]
    for name in plan:
        if name in ("200,000-character draft, first token", "perec check -c lipogram:e"):
            continue
        lines.append(f"  {name:<44} {summary(rows.tps(name), '{:.1f}')}")
    lines += ["", "seconds:"]
    for name in ("200,000-character draft, first token", "perec check -c lipogram:e",
                 *[f"sonnet, search K={k}" for k in (1, 2, 4, 8)]):
        lines.append(f"  {name:<44} {summary(rows.seconds[name])}")
    lines += ["", "ratios (per round, then median [min–max]):"]
    lines += [f"  {name:<68} {summary(v)}" for name, v in ratios + walls]
    if not args.no_start:
        lines += ["", "start (one run each, fresh processes):"] + start_times()
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    Path(args.out).write_text(f"At commit {commit}:\n\n```\n$ python bench/speed.py\n{text}\n```\n")


if __name__ == "__main__":
    main()
