"""Perplexity of *Robinson Crusoe in Words of One Syllable* (1868) under the embedded
model, with and without the syllables:1 filter (renormalised over the tokens the filter
allows, as `perec score -c syllables:1` does).  The filter should lower it, as the
lipogram filter does on Gadsby: a one-syllable text is likelier once the model's
many-syllable continuations are ruled out.

    python bench/crusoe_score.py [--chars 12000] [--device auto]
    (the same as: head -c 12000 ../shared/data/crusoe-one-syllable.txt |
     perec score [-c syllables:1])
Writes bench/results/crusoe-score-<device>.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import studio  # noqa: E402
from studio.benchmark import write_report  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "crusoe-one-syllable.txt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=12000, help="score the first N characters")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    text = DATA.read_text(encoding="utf-8")[: args.chars]
    eng = studio.load(device=args.device)
    rows = []
    for spec in (None, "syllables:1"):
        t = time.time()
        s = studio.score(text, spec, engine=eng, window=args.window)
        rows.append((spec or "(none)", s, time.time() - t))
        print(spec, s.to_dict(), flush=True)
    base, filt = rows[0][1], rows[1][1]
    out = ["# Crusoe in words of one syllable: perplexity with and without syllables:1\n",
           f"`python bench/crusoe_score.py {' '.join(sys.argv[1:])}` ({eng.device}, {eng.name}, "
           f"first {len(text)} characters, window {args.window})\n",
           "| constraint | perplexity | tokens scored | tokens the filter forbids | seconds |",
           "|---|---:|---:|---:|---:|"]
    out += [f"| {k} | {s.perplexity:.2f} | {s.tokens} | {s.disallowed} | {sec:.1f} |" for k, s, sec in rows]
    out += ["", f"- filtered / unfiltered perplexity: **{filt.perplexity / base.perplexity:.3f}**",
            "- forbidden tokens belong to the text's few many-syllable words (names such as "
            "\"Friday\"); they are left out of the filtered perplexity, as in the CTGS paper."]
    write_report("\n".join(out) + "\n", "crusoe-score", eng.device, args.out)


if __name__ == "__main__":
    main()
