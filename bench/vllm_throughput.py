"""Perec's rules inside vLLM: throughput against vLLM unconstrained on the same prompts,
and every output judged by the rules' independent ``check`` (what `perec check` runs).

Runs in the vLLM environment (``make vllm``):

    PEREC_CACHE=... .venv-vllm/bin/python bench/vllm_throughput.py [--prompts 64] [--tokens 48]
        [--runs 3] [--arms 'lipogram:e;syllables:1;form:haiku;syllables:1 & lipogram:e']
        [--backends vllm] [--out bench/results/vllm-cpu.md]

Every request of an arm gets the same prompt list, seeds (the prompt's index) and token
count (min_new_tokens = max_new_tokens in every arm, so the end of text is held the same
way and every arm writes the same number of tokens unless a form ends a text).  A control
arm runs a rule that masks nothing, and a top_p=1 pair (unconstrained and lipogram:e)
takes vLLM's top-p sort out, so a ratio can be read for what causes it.  Our engine
decodes as many rows at once as vLLM (``--rows``, default: every request).  One warm-up
pass of every arm (tables built on first use), then ``--runs`` rounds, arms interleaved
within each round and their order rotated by one each round; the ratio of an arm is its
tokens/s over its baseline's in the same round: median, min and max are reported, with
every round's figures.  A rule set that needs our engine is refused by
the bridge: the report shows the refusal.

Backends are callables ``run(requests) -> iterable of result dicts`` in ``BACKENDS``; to
compare another engine on the same requests in the same run, add one there and name it
in ``--backends`` (its arms are timed in the same rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Runner = Callable[[list[dict]], Iterable[dict]]
BACKENDS: dict[str, Callable[[argparse.Namespace], Runner]] = {}


def backend(name: str):
    def deco(make):
        BACKENDS[name] = make
        return make
    return deco


@backend("vllm")
def vllm_backend(a: argparse.Namespace) -> Runner:
    from studio.bridges.vllm import make_llm, run_batch

    llm = make_llm(a.model, max_model_len=a.max_model_len, kv_cache_gib=a.kv_cache_gib)
    return lambda requests: run_batch(requests, llm=llm)


@backend("perec")
def perec_backend(a: argparse.Namespace) -> Runner:
    """Our engine with batched rows, as `perec batch` runs it (studio/batch.py): ``--rows``
    requests decoded together, a finished one's place taken at once.  One path per request
    (search width 1), as vLLM samples."""
    import studio
    from studio.batch import Line, Progress, run_engine
    from studio.request import Request

    eng = studio.load(a.model)

    class Collect(list):
        write = list.append

    def run(requests):
        lines = [Line(r["id"], Request.from_dict(dict(r, search=1))) for r in requests]
        out = Collect()
        run_engine(lines, eng, out, Progress(total=len(lines)), rows=a.rows)
        return out
    return run


def read_prompts(n: int) -> list[str]:
    lines = (ROOT / "bench" / "data" / "batch_prompts.txt").read_text().splitlines()
    return [p for p in lines if p.strip() and not p.startswith("#")][:n]


# A rule the processor runs in full that never removes a token the model would write: its
# arm separates the cost of running our masks from the effect of rows that are mostly −inf
# (vLLM's CPU top-p sort is cheaper over those).
CONTROL = "ban-words:qzxqzxqzx"
TOP_P_OFF = "@top_p=1"  # an arm suffix: the same rules with top-p off (no sort at all)


def requests_for(arm: str | None, prompts: list[str], tokens: int) -> list[dict]:
    top_p_off = isinstance(arm, str) and arm.endswith(TOP_P_OFF)
    if top_p_off:
        arm = arm[:-len(TOP_P_OFF)].strip() or None
    out = []
    for i, p in enumerate(prompts):
        r = {"id": str(i), "prompt": p, "settings": {"seed": i}}
        if top_p_off:
            r["settings"]["top_p"] = 1.0
        if arm and arm.startswith("form:"):
            r["form"] = arm[len("form:"):]  # the form's own token budget
        else:
            r["settings"].update(max_new_tokens=tokens, min_new_tokens=tokens)
            if arm:
                r["constraints"] = arm
        out.append(r)
    return out


def label(arm) -> str:
    if isinstance(arm, tuple):
        return f"unconstrained, {arm[1]} lengths"
    if arm == CONTROL:
        return f"control ({CONTROL}: masks nothing)"
    if arm == TOP_P_OFF:
        return "unconstrained, top_p=1"
    return arm or "unconstrained"


def baseline(arm):
    """The arm a rule set's throughput is compared with, in the same round: a form's is
    unconstrained text of the poems' lengths; a top_p=1 arm's, unconstrained at top_p=1."""
    if isinstance(arm, str) and arm.startswith("form:"):
        return ("lengths", arm)
    if isinstance(arm, str) and arm.endswith(TOP_P_OFF) and arm != TOP_P_OFF:
        return TOP_P_OFF
    return None


def timed(run: Runner, requests: list[dict]) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    results = list(run(requests))
    return time.perf_counter() - t0, results


def judge(arm: str | None, results: list[dict]) -> dict:
    """Tokens, refusals, stop reasons and the independent check of every text."""
    from studio.api import as_constraint, check
    from studio.request import with_form

    ok = [r for r in results if "error" not in r]
    errors = Counter(r["error"] for r in results if "error" in r)
    rule = None
    if isinstance(arm, str) and arm.endswith(TOP_P_OFF):
        arm = arm[:-len(TOP_P_OFF)].strip() or None
    if isinstance(arm, str):
        rule = with_form(None, arm[len("form:"):]) if arm.startswith("form:") else as_constraint(arm)
    failing = [r for r in ok if rule is not None and check(r["text"], rule)]
    return dict(tokens=sum(r["tokens"] for r in ok), done=len(ok), errors=errors, failing=failing,
                stops=Counter(r["stop_reason"] for r in ok), results=ok)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arms", default=f"{CONTROL};lipogram:e;syllables:1;form:haiku;syllables:1 & lipogram:e;"
                                      f"{TOP_P_OFF};lipogram:e {TOP_P_OFF}",
                    help="rule sets separated by ';' (form:NAME for a form; a trailing "
                         f"'{TOP_P_OFF}' turns top-p off); unconstrained is always run")
    ap.add_argument("--backends", default="vllm", help="comma-separated names in BACKENDS")
    ap.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    ap.add_argument("--rows", type=int, default=None,
                    help="requests our engine decodes together (default: all of them, as vLLM does)")
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--kv-cache-gib", type=float, default=1.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.rows is None:
        a.rows = a.prompts  # the same batch size for both engines

    prompts = read_prompts(a.prompts)
    arms: list = [None] + [x.strip() for x in a.arms.split(";") if x.strip()]
    runners = {name: BACKENDS[name](a) for name in a.backends.split(",")}
    reqs = {arm: requests_for(arm, prompts, a.tokens) for arm in arms}

    # warm-up: every arm once (per-vocabulary tables, first masks, the engine's own warm-up)
    cold = {}
    for name, run in runners.items():
        for arm in list(arms):
            cold[name, arm], results = timed(run, reqs[arm])
            print(f"warm-up {name} {label(arm)}: {cold[name, arm]:.1f} s", flush=True)
            if baseline(arm) is not None and baseline(arm) not in reqs:
                # A poem ends when it is complete: its baseline is vLLM unconstrained on the
                # same prompts writing as many tokens as each poem did (min = max).
                lengths = {r["id"]: max(1, r["tokens"]) for r in results if "error" not in r}
                if lengths:
                    base = ("lengths", arm)
                    reqs[base] = [dict(r, settings={"seed": r["settings"]["seed"],
                                                    "max_new_tokens": lengths[r["id"]],
                                                    "min_new_tokens": lengths[r["id"]]})
                                  for r in requests_for(None, prompts, a.tokens) if r["id"] in lengths]
                    arms.insert(arms.index(arm), base)

    rounds: list[dict] = []
    verdicts: dict = {}
    for k in range(a.runs):
        row = {}
        # The order of engines and arms turns by one each round, so no arm always runs
        # first (or after the same neighbour).
        names = list(runners)
        names = names[k % len(names):] + names[:k % len(names)]
        turned = arms[k % len(arms):] + arms[:k % len(arms)]
        for name in names:
            run = runners[name]
            for arm in turned:
                secs, results = timed(run, reqs[arm])
                j = judge(arm, results)
                row[name, arm] = (j["tokens"], secs)
                verdicts.setdefault((name, arm), []).append(j)
                print(f"round {k + 1} {name} {label(arm)}: {j['tokens']} tokens in {secs:.1f} s "
                      f"= {j['tokens'] / secs:.1f} tok/s; failing check {len(j['failing'])}; "
                      f"refused {sum(j['errors'].values())}", flush=True)
        rounds.append(row)

    cmd = (f"PEREC_CACHE=... .venv-vllm/bin/python bench/vllm_throughput.py --prompts {a.prompts} "
           f"--tokens {a.tokens} --runs {a.runs} --arms '{a.arms}' --backends {a.backends}")
    out = ["# Perec's rules inside vLLM (CPU)\n", f"`{cmd}`\n",
           f"{len(prompts)} prompts (bench/data/batch_prompts.txt), seed = prompt index, sampling "
           f"defaults (temperature 0.8, top-k 50, top-p 0.95, repetition penalty 1.1); "
           f"{a.tokens} new tokens each (min = max), forms their own budget.  vllm-cpu 0.32.0, "
           f"SmolLM2-135M-Instruct float32, 2 shared cores.  One warm-up pass per arm, then "
           f"{a.runs} interleaved rounds.  Every text judged by the rule's own `check`.\n"]
    for name in runners:
        out += [f"## {name}\n",
                "| rules | requests run | refused | texts failing check (all rounds) | stop reasons (all rounds) | tok/s (median) "
                "| ratio to vLLM unconstrained: median [min, max] | cold (warm-up) s |",
                "|---|---:|---:|---:|---|---:|---|---:|"]
        for arm in arms:
            js = verdicts[name, arm]
            tps = [r[name, arm][0] / r[name, arm][1] for r in rounds]
            b = baseline(arm) if (name, baseline(arm)) in rounds[0] else None
            base = [r[name, b][0] / r[name, b][1] for r in rounds]
            ratios = [t / x for t, x in zip(tps, base)]
            refused = sum(js[-1]["errors"].values())
            failing = sum(len(j["failing"]) for j in js)
            stops = ", ".join(f"{k} {v}" for k, v in sum((j["stops"] for j in js), Counter()).items())
            ratio = "—" if not isinstance(arm, str) or not js[-1]["done"] else \
                f"**{statistics.median(ratios):.3f}** [{min(ratios):.3f}, {max(ratios):.3f}] vs {label(b)}"
            med = f"{statistics.median(tps):.1f}" if js[-1]["done"] else "—"
            out.append(f"| {label(arm)} | {js[-1]['done']}/{len(prompts)} | {refused} | {failing} "
                       f"| {stops or '—'} | {med} | {ratio} | {cold.get((name, arm), 0.0):.1f} |")
        out.append("\nEvery round (tokens, seconds):\n")
        out.append("| round | " + " | ".join(label(arm) for arm in arms) + " |")
        out.append("|---|" + "---:|" * len(arms))
        for k, r in enumerate(rounds):
            out.append(f"| {k + 1} | " + " | ".join(
                f"{r[name, arm][0]} / {r[name, arm][1]:.1f} s" for arm in arms) + " |")
        out.append("\nRefusals and samples:\n")
        for arm in arms:
            j = verdicts[name, arm][-1]
            for why, n in j["errors"].items():
                out.append(f"- `{label(arm)}`: {n} refused: \"{why}\"")
            for r in j["results"][:2]:
                out.append(f"- `{label(arm)}` — {r['prompt']!r} → {r['text']!r} ({r['stop_reason']})")
            for r in j["failing"][:3]:
                out.append(f"- `{label(arm)}` FAILS check: {r['text']!r}")
        out.append("")
    if "perec" in runners and "vllm" in runners:
        out += ["## Our batched engine vs vLLM, same requests, same rounds\n",
                "| rules | tok/s ours / vLLM: median [min, max] |", "|---|---|"]
        for arm in arms:
            ratios = [(r["perec", arm][0] / r["perec", arm][1]) / (r["vllm", arm][0] / r["vllm", arm][1])
                      for r in rounds if r["vllm", arm][0] and r["perec", arm][0]]
            if ratios:
                out.append(f"| {label(arm)} | {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}] |")
        out.append("")
    text = "\n".join(out)
    path = Path(a.out) if a.out else ROOT / "bench" / "results" / "vllm-cpu.md"
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
