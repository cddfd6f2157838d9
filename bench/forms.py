"""Haiku, limerick and sonnet on 20 prompts each, judged strictly twice: by our checker
(check_form, primary pronunciations, perfect rhyme) and by a field-style judge written
apart from it (bench/judges/poem.py: FUDGE's reading, line by line, phyme's rhyme groups).

Beside the pass rates: words that are not common English (wordfreq zipf < 3), non-words,
the perplexity of each poem under the unconstrained model after its prompt, seconds per
poem, and five poems of each form so a reader can judge them.

    python bench/forms.py [--prompts 20] [--search K] [--forms haiku,limerick,sonnet]
Writes bench/results/forms-<device>.md (or --out).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from wordfreq import zipf_frequency  # noqa: E402

import studio  # noqa: E402
from constraints.units import iter_words  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from studio.request import DEFAULT_POEM_SEARCH, with_form  # noqa: E402
from studio.scoring import score_text  # noqa: E402
from judges.fudge import count_syllables  # noqa: E402
from judges.poem import FORMS, judge  # noqa: E402
from fudge_couplet import RARE, non_word  # noqa: E402


def prompts(n: int) -> list[str]:
    lines = (ROOT / "bench" / "data" / "prompts.txt").read_text().splitlines()
    return [p for p in lines if p.strip() and not p.startswith("#")][:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--search", type=int, default=None, help=f"lines tried per line (default {DEFAULT_POEM_SEARCH})")
    ap.add_argument("--forms", default="haiku,limerick,sonnet")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    eng = studio.load()
    ps = prompts(a.prompts)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    cmd = f"python bench/forms.py --prompts {a.prompts}" + (f" --search {a.search}" if a.search else "")
    out = [f"# Forms under the strict judges ({commit})\n", f"`{cmd}`\n",
           f"{len(ps)} prompts (bench/data/prompts.txt), seed = prompt index, sampling defaults, search width "
           f"{a.search or DEFAULT_POEM_SEARCH}.  *ours*: check_form (primary pronunciations, perfect rhyme); "
           "*field*: bench/judges/poem.py (FUDGE's reading per line, phyme's rhyme groups, distinct rhyme "
           "words), sharing no code with ours.\n",
           "| form | complete | ours passes | field judge passes | words zipf < 3 | non-words | perplexity (median) "
           "| seconds per poem (median) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    samples, failures, listed = [], [], []
    for form in a.forms.split(","):
        fc = with_form(None, form)
        syl, scheme, iambic = FORMS[form]
        rows = []
        for i, p in enumerate(ps):
            t0 = time.perf_counter()
            r = studio.generate(p, form=form, seed=i, search=a.search, engine=eng)
            secs = time.perf_counter() - t0
            ours = fc.check(r.text)
            field = judge(r.text, syl, scheme, iambic)
            words = [m.group() for m in iter_words(r.text)]
            rare = [w for w in words if zipf_frequency(w.lower(), "en") < RARE]
            bad = [w for w in words if non_word(w.lower())]  # "I" is a word; non_word wants lower case
            ppl = score_text(eng, r.text, prompt=p.rstrip() + "\n").perplexity if r.text.strip() else float("inf")
            rows.append(dict(prompt=p, text=r.text, done=r.stop_reason == "eos", ours=not ours, field=not field,
                             words=len(words), rare=len(rare), rare_words=rare, bad=bad, ppl=ppl, secs=secs))
            if field or ours:
                failures.append((form, p, r.text, [v.message for v in ours][:3], field[:3]))
            print(f"{form} {i + 1}/{len(ps)}: ours {not ours}, field {not field}, {secs:.0f} s", flush=True)
        n = len(rows)
        words = sum(x["words"] for x in rows)
        out.append(f"| {form} | {sum(x['done'] for x in rows)}/{n} | {sum(x['ours'] for x in rows)}/{n} "
                   f"| {sum(x['field'] for x in rows)}/{n} | {100 * sum(x['rare'] for x in rows) / max(words, 1):.1f}% "
                   f"| {sum(len(x['bad']) for x in rows)} | {statistics.median(x['ppl'] for x in rows):.1f} "
                   f"| {statistics.median(x['secs'] for x in rows):.0f} |")
        samples.append((form, rows[:5]))
        listed.append(f"- {form}: rare words {sorted({w for x in rows for w in x['rare_words']}) or 'none'}; "
                      f"non-words {sorted({w for x in rows for w in x['bad']}) or 'none'}")
    out += [""] + listed + [""]
    for form, rows in samples:
        out.append(f"## Five {form}s\n")
        for x in rows:
            syl = " ".join(str(count_syllables(ln)) for ln in x["text"].split("\n") if ln.strip())
            out.append(f"*{x['prompt']}* (syllables by first pronunciation: {syl})\n")
            out.append("\n".join(f"> {ln}" for ln in x["text"].split("\n")) + "\n")
    if failures:
        out.append("## Every failure\n")
        for form, p, text, ours, field in failures:
            out.append(f"- {form}, *{p}*: ours {ours or 'pass'}; field {field or 'pass'}\n  "
                       + " / ".join(text.split("\n")))
    write_report("\n".join(out) + "\n", "forms", eng.device, a.out)


if __name__ == "__main__":
    main()
