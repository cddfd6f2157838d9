"""Word-level decoding on the embedded model (issue 3), measured in one run:

- speed: tokens/s under syllables:1 and writing a sonnet vs unconstrained, runs
  interleaved (targets >= 0.90 and >= 0.85), after one warm-up of each (cold costs shown)
- satisfaction: every word-level constraint family (the registry's examples, plus
  compositions) and every form over a suite of prompts, judged by the independent check
- contrast: the token-level CTGS filter (a token passes if its stripped text, as a word,
  passes) on the same prompts: how often its output words break the rule

    python bench/wordlevel.py [--prompts 20] [--tokens 32] [--speed-runs 3]
                              [--parts speed,words,forms,ctgs] [--device auto]
Writes bench/results/wordlevel-<device>.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import studio  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from constraints.base import entries, iter_words  # noqa: E402
from constraints.forms import BUILTINS  # noqa: E402
from constraints.phonetics import estimate_syllables, rhyme_keys, syllable_counts  # noqa: E402
from studio.masks.forms import FormMasker  # noqa: E402
from studio.request import form_of, poem_prompt, with_form  # noqa: E402
from studio.decode.settings import Settings  # noqa: E402
from constraints.spec import parse_spec  # noqa: E402
from studio.masks.words import WordMasker  # noqa: E402


def prompts(n: int) -> list[str]:
    lines = (ROOT / "bench" / "data" / "prompts.txt").read_text().splitlines()
    return [ln for ln in lines if ln.strip() and not ln.startswith("#")][:n]


# ---------------------------------------------------------------- speed

MASK_TIME = [0.0]


def _timed(cls):
    # Time spent in the maskers themselves, to show the per-step cost beside the ratio.
    for name in ("allowed", "advance"):
        orig = getattr(cls, name)

        def wrap(self, *a, _orig=orig):
            t = time.perf_counter()
            try:
                return _orig(self, *a)
            finally:
                MASK_TIME[0] += time.perf_counter() - t

        setattr(cls, name, wrap)


def speed(eng, runs: int, tokens: int, out: list[str]) -> None:
    _timed(WordMasker)
    _timed(FormMasker)
    ps = prompts(3)
    syl = parse_spec("syllables:1")
    son = with_form(None, "sonnet")

    def gen(prompt, c, n, seed, fixed=True):
        MASK_TIME[0] = 0.0
        s = Settings(max_new_tokens=n, min_new_tokens=n if fixed else 0, seed=seed)
        r = eng.generate(prompt, c, s)
        return r, MASK_TIME[0]

    # Warm-up: build the masks and tables once (cold costs reported, not in the ratios).
    t = time.perf_counter()
    gen(ps[0], syl, 8, 0)
    cold_syl = time.perf_counter() - t
    t = time.perf_counter()
    p0, budget = poem_prompt(ps[0], form_of(son), "continue")
    gen(p0, son, budget, 0, fixed=False)
    cold_son = time.perf_counter() - t
    gen(ps[0], None, 8, 0)
    rows = {k: [0, 0.0, 0.0] for k in ("unconstrained", "syllables:1", "unconstrained (sonnet lengths)", "sonnet")}

    def add(key, r, mt):
        rows[key][0] += r.tokens
        rows[key][1] += r.seconds
        rows[key][2] += mt

    for run in range(runs):
        for i, p in enumerate(ps):
            seed = 100 * run + i
            add("unconstrained", *gen(p, None, tokens, seed))
            add("syllables:1", *gen(p, syl, tokens, seed))
            ps_, budget = poem_prompt(p, form_of(son), "continue")
            r, mt = gen(ps_, son, budget, seed, fixed=False)
            add("sonnet", r, mt)
            # The same number of tokens after the same prompt: KV-cache length matches.
            add("unconstrained (sonnet lengths)", *gen(ps_, None, r.tokens, seed))
    tps = {k: n / s for k, (n, s, _) in rows.items()}
    out.append(f"## Speed ({eng.device}, {eng.name}; sampling; {runs} runs x {len(ps)} prompts, interleaved)\n")
    out.append(f"cold start (first generation, builds tables and masks): syllables:1 {cold_syl:.1f} s "
               f"for 8 tokens; sonnet {cold_son:.1f} s\n")
    out.append("| run | tokens | tok/s | mask time per step |")
    out.append("|---|---:|---:|---:|")
    for k, (n, s, mt) in rows.items():
        out.append(f"| {k} | {n} | {tps[k]:.2f} | {1000 * mt / max(n, 1):.2f} ms |")
    r1 = tps["syllables:1"] / tps["unconstrained"]
    r2 = tps["sonnet"] / tps["unconstrained (sonnet lengths)"]
    out.append("")
    out.append(f"- syllables:1 / unconstrained: **{r1:.3f}** (target >= 0.90)")
    out.append(f"- sonnet / unconstrained (same lengths): **{r2:.3f}** (target >= 0.85)")
    share = rows["sonnet"][2] / rows["sonnet"][1]
    out.append(f"- share of sonnet decode time spent in the form masker: {100 * share:.1f}%\n")


# ---------------------------------------------------------------- satisfaction

COMPOSED = ["syllables:1 & starts-with:s", "!starts-with:t", "syllables:1 | starts-with:b",
            "syllables:<=2 & length:<=5"]


def word_specs() -> list[str]:
    return [e.example for e in entries() if e.level == "word"] + COMPOSED


def suite_words(eng, n: int, tokens: int, out: list[str]) -> None:
    ps = prompts(n)
    out.append(f"## Constraint satisfaction: word level ({len(ps)} prompts each, {tokens} new tokens, "
               "independent check)\n")
    out.append("| constraint | texts ok | words | violations | dead ends | tok/s |")
    out.append("|---|---:|---:|---:|---:|---:|")
    total_bad = 0
    for spec in word_specs():
        c = parse_spec(spec)
        ok = words = bad = dead = toks = 0
        secs = 0.0
        for i, p in enumerate(ps):
            r = eng.generate(p, c, Settings(max_new_tokens=tokens, seed=i))
            vs = c.check(r.text)
            ok += not vs
            bad += len(vs)
            words += sum(1 for _ in iter_words(r.text))
            dead += r.stop_reason == "dead_end"
            toks += r.tokens
            secs += r.seconds
        total_bad += bad
        out.append(f"| `{spec}` | {ok}/{len(ps)} | {words} | {bad} | {dead} | {toks / secs:.1f} |")
        print(out[-1], flush=True)
    out.append(f"\nviolations over every word-level run: {total_bad}\n")


def suite_forms(eng, n: int, out: list[str]) -> None:
    ps = prompts(n)
    out.append(f"## Constraint satisfaction: forms ({len(ps)} prompts each, independent check_form)\n")
    out.append("| form | poems ok | complete (EOS) | lines | back-offs | tok/s |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name in BUILTINS:
        ok = done = lines = backoffs = toks = 0
        secs = 0.0
        for i, p in enumerate(ps):
            r = studio.generate(p, form=name, engine=eng, seed=i)
            fc = with_form(None, name)
            ok += not fc.check(r.text)
            done += r.stop_reason == "eos"
            lines += len(r.text.split("\n")) if r.text else 0
            backoffs += r.backoffs
            toks += r.tokens
            secs += r.seconds
        out.append(f"| {name} | {ok}/{len(ps)} | {done}/{len(ps)} | {lines} | {backoffs} | {toks / secs:.1f} |")
        print(out[-1], flush=True)
    out.append("")


# ---------------------------------------------------------------- CTGS contrast


def _letters(text: str) -> str:
    return re.sub(r"[^A-Za-z']", "", text).strip("'").lower()


def ctgs_token_ok(spec: str):
    """The original studio's filter: each token judged as if it were a word."""
    if spec.startswith("syllables:"):
        n = int(spec.split(":")[1])

        def ok(t):
            s = _letters(t)
            return not s or n in (syllable_counts(s) or {estimate_syllables(s)})
        return ok
    word = spec.split(":")[1]
    keys = rhyme_keys(word)
    return lambda t: not _letters(t) or (_letters(t) != word and bool(rhyme_keys(_letters(t)) & keys))


