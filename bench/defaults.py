"""How the writing defaults were chosen: distinct-2 and repetition of sampled text under
a lipogram (and without), over a few prompts, for greedy and several sampling settings.

    python bench/defaults.py [--tokens 60] [--seeds 2]
Writes bench/results/defaults.md.  Higher distinct-2 and lower repetition are better;
perplexity under the base model (lower = more fluent) keeps the choice honest.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "The old house on the hill",
    "She opened the letter and",
    "In the morning the village",
    "My grandfather always said that",
    "The ship left the harbour at dawn, and",
]

GRID = [
    ("greedy", dict(greedy=True, repetition_penalty=1.0)),
    ("T0.7 p0.9 rep1.0", dict(temperature=0.7, top_p=0.9, top_k=50, repetition_penalty=1.0)),
    ("T0.8 p0.95 rep1.1", dict(temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.1)),
    ("T0.8 p0.95 rep1.15", dict(temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.15)),
    ("T0.9 p0.95 rep1.2", dict(temperature=0.9, top_p=0.95, top_k=50, repetition_penalty=1.2)),
    ("T1.0 p0.95 rep1.1", dict(temperature=1.0, top_p=0.95, top_k=50, repetition_penalty=1.1)),
]


def distinct_n(words: list[str], n: int) -> float:
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition(words: list[str], n: int = 3) -> float:
    """Share of word trigrams that already occurred earlier in the same text (loops)."""
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    seen, rep = set(), 0
    for g in grams:
        rep += g in seen
        seen.add(g)
    return rep / len(grams) if grams else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    import studio
    from constraints.units import iter_words

    engine = studio.load()
    rows = ["| settings | constraint | distinct-2 | repeated trigrams | perplexity (base) |",
            "|---|---|---|---|---|"]
    for spec in ("lipogram:e", None):
        for name, kw in GRID:
            d2, rep, ppl = [], [], []
            seeds = [0] if kw.get("greedy") else range(args.seeds)
            for prompt in PROMPTS:
                for seed in seeds:
                    r = studio.generate(prompt, spec, engine=engine, max_new_tokens=args.tokens,
                                        min_new_tokens=args.tokens, seed=seed, **kw)
                    words = [m.group().lower() for m in iter_words(r.text)]
                    d2.append(distinct_n(words, 2))
                    rep.append(repetition(words))
                    if r.text.strip():
                        ppl.append(studio.score(r.text, engine=engine, prompt=prompt).perplexity)
            mean = lambda xs: sum(xs) / len(xs)
            rows.append(f"| {name} | {spec or 'none'} | {mean(d2):.3f} | {mean(rep):.3f} | {mean(ppl):.1f} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    out = ROOT / "bench" / "results" / "defaults.md"
    out.write_text(f"`python bench/defaults.py --tokens {args.tokens} --seeds {args.seeds}`\n\n{text}\n")
    print(text)


if __name__ == "__main__":
    main()
