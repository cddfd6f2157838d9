"""What the rules cost the text, judged by the unconstrained model in the same run.

For every line a form wrote:
- **the last word's log-probability** (nats, summed over its tokens) given the line before it
  and the line so far, under the unconstrained model: a word the model would never choose
  there scores low however well the rest of the line reads;
- whether the line **ends badly**: on a function word (this file's own list, below: it
  shares nothing with the decoder's constraints/line_ends.py), trailing off in "..." or
  empty.

The bar a forced word falls below is calibrated in the same run on the poets' own lines:
the 10th percentile of the last-word log-probability of Shakespeare's 14th lines given
their 13th (bench/data/sonnets.txt).  Pope's, Byron's and the other poets' couplets in
``../shared/data/verse/couplets.tsv`` are measured the same way beside it.

For the prose rules (and each form), the perplexity of the constrained text against the
unconstrained text from the same prompts, both scored by the model after the prompt.

For the couplet tasks, FUDGE's own metric (bench/judges/fudge.py: iambic, ten syllables,
phyme's perfect rhyme, ends . ? !) beside our checker.

Arms: *before* is the decoding of the earlier commits (lines may end on any word,
``;enjamb``, the end word is not planned, no particles); *planned* adds the line ends and
the planned end word; *after* is the default (and the particle filter:
studio/decode/search.py).  All run in the same process, rotated per prompt, same seeds.
Prose is written four ways from the same prompts: one path (the default for prose), K
lines without particles, K particles (``--search K``, default 4; weighted by likelihood,
the default) and K particles weighted by the mass the masks left (``particle_weight="mass"``).

    python bench/cost.py [--poems 20] [--couplets 40] [--forms couplet,haiku,limerick,sonnet]
                         [--prose 20] [--arms before,planned,after] [--out FILE]
Writes bench/results/cost-<device>.md (or --out).
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

import studio  # noqa: E402
from studio.benchmark import write_report  # noqa: E402
from studio.scoring import score_text  # noqa: E402
from constraints.forms import FormError  # noqa: E402
from constraints.formspec import FormPlan  # noqa: E402

from forms import prompts  # noqa: E402
from fudge_couplet import END, FORM, thirteenth_lines  # noqa: E402
from judges.fudge import judge as fudge_judge  # noqa: E402

VERSE = ROOT.parent / "shared" / "data" / "verse" / "couplets.tsv"

# The judge's function words: Penn Treebank's closed classes that open a phrase (DT articles
# and determiners, PRP$ possessives, IN/TO prepositions and subordinators, CC conjunctions,
# WDT/WP$ relatives), as a reader would list them.  Written here, apart from the decoder's.
FUNCTION_WORDS = frozenset("""
a an the this these those that's every each either neither no some any
my your his her its our their thy thine's whose
of to in into onto unto upon on at by for from with without within through throughout
over under above below beneath between among amongst amid across against along around
about after before behind beside besides beyond during except inside near off out outside
past since than toward towards until till via per o'er 'gainst thro
and or but nor yet so if because although though unless whether while whilst lest as
which what whom who where when
i'm you're we're they're he's she's it's 'tis 'twas there's i'll you'll we'll they'll
i've you've we've they've i'd you'd we'd they'd let's
very quite rather too
""".split()) - {"her", "in", "on", "off", "out", "over", "past", "about", "around", "along", "by",
                "after", "before", "behind", "below", "above", "beyond", "near", "inside",
                "outside", "since", "too", "yet", "so", "that's", "what", "who", "where", "when",
                "though", "some", "any", "no", "this", "these", "those", "each", "either",
                "neither", "under", "without", "within", "through", "throughout", "across"}
# (The words taken back out close a phrase as adverbs or pronouns: "come in", "and so on",
# "I know who", "love her".)

WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
PROSE_RULES = ("lipogram:e", "syllables:1 & lipogram:e")
FORMS = ("couplet", "haiku", "limerick", "sonnet")


# ---------------------------------------------------------------------- the reader

@torch.inference_mode()
def last_word_logprob(engine, before: str, line: str) -> float | None:
    """log P(the line's last word | ``before``, newline, the line up to that word), in nats
    over the word's tokens (its leading space included); None when the line has no word."""
    words = list(WORD.finditer(line))
    if not words:
        return None
    w = words[-1]
    head = (before.rstrip("\n") + "\n" if before else "") + line[:w.start()]
    tok = engine.tokenizer
    ctx = tok.encode(head.rstrip(" ") if head.endswith(" ") else head, add_special_tokens=False)
    full = tok.encode(head + w.group(), add_special_tokens=False)
    k = 0
    while k < min(len(ctx), len(full)) and ctx[k] == full[k]:
        k += 1
    k = max(k, 1)
    x = torch.tensor([full], device=engine.device)
    logp = torch.log_softmax(engine.model(input_ids=x).logits[0].float(), dim=-1)
    return float(sum(logp[t - 1, full[t]] for t in range(k, len(full))))


def ends_badly(line: str) -> str | None:
    """Why a line ends where no phrase does: 'empty', 'trails off' or 'function word'."""
    s = line.strip()
    if not WORD.search(s):
        return "empty"
    if s.endswith(("...", "…", "..", "-", "—")):
        return "trails off"
    last = WORD.findall(s)[-1].lower().replace("’", "'")
    return "function word" if last in FUNCTION_WORDS else None


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = (len(xs) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


# ---------------------------------------------------------------------- calibration

def shakespeare_couplets() -> list[tuple[str, str]]:
    text = (ROOT / "bench" / "data" / "sonnets.txt").read_text(encoding="utf-8")
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        if lines and lines[0].isdigit() and len(lines) >= 3:
            out.append((lines[-2].strip(), lines[-1].strip()))
    return out


def other_poets(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` (poet, line 1, line 2) rows of the verse corpus, drawn evenly across poets."""
    if not VERSE.exists():
        return []
    rows = [r.split("\t") for r in VERSE.read_text(encoding="utf-8").splitlines()[1:] if r.count("\t") == 2]
    by: dict[str, list] = {}
    for poet, a, b in rows:
        by.setdefault(poet, []).append((poet, a, b))
    rng = random.Random(seed)
    for v in by.values():
        rng.shuffle(v)
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in by.values()):
        out += [v[i] for v in by.values() if i < len(v)]
        i += 1
    return out[:n]


# ---------------------------------------------------------------------- arms

def arm_kwargs(arm: str) -> dict:
    """How an arm decodes: *before* lets lines end anywhere, does not plan the end word and
    does not resample; *planned* plans but does not resample; *after* is the default."""
    if arm == "before":
        return {"enjamb": True, "plan_ends": False, "particles": False}
    if arm == "planned":
        return {"particles": False}
    if arm == "after":
        return {}
    raise SystemExit(f"unknown arm {arm!r} (arms: before, planned, after)")


def form_constraint(form: str, given=(), arm: str = "after"):
    from constraints.formspec import FormConstraint
    kw = arm_kwargs(arm)
    name, end = (FORM, END) if form == "couplet" else (form, "")
    return FormConstraint(name, list(given), end, enjamb=kw.get("enjamb", False))


def write_poem(engine, prompt: str, fc, seed: int, arm: str, search: int | None):
    kw = {k: v for k, v in arm_kwargs(arm).items() if k != "enjamb"}
    return studio.generate(prompt, form=fc, seed=seed, search=search, engine=engine, **kw)


def line_rows(engine, before: str, text: str) -> list[dict]:
    """Per new line: its last word's log-probability given the line before, and how it ends."""
    out = []
    prev = before
    for line in text.split("\n"):
        if not line.strip():
            continue
        out.append({"line": line, "lp": last_word_logprob(engine, prev, line), "bad": ends_badly(line)})
        prev = line
    if not out:
        out.append({"line": "", "lp": None, "bad": "empty"})
    return out


def summary(lines: list[dict], bar: float) -> tuple[str, str, str]:
    lps = [x["lp"] for x in lines if x["lp"] is not None]
    below = sum(1 for x in lines if x["lp"] is None or x["lp"] < bar)
    bad = sum(1 for x in lines if x["bad"])
    n = max(len(lines), 1)
    med = statistics.median(lps) if lps else float("nan")
    return f"{med:.2f}", f"{below / n:.0%} ({below}/{len(lines)})", f"{bad / n:.0%} ({bad}/{len(lines)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--poems", type=int, default=20, help="prompts per form (haiku, limerick, sonnet)")
    ap.add_argument("--couplets", type=int, default=40, help="couplets per task (Shakespeare's, other poets')")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--prose", type=int, default=20, help="prompts per prose rule (0: none)")
    ap.add_argument("--arms", default="before,planned,after")
    ap.add_argument("--search", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    for arm in arms:
        arm_kwargs(arm)
    forms = [f.strip() for f in a.forms.split(",") if f.strip()]
    eng = studio.load()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    t0 = time.time()

    # The bar, from the poets' own lines.
    shak = shakespeare_couplets()
    shak_lp = [last_word_logprob(eng, a13, a14) for a13, a14 in shak]
    bar = percentile([x for x in shak_lp if x is not None], 0.10)
    shak_bad = sum(1 for _, a14 in shak if ends_badly(a14))
    poets = other_poets(a.couplets)
    poets_lp = [last_word_logprob(eng, l1, l2) for _, l1, l2 in poets]
    poets_bad = sum(1 for _, _, l2 in poets if ends_badly(l2))

    out = [f"# What the rules cost ({commit}{', uncommitted changes' if dirty else ''})\n",
           f"`python bench/cost.py {' '.join(sys.argv[1:])}`".replace(" `", "`") + "\n",
           f"{eng.name} on {eng.device}; the unconstrained model is the reader.  Arms: {', '.join(arms)} "
           "(*before*: lines may end on any word and the end word is not planned, as in earlier commits; "
           "*after*: the defaults).  Same prompts and seeds in every arm, interleaved.\n",
           "## The bar, from the poets' own lines\n",
           "| lines | last word log-prob (median) | 10th percentile | end badly |", "|---|---:|---:|---:|",
           f"| Shakespeare's 14th lines given the 13th ({len(shak)}) | {statistics.median(shak_lp):.2f} | "
           f"**{bar:.2f}** (the bar) | {shak_bad / len(shak):.0%} |"]
    if poets:
        ok = [x for x in poets_lp if x is not None]
        below = sum(1 for x in ok if x < bar)
        out.append(f"| other poets' couplets, line 2 given line 1 ({len(poets)}; "
                   f"{', '.join(sorted({p for p, _, _ in poets}))}) | {statistics.median(ok):.2f} | "
                   f"{percentile(ok, 0.10):.2f} ({below / len(ok):.0%} below the bar) | {poets_bad / len(poets):.0%} |")
    out.append("")

    tasks: list[tuple[str, list[tuple[str, tuple, int]]]] = []  # (form, [(prompt, given, seed)])
    ps = prompts(a.poems)
    for form in forms:
        if form == "couplet":
            tasks.append(("couplet (Shakespeare's 13th lines)",
                          [("", (l13,), s) for s, l13 in thirteenth_lines()[: a.couplets]]))
            if poets:
                tasks.append(("couplet (other poets' first lines)",
                              [("", (l1,), 7000 + i) for i, (_, l1, _) in enumerate(poets)]))
        else:
            tasks.append((form, [(p, (), i) for i, p in enumerate(ps)]))

    table = ["## Forms\n",
             "| task | arm | lines | last word log-prob (median) | below the bar | end badly | ours passes "
             "| FUDGE metric | poem perplexity (median) | free text perplexity (median) | seconds per poem (median) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    shown: list[str] = []
    notes: list[str] = []
    for task, items in tasks:
        form = task.split(" ")[0]
        per_arm = {arm: {"lines": [], "ok": 0, "fudge": 0, "ppl": [], "free": [], "secs": [], "poems": []}
                   for arm in arms}
        refused = []
        for n, (prompt, given, seed) in enumerate(items):
            try:
                for arm in arms:
                    FormPlan(form_constraint(form, given, arm))
            except FormError as e:
                # No line of the form can rhyme with the given one ("pleasure"): not written.
                refused.append(f"{given[-1] if given else prompt}: {e}")
                continue
            free_ppl = None
            if prompt:
                free = studio.generate(prompt, seed=seed, engine=eng,
                                       max_new_tokens={"haiku": 24, "limerick": 48}.get(form, 140))
                if free.text.strip():
                    free_ppl = score_text(eng, free.text, prompt=prompt.rstrip() + "\n").perplexity
            order = arms[n % len(arms):] + arms[: n % len(arms)]  # rotate the arms per item
            for arm in order:
                fc = form_constraint(form, given, arm)
                t = time.perf_counter()
                r = write_poem(eng, prompt, fc, seed, arm, a.search)
                secs = time.perf_counter() - t
                d = per_arm[arm]
                before = prompt.rstrip() if prompt else given[-1]
                d["lines"] += line_rows(eng, before, r.text)
                d["ok"] += not fc.check(r.text)
                if form == "couplet":
                    d["fudge"] += fudge_judge(given[-1], r.text.strip()).ok
                d["secs"].append(secs)
                if r.text.strip():
                    ctx = (prompt.rstrip() + "\n") if prompt else given[-1] + "\n"
                    d["ppl"].append(score_text(eng, r.text, prompt=ctx).perplexity)
                if free_ppl is not None:
                    d["free"].append(free_ppl)
                d["poems"].append((prompt or given[-1], r.text))
            print(f"{task} {n + 1}/{len(items)}", flush=True)
        if refused:
            notes.append(f"- {task}: {len(refused)} given line(s) no line of the form can rhyme with, "
                         "not written: " + "; ".join(refused))
        for arm in arms:
            d = per_arm[arm]
            if not d["poems"]:
                continue
            med, below, bad = summary(d["lines"], bar)
            free = f"{statistics.median(d['free']):.1f}" if d["free"] else "–"
            fudge = f"{d['fudge']}/{len(d['poems'])}" if form == "couplet" else "–"
            table.append(f"| {task} | {arm} | {len(d['lines'])} | {med} | {below} | {bad} | {d['ok']}/{len(d['poems'])} "
                         f"| {fudge} "
                         f"| {statistics.median(d['ppl']) if d['ppl'] else float('nan'):.1f} | {free} "
                         f"| {statistics.median(d['secs']):.1f} |")
        shown.append(f"### {task}\n")
        for i in range(min(20, len(per_arm[arms[0]]["poems"]))):
            shown.append(f"*{per_arm[arms[0]]['poems'][i][0]}*\n")
            for arm in arms:
                text = per_arm[arm]["poems"][i][1]
                shown.append(f"{arm}:\n\n" + "\n".join(f"> {ln}  " for ln in text.split("\n") if ln.strip()) + "\n")
    out += table + [""] + notes + [""]

    if a.prose:
        # Prose has no lines to plan: one path (the default), K lines, K particles.
        k = a.search or 4
        prose_arms = [("one path", {"search": 1}), (f"K={k} lines", {"search": k, "particles": False}),
                      (f"K={k} particles", {"search": k}),
                      (f"K={k} particles, mass weights", {"search": k, "particle_weight": "mass"})]
        pr = ["## Prose rules: perplexity against free text from the same prompts\n",
              "| rule | decoding | texts | tokens (median) | perplexity (median) | free text (median) | "
              "ratio of medians | ratio per prompt (median [min, max]) | seconds (median) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        samples = []
        pp = prompts(a.prose)
        free = []
        for i, p in enumerate(pp):
            t = studio.generate(p, seed=i, engine=eng, max_new_tokens=60).text
            free.append(score_text(eng, t, prompt=p.rstrip() + "\n").perplexity if t.strip() else float("nan"))
        fm = statistics.median(x for x in free if not math.isnan(x))
        for rule in PROSE_RULES:
            got = {name: {"ppl": [], "ratios": [], "tokens": [], "secs": []} for name, _ in prose_arms}
            for i, p in enumerate(pp):
                order = prose_arms[i % len(prose_arms):] + prose_arms[: i % len(prose_arms)]
                for name, kw in order:
                    t = time.perf_counter()
                    r = studio.generate(p, rule, seed=i, engine=eng, max_new_tokens=60, **kw)
                    g = got[name]
                    g["secs"].append(time.perf_counter() - t)
                    g["tokens"].append(r.tokens)
                    if not r.text.strip():
                        continue
                    sc = score_text(eng, r.text, prompt=p.rstrip() + "\n").perplexity
                    g["ppl"].append(sc)
                    if not math.isnan(free[i]):
                        g["ratios"].append(sc / free[i])
                    if i < 5:
                        samples.append(f"- `{rule}`, {name}, *{p}*: {r.text.strip()}")
            for name, _ in prose_arms:
                g = got[name]
                pr.append(f"| `{rule}` | {name} | {len(g['ppl'])} | {statistics.median(g['tokens']):.0f} | "
                          f"{statistics.median(g['ppl']):.1f} | {fm:.1f} | {statistics.median(g['ppl']) / fm:.2f} | "
                          f"{statistics.median(g['ratios']):.2f} [{min(g['ratios']):.2f}, {max(g['ratios']):.2f}] | "
                          f"{statistics.median(g['secs']):.1f} |")
        out += pr + ["", "Samples:", ""] + samples + [""]

    out += ["## Poems, before and after\n"] + shown
    out.append(f"\n{time.time() - t0:.0f} s in all.")
    write_report("\n".join(out) + "\n", "cost", eng.device, a.out)


if __name__ == "__main__":
    main()
