"""`make bench`: the speed figures of the README, as ratios measured in one run.

    python bench/speed.py [--tokens 100] [--rounds 5] [--rows 1,16,64] [--batch-tokens 64]
                          [--no-start] [--no-torch] [--out FILE]

Every row samples with the writer's defaults (temperature 0.8, top-k 50, top-p 0.95,
repetition penalty 1.1; studio/decode/settings.py), with the end of text held off where a
row is meant to write a fixed number of tokens: ``min_new_tokens`` in ours, a −inf logit
bias on the end tokens in llama.cpp.  Every run's token count and stop reason are recorded
and checked; a row that wrote other than it was asked is listed under "token counts".
Rows are interleaved round by round and the order is rotated each round, so load and
warm caches hit every row alike; a ratio is computed within a round and reported as the
median over rounds with [min–max], every round listed (studio/benchmark.py).

Rows:
- llama.cpp itself (llama-cpp-python's ``Llama``, its own sampler) on the embedded GGUF,
  unconstrained, and with a lipogram as a numpy logits processor;
- ours on the default engine (llama.cpp on a CPU), unconstrained, with a control rule that
  masks nothing (the mask pipeline runs, every token passes), and under lipogram:e,
  syllables:1, a haiku and sentences:3;
- ours on the torch engine, unconstrained (what the default was before);
- B rows in one batch (variants), B in --rows, unconstrained and under the four rules;
- 8 writers at once through the scheduler vs 1, and llama.cpp's forward alone at 1, 8 and
  B rows (no sampling, no masks: the control for what batching can gain on this machine);
- the line search: a sonnet's wall time at K = 1 and the default;
- seconds to the first token: a 200,000-character draft; warm and cold starts (fresh
  processes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import studio  # noqa: E402
from studio.benchmark import PROMPTS, Rows, summary  # noqa: E402
from studio.decode.settings import Settings  # noqa: E402
from studio.request import DEFAULT_POEM_SEARCH, Request, prepare  # noqa: E402

NOVEL = ("The old house on the hill had stood empty for years, and the village told stories "
         "about it. ") * 2200
RULES = ("lipogram:e", "syllables:1", "haiku", "sentences:3")
# A rule the pipeline runs in full that never removes a token the model would write: the
# control arm separates the cost of running masks from the effect of masked logits.
CONTROL = "ban-words:qzxqzxqzx"
FIXED = "fixed"  # a row whose every run must write exactly the tokens asked for


class Runs:
    """Token counts and stop reasons of every run, per row."""

    def __init__(self):
        self.bad: list[str] = []
        self.tokens: dict[str, list[int]] = {}

    def record(self, name: str, results, expect: int | None) -> int:
        n = sum(t for t, _ in results)
        self.tokens.setdefault(name, []).append(n)
        if expect is not None:
            for t, why in results:
                if t != expect:
                    self.bad.append(f"{name}: a run wrote {t} tokens ({why}), not {expect}")
        for t, why in results:
            if why in ("error", "failed"):
                self.bad.append(f"{name}: a run failed ({why})")
        return n


def writer(tokens: int, seed: int, fixed: bool = True) -> Settings:
    return Settings(max_new_tokens=tokens, min_new_tokens=tokens if fixed else 0, seed=seed)


def as_runs(results) -> list[tuple[int, str]]:
    return [(r.tokens, r.stop_reason) for r in results]


def ours(engine, spec: str | None, n: int, seed: int):
    """Three prompts, one after the other, single stream."""
    out = []
    for i, p in enumerate(PROMPTS):
        job = prepare(Request(prompt=p, **_rule(spec), search=1,
                              settings=dict(writer(n, seed + i, fixed=_fixed(spec)).to_dict())), engine)
        out.append(job.generate(engine))
    return as_runs(out)


def batch(engine, spec: str | None, rows: int, n: int, seed: int):
    """``rows`` variants of one prompt in one batch."""
    if rows == 1:  # one row of the same prompt (the variants path needs two or more)
        job = prepare(Request(prompt=PROMPTS[seed % len(PROMPTS)], **_rule(spec), search=1,
                              settings=dict(writer(n, seed, fixed=_fixed(spec)).to_dict())), engine)
        return as_runs([job.generate(engine)])
    job = prepare(Request(prompt=PROMPTS[seed % len(PROMPTS)], **_rule(spec), variants=rows,
                          settings=dict(writer(n, seed, fixed=_fixed(spec)).to_dict())), engine)
    return as_runs(job.variants(engine))


def _rule(spec):
    if spec == "haiku":
        return {"form": "haiku"}
    return {"constraints": spec}


def _fixed(spec) -> bool:
    # A haiku and three sentences end themselves; the other rows write exactly n tokens.
    return spec not in ("haiku", "sentences:3")


def sessions(engine, k: int, n: int, seed: int):
    """``k`` writers at once, each a thread reading its own stream from the scheduler."""
    sched = engine.scheduler()
    gens = [sched.submit(engine.stream(PROMPTS[i % len(PROMPTS)], None, writer(n, seed + i))) for i in range(k)]
    threads = [threading.Thread(target=lambda g=g: [None for _ in g]) for g in gens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [(g.result.tokens, g.result.stop_reason) for g in gens]


class LlamaCpp:
    """llama.cpp as a user runs it: llama-cpp-python's Llama on the same GGUF, its own
    sampler with the same settings, the end of text banned so every run writes n tokens."""

    def __init__(self, threads: int):
        from llama_cpp import Llama

        from models.loading import embedded_gguf

        self.llm = Llama(str(embedded_gguf()), n_ctx=2048, n_threads=threads, verbose=False)
        self.eos = {self.llm.token_eos(): float("-inf")}
        tok = studio.load().tokenizer
        self.eos.update({i: float("-inf") for i in {tok.eos_token_id, *_eos_ids(tok)} if i is not None})
        self.has_e = None

    def run(self, n: int, seed: int, lipogram: bool = False):
        from llama_cpp import LogitsProcessorList

        procs = None
        if lipogram:
            if self.has_e is None:
                # Like a user's first processor: every token whose text holds an e, as a
                # boolean numpy mask over the vocabulary.
                texts = [self.llm.detokenize([i]).decode("utf-8", "replace") for i in range(self.llm.n_vocab())]
                self.has_e = np.array(["e" in t.lower() for t in texts])

            def no_e(ids, scores):
                scores = scores.copy()
                scores[self.has_e] = -np.inf
                return scores

            procs = LogitsProcessorList([no_e])
        out = []
        for i, p in enumerate(PROMPTS):
            r = self.llm.create_completion(p, max_tokens=n, temperature=0.8, top_k=50, top_p=0.95,
                                           repeat_penalty=1.1, seed=seed + i, logit_bias=self.eos,
                                           logits_processor=procs)
            out.append((r["usage"]["completion_tokens"], r["choices"][0]["finish_reason"]))
        return out


def _eos_ids(tok):
    ids = getattr(tok, "all_special_ids", []) or []
    return [i for i in ids if tok.convert_ids_to_tokens(i) in ("<|im_end|>", "<|endoftext|>")]


def forward_alone(model, rows: int, steps: int = 32):
    """llama.cpp's forward with nothing around it: ``rows`` sequences of a 10-token prompt,
    then ``steps`` decode calls of one token each (the machine's ceiling for B rows; the
    control for what batching can gain here)."""
    from models.llamacpp import Entry

    seqs = [model.take_seq() for _ in range(rows)]
    try:
        model.decode([Entry(q, p, 100 + p, p == 9) for q in seqs for p in range(10)])
        for t in range(steps):
            model.decode([Entry(q, 10 + t, 200 + t, True) for q in seqs])
    finally:
        for q in seqs:
            model.release(q)
    return [(steps, "forward")] * rows


def sonnet(engine, width: int, seed: int):
    r = studio.generate("The sea at night", form="sonnet", search=width, seed=seed, engine=engine)
    return [(r.tokens, r.stop_reason)]


def first_token_of_long_draft(engine):
    r = engine.stream(NOVEL, None, Settings(max_new_tokens=1, seed=1)).run()
    return [(r.tokens, r.stop_reason)]


def start_times() -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as cold_cache:
        for label in ("cold (empty cache)", "warm"):
            env = dict(os.environ, PEREC_CACHE=cold_cache)
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "first_token.py")], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            d = json.loads(out)
            rows.append(f"  start, {label:<20} first token after {d['first_token_seconds']:6.2f} s "
                        f"(model ready {d['load_seconds']:.2f} s, engine {d['engine']}), peak RSS {d['peak_rss_mb']:.0f} MB")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=100, help="new tokens per prompt, single stream")
    ap.add_argument("--batch-tokens", type=int, default=64, help="new tokens per row in the batched rows")
    ap.add_argument("--rows", default="1,16,64", help="batch sizes for constrained / unconstrained")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--search-rounds", type=int, default=3)
    ap.add_argument("--no-start", action="store_true", help="skip the cold/warm start runs")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch engine's row")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed-cpu.md"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.rows.split(",") if x.strip()]

    engine = studio.load()
    threads = int(os.environ.get("PEREC_THREADS", os.cpu_count() or 1))
    lcpp = LlamaCpp(threads)
    # The torch row is the engine the default replaced; when the default is torch, it is "ours".
    torch_engine = None if args.no_torch or engine.backend == "torch" else _torch_engine()
    n, bn, runs = args.tokens, args.batch_tokens, Runs()
    speed: dict[str, list[float]] = {}  # tokens written / seconds, per run
    seconds = Rows()

    plan: dict[str, tuple] = {
        "llama.cpp, unconstrained": (n, lambda s: lcpp.run(n, s)),
        "llama.cpp + numpy processor, lipogram:e": (n, lambda s: lcpp.run(n, s, lipogram=True)),
        "ours, unconstrained": (n, lambda s: ours(engine, None, n, s)),
        "ours, control (masks nothing)": (n, lambda s: ours(engine, CONTROL, n, s)),
    }
    for spec in RULES:
        plan[f"ours, {spec}"] = (n if _fixed(spec) else None, lambda s, spec=spec: ours(engine, spec, n, s))
    if torch_engine is not None:
        plan["torch engine, unconstrained"] = (n, lambda s: ours(torch_engine, None, n, s))
    for b in sizes:
        for spec in (None, *RULES):
            plan[f"{b} rows, {spec or 'unconstrained'}"] = (
                bn if _fixed(spec) else None, lambda s, b=b, spec=spec: batch(engine, spec, b, bn, s))
    if engine.backend == "llama":
        for b in sorted({1, 8, *sizes}):
            plan[f"llama.cpp forward alone, {b} rows"] = (32, lambda s, b=b: forward_alone(engine.decode_model, b))
    plan["1 writer (scheduler)"] = (n, lambda s: sessions(engine, 1, n, s))
    plan["8 writers at once (scheduler)"] = (n, lambda s: sessions(engine, 8, n, s))

    # Warm every path once: word sets, form tables, the scheduler thread, llama.cpp's processor table.
    for name, (_, fn) in plan.items():
        if not name.startswith("64 rows"):
            fn(1000)
    t0 = time.time()
    names = list(plan)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotated each round
        for name in order:
            expect, fn = plan[name]
            t = time.perf_counter()
            got = fn(100 * r)
            dt = time.perf_counter() - t
            speed.setdefault(name, []).append(runs.record(name, got, expect) / dt)
        print(f"round {r + 1}/{args.rounds} done after {time.time() - t0:.0f} s", flush=True)
    default_k = DEFAULT_POEM_SEARCH
    for r in range(args.search_rounds):
        for k in sorted({1, default_k}):
            got = []
            seconds.time(f"sonnet, search K={k}", 1, lambda k=k: got.extend(sonnet(engine, k, seed=r)))
            runs.record(f"sonnet, search K={k}", got, None)
    for r in range(3):
        seconds.time("200,000-character draft, first token", 1, lambda: first_token_of_long_draft(engine))

    def tps(name):
        return speed[name]

    def ratio(a, b):
        return [x / y for x, y in zip(tps(a), tps(b))]

    ratios = [
        ("ours (default engine) / llama.cpp, unconstrained, single stream (target >= 0.9)",
         ratio("ours, unconstrained", "llama.cpp, unconstrained")),
        ("ours lipogram:e / llama.cpp + numpy lipogram:e", ratio("ours, lipogram:e", "llama.cpp + numpy processor, lipogram:e")),
        ("llama.cpp + numpy lipogram:e / llama.cpp", ratio("llama.cpp + numpy processor, lipogram:e", "llama.cpp, unconstrained")),
        ("control (masks nothing) / unconstrained, ours", ratio("ours, control (masks nothing)", "ours, unconstrained")),
    ]
    if torch_engine is not None:
        ratios.append(("ours default engine / torch engine, unconstrained",
                       ratio("ours, unconstrained", "torch engine, unconstrained")))
    for spec in RULES:
        ratios.append((f"{spec} / unconstrained, single stream (target >= 0.95)", ratio(f"ours, {spec}", "ours, unconstrained")))
    for b in sizes:
        for spec in RULES:
            ratios.append((f"{spec} / unconstrained at {b} rows (target >= 0.95)",
                           ratio(f"{b} rows, {spec}", f"{b} rows, unconstrained")))
    ratios.append(("8 writers / 1 writer, aggregate tokens/s (target >= 3)",
                   ratio("8 writers at once (scheduler)", "1 writer (scheduler)")))
    if engine.backend == "llama":
        ratios.append(("control: llama.cpp's forward alone, 8 rows / 1 row (this machine's ceiling)",
                       ratio("llama.cpp forward alone, 8 rows", "llama.cpp forward alone, 1 rows")))
        for b in sizes:
            ratios.append((f"{b} rows unconstrained, ours / llama.cpp's forward alone at {b} rows",
                           ratio(f"{b} rows, unconstrained", f"llama.cpp forward alone, {b} rows")))
    walls = [(f"sonnet wall time, K={default_k} / K=1 (target <= 2.5)",
              seconds.ratio(f"sonnet, search K={default_k}", "sonnet, search K=1", speed=False))]
    lines = [f"engine {engine.backend} on {engine.device}, model {engine.name}, {threads} threads; "
             f"writer's default sampling; {n} new tokens x {len(PROMPTS)} prompts single stream, {bn} per row "
             f"batched; {args.rounds} interleaved rounds, order rotated each round; median [min–max] (every run)",
             "", "tokens per second (tokens written / seconds, per run):"]
    for name in names:
        lines.append(f"  {name:<44} {summary(tps(name), '{:.1f}')}")
    lines += ["", "tokens written per run (each run checked; rows that end themselves vary):"]
    for name in names:
        lines.append(f"  {name:<44} {runs.tokens[name]}")
    lines += ["", "token counts: " + ("every fixed-length run wrote exactly the tokens asked for"
                                      if not runs.bad else f"{len(runs.bad)} runs differ:")]
    lines += [f"  {b}" for b in runs.bad[:40]]
    lines += ["", "seconds:"]
    for name in ("200,000-character draft, first token", *[f"sonnet, search K={k}" for k in sorted({1, default_k})]):
        lines.append(f"  {name:<44} {summary(seconds.seconds[name])}")
    lines += ["", "ratios (per round, then median [min–max]):"]
    lines += [f"  {name:<78} {summary(v)}" for name, v in ratios + walls]
    if not args.no_start:
        lines += ["", "start (one run each, fresh processes):"] + start_times()
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    at = commit + (" (with uncommitted changes)" if dirty else "")
    Path(args.out).write_text(f"At commit {at}:\n\n```\n$ python bench/speed.py {' '.join(sys.argv[1:])}\n{text}\n```\n")


def _torch_engine():
    from models.loading import load_model
    from studio.decode.engine import Engine

    return Engine(load_model(None, backend="torch"))


if __name__ == "__main__":
    main()