class TokenFilter:
    """A controller that masks tokens failing a per-token test (the CTGS approach)."""

    def __init__(self, eng, test):
        self.mask = eng.vocab.mask(("ctgs", id(test)), lambda _i, t: test(t))

    def adjust(self, scores, gen):
        return scores.masked_fill(~self.mask, float("-inf"))


def ctgs(eng, n: int, tokens: int, out: list[str]) -> None:
    ps = prompts(n)
    out.append(f"## Token-level CTGS filter vs ours ({len(ps)} prompts, {tokens} tokens, same seeds)\n")
    out.append("| rule | CTGS: words breaking it | CTGS: texts with a break | ours: words breaking it |")
    out.append("|---|---:|---:|---:|")
    for spec in ("syllables:1", "syllables:2", "rhymes:day"):
        c = parse_spec(spec)
        filt = TokenFilter(eng, ctgs_token_ok(spec))
        cw = cb = ct = ow = ob = 0
        for i, p in enumerate(ps):
            s = Settings(max_new_tokens=tokens, seed=i)
            r = eng.generate(p, None, s, controllers=[filt])
            vs = c.check(r.text)
            cw += sum(1 for _ in iter_words(r.text))
            cb += len(vs)
            ct += bool(vs)
            r = eng.generate(p, c, s)
            ow += sum(1 for _ in iter_words(r.text))
            ob += len(c.check(r.text))
        out.append(f"| `{spec}` | {cb}/{cw} ({100 * cb / max(cw, 1):.1f}%) | {ct}/{len(ps)} | "
                   f"{ob}/{ow} ({100 * ob / max(ow, 1):.1f}%) |")
        print(out[-1], flush=True)
    out.append("")


def random_engine(path: str, device: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from models.loading import LoadedModel
    from studio.decode.engine import Engine

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch.float32)
    lm = LoadedModel(model.to(dev).eval(), AutoTokenizer.from_pretrained(path), "random-weights", dev, torch.float32)
    return Engine(lm)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per word-level run")
    ap.add_argument("--speed-tokens", type=int, default=100)
    ap.add_argument("--speed-runs", type=int, default=3)
    ap.add_argument("--parts", default="speed,words,forms,ctgs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--random-weights", default=None, metavar="DIR",
                    help="a randomly initialised model with DIR's config and tokenizer (speed checks "
                         "on a machine without the embedded weights; the text is noise)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    eng = random_engine(args.random_weights, args.device) if args.random_weights else studio.load(device=args.device)
    out = [f"# Word-level decoding benchmark\n", f"`python bench/wordlevel.py {' '.join(sys.argv[1:])}`\n"]
    parts = args.parts.split(",")
    t0 = time.time()
    if "speed" in parts:
        speed(eng, args.speed_runs, args.speed_tokens, out)
        print("\n".join(out), flush=True)
    if "words" in parts:
        suite_words(eng, args.prompts, args.tokens, out)
    if "forms" in parts:
        suite_forms(eng, args.prompts, out)
    if "ctgs" in parts:
        ctgs(eng, args.prompts, args.tokens, out)
    out.append(f"total {time.time() - t0:.0f} s")
    write_report("\n".join(out) + "\n", "wordlevel", eng.device, args.out)


if __name__ == "__main__":
    main()
