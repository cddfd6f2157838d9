"""Which rules need back-off?  vLLM never un-samples a token, so a rule that can leave
nothing allowed (a dead end) cannot be honoured inside it the way our engine honours it
(drop the word in progress, ban that choice, resample).  This measures, on our own
engine, how often each rule reaches a dead end with back-off turned off
(``max_backoffs=0``: the first dead end ends the text, trimmed), and, on the same
prompts and seeds with back-off on, how many back-offs it used.  Every text is judged by
the rule's independent ``check``.

    python bench/backoff_need.py [--prompts 64] [--tokens 40] [--rules 'lipogram:e;syllables:1;form:haiku']

Writes bench/results/backoff-need-<device>.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import studio  # noqa: E402
from studio.api import as_constraint  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from studio.request import with_form  # noqa: E402

DEFAULT_RULES = "lipogram:e;syllables:1;syllables:1 & lipogram:e;form:haiku;form:limerick"


def read_prompts(n: int) -> list[str]:
    lines = (ROOT / "bench" / "data" / "batch_prompts.txt").read_text().splitlines()
    ps = [p for p in lines if p.strip() and not p.startswith("#")]
    return ps[:n]


def run_rule(eng, rule: str, prompts: list[str], tokens: int, backoffs: int) -> dict:
    form = rule[len("form:"):] if rule.startswith("form:") else None
    dead = bad = used = toks = 0
    secs = 0.0
    samples = []
    for i, p in enumerate(prompts):
        kw = dict(form=form) if form else dict(constraints=rule, max_new_tokens=tokens)
        r = studio.generate(p, engine=eng, seed=i, max_backoffs=backoffs, **kw)
        c = with_form(None, form) if form else as_constraint(rule)
        bad += bool(c.check(r.text))
        dead += r.stop_reason == "dead_end"
        used += r.backoffs
        toks += r.tokens
        secs += r.seconds
        if r.stop_reason == "dead_end" and len(samples) < 2:
            samples.append((p, r.text, r.message))
    return dict(dead=dead, bad=bad, backoffs=used, tps=toks / secs if secs else 0.0, samples=samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--rules", default=DEFAULT_RULES, help="rules separated by ';'")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    eng = studio.load()
    prompts = read_prompts(a.prompts)
    t0 = time.perf_counter()
    out = ["# Which rules need back-off (our engine, same prompts and seeds)\n",
           f"`python bench/backoff_need.py --prompts {a.prompts} --tokens {a.tokens} --rules '{a.rules}'`\n",
           f"{len(prompts)} prompts (bench/data/batch_prompts.txt), seed = prompt index, sampling defaults; "
           f"{a.tokens} new tokens (forms: the form's own budget).  'dead ends without back-off' is "
           "what vLLM would meet: texts that reached a state where the rule allows nothing.\n",
           "| rule | dead ends without back-off | texts failing check (no back-off) "
           "| back-offs used with back-off on | texts failing check (back-off on) |",
           "|---|---:|---:|---:|---:|"]
    samples = []
    for rule in [r.strip() for r in a.rules.split(";") if r.strip()]:
        off = run_rule(eng, rule, prompts, a.tokens, 0)
        if off["dead"]:
            on = run_rule(eng, rule, prompts, a.tokens, 64)
            used, bad_on = on["backoffs"], on["bad"]
        else:  # no dead end: with the same seeds, back-off on writes the same texts
            used, bad_on = "0 (same texts)", off["bad"]
        out.append(f"| `{rule}` | {off['dead']}/{len(prompts)} | {off['bad']} | {used} | {bad_on} |")
        print(out[-1], flush=True)
        samples += [(rule, *s) for s in off["samples"]]
    out.append("\n'texts failing check (no back-off)': a dead end is trimmed to the last point "
               "where every rule may end the text, by our loop (Generation.finish) and by the "
               "vLLM bridge (studio/bridges/outcome.py) alike, so a trimmed text still passes "
               "`check`; it is only shorter than asked.")
    if samples:
        out.append("\nDead ends without back-off (prompt, trimmed text, message):\n")
        for rule, p, text, msg in samples:
            out.append(f"- `{rule}` — {p!r} → {text!r} ({msg})")
    out.append(f"\ntotal {time.perf_counter() - t0:.0f} s\n")
    write_report("\n".join(out), "backoff-need", eng.device, a.out)


if __name__ == "__main__":
    main()
