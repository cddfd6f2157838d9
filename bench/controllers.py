"""Issue 5's controller figures, in one run on this machine: for each controller, how far it
moves its attribute and what it costs in tokens/s (and in perplexity under the base model)
against the same prompts and seeds without it.  Rows are interleaved prompt by prompt, so
machine load hits the runs with and without a controller alike.

    python bench/controllers.py [--prompts 6] [--tokens 40] [--threads N] [--distill]

Attributes: the share of sea words for the word bank (models/data/sea.txt); for the
others, a joyful-vs-gloomy discriminator trained here on models/data/{joyful,gloomy}.txt
(mean P(joyful) over the generated positions; the FUDGE rows are guided by that same
classifier, so their score is an optimistic measure).  ``--distill`` adds the
distillation experiment (models/distill.py) for lipogram:e.
Writes bench/results/controllers.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "models" / "data"
ART = ROOT / "artifacts" / "bench"

PROMPTS = [
    "The old house on the hill", "She opened the letter and", "When the train stopped",
    "My father always said", "At the end of the long road", "The market was crowded that day",
    "He put down his cup and", "Nobody expected the visitor",
]
HELD_OUT = [
    "The lighthouse keeper", "After the storm, the town", "My sister found a map", "The bus was late again",
    "Under the bridge, a cat", "The teacher closed the book", "At noon the bells rang",
    "A small boat drifted", "Her grandfather kept a garden", "The road into the valley",
]


def train_experts(steps: int) -> dict:
    from models.discriminator import read_lines
    from models.train import TrainingData, train_adapter

    out = {}
    for name in ("joyful", "gloomy"):
        td = TrainingData("text", [{"text": t} for t in read_lines(DATA / f"{name}.txt")], [name])
        s = train_adapter(td, ART / "experts" / name, max_steps=steps, batch_size=4, max_length=40,
                          learning_rate=1e-3, rank=8, save_steps=steps, echo=None, bar=False)
        print(f"  expert '{name}': {s['steps']} SFT steps, loss {s['first_loss']:.2f} -> {s['final_loss']:.2f}")
        out[name] = s["path"]
    return out


def configs(engine, judge, experts) -> list[tuple]:
    """(label, setting, measure, make steering keyword arguments)."""
    from models.adapters import adapters_for
    from models.controllers import DiscriminatorGuidance, ExpertAntiExpert, WordBank
    from studio.steer import steering

    aset = adapters_for(engine)
    e, a = aset.load(experts["joyful"]).name, aset.load(experts["gloomy"]).name
    # Built once, as the CLI and the studio do; steering() makes a fresh source per run.
    bank2, bank4 = (WordBank.from_file(DATA / "sea.txt", s) for s in (2.0, 4.0))
    steer = "A joyful, happy, cheerful story full of laughter."
    return [
        ("word bank: sea words", "strength 2", "bank", lambda: steering(engine, bank=bank2)),
        ("word bank: sea words", "strength 4", "bank", lambda: steering(engine, bank=bank4)),
        ("prompt contrast: joyful", "γ 1.5", "judge", lambda: steering(engine, steer=f"{steer}:1.5")),
        ("prompt contrast: joyful", "γ 3", "judge", lambda: steering(engine, steer=f"{steer}:3")),
        ("DExperts: joyful − gloomy", "α 1", "judge",
         lambda: steering(engine, controllers=[ExpertAntiExpert(e, a, 1.0)])),
        ("DExperts: joyful − gloomy", "α 2", "judge",
         lambda: steering(engine, controllers=[ExpertAntiExpert(e, a, 2.0)])),
        ("FUDGE: joyful discriminator", "λ 2, k 20", "judge",
         lambda: steering(engine, controllers=[DiscriminatorGuidance(judge, 2.0, 20)])),
        ("FUDGE: joyful discriminator", "λ 4, k 20", "judge",
         lambda: steering(engine, controllers=[DiscriminatorGuidance(judge, 4.0, 20)])),
    ]


def measure_controllers(engine, judge, experts, prompts, tokens) -> str:
    from models.controllers import WordBank
    from studio.decode.settings import Settings
    from studio.scoring import score_text

    sea = WordBank.from_file(DATA / "sea.txt")
    rows = configs(engine, judge, experts)
    stats = {k: {"tok": 0, "sec": 0.0, "bank": [], "judge": [], "nll": 0.0, "n": 0}
             for k in ["none"] + [i for i in range(len(rows))]}

    def record(key, prompt, r):
        st = stats[key]
        st["tok"] += r.tokens
        st["sec"] += r.seconds
        st["bank"].append(sea.share(r.text))
        st["judge"].append(judge.score_text(engine, r.text, context=prompt))
        if r.text.strip():
            s = score_text(engine, r.text, None, prompt=prompt)
            st["nll"] += s.nll * s.tokens
            st["n"] += s.tokens

    for i, p in enumerate(prompts):
        settings = Settings(max_new_tokens=tokens, seed=i)
        record("none", p, engine.generate(p, None, settings))
        for k, (_, _, _, make) in enumerate(rows):
            record(k, p, engine.generate(p, None, settings, **make()))
        print(f"  prompt {i + 1}/{len(prompts)} done", flush=True)

    import math

    def mean(xs):
        return sum(xs) / len(xs)

    base = stats["none"]
    tps0 = base["tok"] / base["sec"]
    ppl0 = math.exp(base["nll"] / base["n"])
    head = (f"{'controller':<28} {'setting':<11} {'measure':<14} {'without':>8} {'with':>7} "
            f"{'tok/s w/o':>9} {'tok/s':>6} {'speed':>6} {'ppl w/o':>8} {'ppl':>7}")
    lines = [head, "-" * len(head)]
    for k, (label, setting, what, _) in enumerate(rows):
        st = stats[k]
        name = "sea-word share" if what == "bank" else "P(joyful)"
        tps = st["tok"] / st["sec"]
        ppl = math.exp(st["nll"] / st["n"]) if st["n"] else float("inf")
        lines.append(f"{label:<28} {setting:<11} {name:<14} {mean(base[what]):8.3f} {mean(st[what]):7.3f} "
                     f"{tps0:9.1f} {tps:6.1f} {tps / tps0:5.2f}x {ppl0:8.1f} {ppl:7.1f}")
    return "\n".join(lines)


def measure_distill(engine, tokens: int, steps: int) -> str:
    from studio.distill import OPENINGS, distill, measure
    from constraints.spec import parse_spec

    c = parse_spec("lipogram:e")
    t0 = time.perf_counter()
    s = distill(engine, c, ART / "distill-lipogram-e", prompts=OPENINGS, per_prompt=3, tokens=tokens,
                max_steps=steps, batch_size=2, max_length=96, rank=8, echo=None, bar=False)
    print(f"  distilled {s['examples']} lipogram:e generations into {s['steps']} SFT steps "
          f"(loss {s['first_loss']:.2f} -> {s['final_loss']:.2f}) in {time.perf_counter() - t0:.0f} s", flush=True)
    rep = measure(engine, c, s["path"], HELD_OUT, tokens=tokens)
    lines = [f"distillation: lipogram:e, {s['examples']} examples x {tokens} tokens from {len(OPENINGS)} openings, "
             f"{s['steps']} SFT steps (LoRA rank 8, batch 2); measured on {len(HELD_OUT)} other prompts",
             f"{'run (filter on in both)':<28} {'ppl under base':>14} {'violations':>10} {'tok/s':>6}"]
    for label in ("base", "adapter"):
        r = rep[label]
        lines.append(f"{'base + lipogram filter' if label == 'base' else 'distilled adapter + filter':<28} "
                     f"{r['perplexity_under_base']:14.1f} {r['violations']:>10} {r['tokens_per_second']:6.1f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--expert-steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--distill", action="store_true", help="also run the distillation experiment")
    ap.add_argument("--distill-steps", type=int, default=120)
    ap.add_argument("--no-table", action="store_true", help="skip the controller table (with --distill)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import studio
    from models.discriminator import Discriminator

    engine = studio.load()
    t0 = time.perf_counter()
    judge = Discriminator.from_files(engine, DATA / "joyful.txt", DATA / "gloomy.txt")
    r = judge.report
    setup = [f"judge: joyful-vs-gloomy discriminator, layer {r['layer']}, held-out accuracy "
             f"{r['held_out_accuracy']:.2f} per position, trained in {r['seconds']:.1f} s",
             f"settings: {args.prompts} prompts x {args.tokens} tokens, default sampling, seeds 0..{args.prompts - 1}, "
             f"{torch.get_num_threads()} CPU thread(s), device {engine.device}"]
    print("\n".join(setup), flush=True)
    parts = list(setup)
    if not args.no_table:
        experts = train_experts(args.expert_steps)
        parts += ["", measure_controllers(engine, judge, experts, PROMPTS[:args.prompts], args.tokens)]
    if args.distill:
        parts += ["", measure_distill(engine, 60, args.distill_steps)]
    parts.append(f"\n(total {time.perf_counter() - t0:.0f} s)")
    text = "\n".join(parts)
    print(text)
    out = ROOT / "bench" / "results" / ("distill.md" if args.no_table else "controllers.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/controllers.py " + " ".join(sys.argv[1:])
    out.write_text(f"```\n$ {cmd.strip()}\n{text}\n```\n")


if __name__ == "__main__":
    main()
