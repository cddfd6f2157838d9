"""The FUDGE couplet task (Yang & Klein 2021): given a sonnet's 13th line, write the 14th:
10 syllables, iambic, rhyming with the 13th, ending with . ? or !.

FUDGE reported 0.44 success, fine-tuning 0.21, PPLM 0, Shakespeare's own 14th lines 0.45
(by their metric).  Ours decodes the form by construction (form couplet-iambic;end=.?!
after the given line) on all 154 sonnets' 13th lines (bench/data/sonnets.txt).  Judged
twice: by the FUDGE metric (bench/judges/fudge.py, independent of constraints/) and by
our checker (constraints.forms.check_form through FormConstraint.check).  Beside them:
words that are not common English (wordfreq zipf < 3) and non-words (neither wordfreq
nor CMU knows them, or a lone letter), perplexity of each new line under the
unconstrained model given the 13th line (studio.scoring), distinct-1 (distinct words /
words over all new lines) and sample lines.

    python bench/fudge_couplet.py [--limit N] [--search K] [--seeds 1] [--device auto]
Writes bench/results/fudge-couplet-<device>.md (or --out).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pronouncing  # noqa: E402
from wordfreq import zipf_frequency  # noqa: E402

import studio  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from constraints.units import iter_words  # noqa: E402
from constraints.formspec import FormConstraint  # noqa: E402
from constraints.forms import FormError  # noqa: E402
from studio.request import DEFAULT_POEM_SEARCH  # noqa: E402
from studio.scoring import score_text  # noqa: E402
from judges.fudge import judge  # noqa: E402

FORM = "couplet-iambic"
UNRHYMED = "custom:10-10/--/iambic"  # when no line of the metre can rhyme with line 13
END = ".?!"
RARE = 3.0  # wordfreq zipf below which a word is not common English


def thirteenth_lines() -> list[tuple[int, str]]:
    """(sonnet, line 13) for all 154: each sonnet's second-to-last line."""
    text = (ROOT / "bench" / "data" / "sonnets.txt").read_text(encoding="utf-8")
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        if lines and lines[0].isdigit():
            out.append((int(lines[0]), lines[-2].strip()))
    return out


def non_word(w: str) -> bool:
    """Neither wordfreq nor CMU knows it, or a single letter other than a, I, O."""
    return (len(w) == 1 and w not in "aio") or (zipf_frequency(w, "en") == 0 and not pronouncing.phones_for_word(w))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1, help="new lines per 13th line")
    ap.add_argument("--limit", type=int, default=None, help="only the first N sonnets")
    ap.add_argument("--search", type=int, default=None,
                    help="candidate lines per line (default: the studio's, DEFAULT_POEM_SEARCH)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    width = args.search if args.search is not None else DEFAULT_POEM_SEARCH
    eng = studio.load(device=args.device)
    rows, refused, words = [], [], []
    nll = ntok = 0.0
    t0 = time.time()
    for sonnet, line in thirteenth_lines()[: args.limit]:
        fc = FormConstraint(FORM, [line], END)  # the task, as judged
        for seed in range(args.seeds):
            try:
                r = studio.generate("", form=fc, engine=eng, seed=1000 * seed + sonnet, search=width)
            except FormError as e:
                # No line of this metre can rhyme with line 13 (a feminine or dactylic
                # ending, "pleasure", "monument": the metric itself cannot be met).  Write an
                # unrhymed iambic line rather than none; both judges fail its rhyme.
                refused.append(f"sonnet {sonnet}: {e}")
                r = studio.generate("", form=FormConstraint(UNRHYMED, [line], END), engine=eng,
                                    seed=1000 * seed + sonnet, search=width)
            text = r.text.strip()
            ours = not fc.check(r.text) and "\n" not in text
            fudge = judge(line, text)
            s = score_text(eng, r.text, prompt=line + "\n")
            nll += s.nll * s.tokens
            ntok += s.tokens
            ws = [m.group().lower().replace("’", "'") for m in iter_words(text)]
            words += ws
            rows.append((sonnet, line, text, fudge, ours, s.perplexity))
            print(f"{sonnet:>4} fudge {'ok ' if fudge.ok else 'NO '} ours {'ok ' if ours else 'NO '} "
                  f"{s.perplexity:7.1f}  {line}  ->  {text}", flush=True)
    n = len(rows)
    if not n:
        raise SystemExit("no line was written")
    fudge_ok = sum(r[3].ok for r in rows)
    ours_ok = sum(r[4] for r in rows)
    empty = sum(1 for r in rows if not r[2])
    ppls = sorted(r[5] for r in rows)
    rare = [w for w in words if zipf_frequency(w, "en") < RARE]
    nonw = [w for w in words if non_word(w)]
    distinct1 = len(set(words)) / max(len(words), 1)
    why = {}
    for r in rows:
        for reason in r[3].reasons:
            key = re.sub(r":.*", "", reason) if not reason[0].isdigit() else "syllables not 10"
            why[key] = why.get(key, 0) + 1
    cmd = "python bench/fudge_couplet.py " + " ".join(sys.argv[1:])
    out = ["# FUDGE couplet task\n",
           f"`{cmd.strip()}` ({eng.device}, {eng.name}, sampling, search K={width}, {n} lines, "
           f"{time.time() - t0:.0f} s)\n",
           f"- FUDGE metric (bench/judges/fudge.py: first pronunciations, iambic, 10 syllables, "
           f"phyme perfect rhyme, ends . ? !): **{fudge_ok / n:.2f}** ({fudge_ok}/{n})",
           f"- our checker (check_form, primary pronunciations): **{ours_ok / n:.2f}** ({ours_ok}/{n})",
           f"- FUDGE failures by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(why.items())) or "none"),
           f"- empty lines: {empty}",
           f"- words not common English (wordfreq zipf < {RARE:g}): {len(rare) / max(len(words), 1):.1%} "
           f"({len(rare)} of {len(words)}{': ' + ', '.join(sorted(set(rare))[:20]) if rare else ''})",
           f"- non-words: {len(nonw)}{' (' + ', '.join(sorted(set(nonw))) + ')' if nonw else ''}",
           f"- perplexity of the new lines given line 13 (unconstrained model): mean line "
           f"{sum(ppls) / n:.1f}, median line {ppls[n // 2]:.1f}, corpus {math.exp(nll / ntok):.1f}",
           f"- distinct-1: {distinct1:.3f} ({len(set(words))} distinct of {len(words)} words)",
           "- FUDGE's reported success: FUDGE 0.44, fine-tuning 0.21, PPLM 0.00, Shakespeare 0.45 "
           "(0.448 by this judge: bench/results/fudge-agreement.md)",
           ""]
    if refused:
        out += [f"{len(refused)} line(s) where no iambic line of 10 syllables can rhyme perfectly with "
                "line 13 (the metric cannot be met; an unrhymed iambic line was written, and both "
                "judges count it as failed):"] + [f"- {s}" for s in refused] + [""]
    step = max(1, n // 5)
    out += ["Five sample lines:", ""] + [f"> {r[1]}  \n> **{r[2]}**\n" for r in rows[::step][:5]]
    out += ["| sonnet | line 13 | our line 14 | FUDGE | ours | ppl |", "|---:|---|---|---|---|---:|"]
    out += [f"| {s} | {a} | {b} | {'yes' if f.ok else 'NO: ' + '; '.join(f.reasons)} | "
            f"{'yes' if o else 'NO'} | {p:.1f} |" for s, a, b, f, o, p in rows]
    write_report("\n".join(out) + "\n", "fudge-couplet", eng.device, args.out)


if __name__ == "__main__":
    main()
