"""The FUDGE couplet task (Yang & Klein 2021): given a sonnet's 13th line, write the 14th:
10 syllables, iambic, rhyming with the 13th, ending with . ? or !.

FUDGE reported 0.44 success, fine-tuning 0.21, PPLM 0, Shakespeare's own 14th lines 0.45
(by their checker).  Ours decodes the form by construction (form couplet-iambic;end=.?!
after the given line); success here is judged by the independent checker
(constraints.forms.check_form through FormConstraint.check).  Beside it: perplexity of
each new line under the unconstrained model given the 13th line (studio.scoring), and
distinct-1 (distinct words / words over all new lines).

    python bench/fudge_couplet.py [--seeds 1] [--device auto]
Writes bench/results/fudge-couplet-<device>.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import studio  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from constraints.base import iter_words  # noqa: E402
from constraints.formspec import FormConstraint, FormPlan  # noqa: E402
from constraints.forms import FormError  # noqa: E402
from studio.scoring import score_text  # noqa: E402

FORM = "couplet-iambic"
END = ".?!"


def thirteenth_lines() -> list[tuple[str, str]]:
    rows = (ROOT / "bench" / "data" / "sonnet_13th_lines.tsv").read_text().splitlines()
    return [tuple(r.split("\t", 1)) for r in rows if r.strip() and not r.startswith("#")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1, help="new lines per 13th line")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    eng = studio.load(device=args.device)
    rows, skipped, words = [], [], []
    nll = ntok = 0.0
    t0 = time.time()
    for sonnet, line in thirteenth_lines():
        try:
            fc = FormConstraint(FORM, [line], END)
            FormPlan(fc)  # refuses a rhyme it cannot meet (a word outside CMU)
        except FormError as e:
            skipped.append(f"sonnet {sonnet}: {e}")
            continue
        for seed in range(args.seeds):
            r = studio.generate("", form=fc, engine=eng, seed=1000 * seed + int(sonnet))
            ok = not fc.check(r.text) and "\n" not in r.text.strip()
            s = score_text(eng, r.text, prompt=line + "\n")
            nll += s.nll * s.tokens
            ntok += s.tokens
            ws = [m.group().lower() for m in iter_words(r.text)]
            words += ws
            rows.append((sonnet, line, r.text, ok, s.perplexity, r.backoffs))
            print(f"{sonnet:>4} {'ok ' if ok else 'NO '} {s.perplexity:7.1f}  {line}  ->  {r.text}", flush=True)
    n = len(rows)
    success = sum(r[3] for r in rows) / n
    ppls = [r[4] for r in rows]
    distinct1 = len(set(words)) / max(len(words), 1)
    out = ["# FUDGE couplet task\n", f"`python bench/fudge_couplet.py {' '.join(sys.argv[1:])}` "
           f"({eng.device}, {eng.name}, sampling, {n} lines, {time.time() - t0:.0f} s)\n",
           f"- success (10 syllables, iambic, rhymes with line 13, ends . ? !; independent check): "
           f"**{success:.2f}** ({sum(r[3] for r in rows)}/{n})",
           f"- perplexity of the new lines given line 13 (unconstrained model): corpus "
           f"{math.exp(nll / ntok):.1f}, median line {sorted(ppls)[n // 2]:.1f}",
           f"- distinct-1: {distinct1:.3f} ({len(set(words))} distinct of {len(words)} words)",
           "- FUDGE's reported success: FUDGE 0.44, fine-tuning 0.21, PPLM 0.00, Shakespeare 0.45",
           ""]
    if skipped:
        out += ["skipped (the form cannot be met):"] + [f"- {s}" for s in skipped] + [""]
    out += ["| sonnet | line 13 | our line 14 | ok | ppl |", "|---:|---|---|---|---:|"]
    out += [f"| {s} | {a} | {b} | {'yes' if ok else 'NO'} | {p:.1f} |" for s, a, b, ok, p, _ in rows]
    write_report("\n".join(out) + "\n", "fudge-couplet", eng.device, args.out)


if __name__ == "__main__":
    main()
