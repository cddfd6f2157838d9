"""IFEval (Zhou et al. 2023), verifiable instructions, on Perec.

Each prompt's ``instruction_id_list`` and ``kwargs`` are translated into a Perec spec
(bench/ifeval_translate.py), the embedded model answers the prompt in instruct mode under
it, and IFEval's own checker (bench/judges/ifeval.py: lm-eval's, unpatched) judges the
answer.  The same model answers the same prompts unconstrained in the same run: the
baseline.

    python bench/ifeval.py --data FILE --out OUT.jsonl [--judge] [--limit N] [--seed S]
                           [--rows R] [--max-new-tokens N] [--fresh] [--no-generate] [--report FILE]

Generation writes IFEval's response format, ``{"key", "prompt", "response"}`` a line (plus
the spec, the budget, the stop reason, and ``refused`` with the reason when the spec is
refused before decoding: its response is empty and fails), to OUT for the constrained
answers and OUT.base.jsonl for the unconstrained ones.  Both arms decode together in one
batch (studio/batch.py run_engine: continuous batching, ``--rows`` at a time); lines are
appended whole as they finish, so the same command resumes (--fresh starts over).  The
token budget of a prompt comes from its instructions (ifeval_translate.budget), grown
until the masks' own budget check accepts it (bench/collie.py fit_budget).

--judge scores both files: prompt-level and instruction-level accuracy, strict and loose,
overall and per instruction type; per type also the perplexity of the constrained answers
and of the unconstrained answers to the same prompts under the unconstrained model, and
distinct-2; three responses per type; the refusals.  An answer with fewer than
MIN_CONTENT_WORDS words counts as failed whatever the checker says (a rule met by emptying
the answer is not met).  It writes bench/results/ifeval-cpu.md (--report elsewhere).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder (bench/) comes first on sys.path, where the name
# "collie" is bench/collie.py, not COLLIE's package (bench/collie.py imports it): put the
# project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from bench.collie import _commit, _excerpt, _fmt, _median, _ppl, fit_budget, read_lines  # noqa: E402
from bench.defaults import distinct_n  # noqa: E402
from bench.ifeval_translate import DEFAULT_BUDGET, MOST_BUDGET, TranslationError, budget, spec_string  # noqa: E402
from constraints.units import iter_words  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ifeval-dev.jsonl"
RESULTS = ROOT / "bench" / "results"
ARMS = ("perec", "base")
MIN_CONTENT_WORDS = 8
ANCHORS = "GPT-4 0.77 prompt-level strict (paper); the best models about 0.90"


# ------------------------------------------------------------------ data

def load_records(path: str | Path = DATA, limit: int | None = None) -> list[dict]:
    """The prompts of ``path`` (IFEval's input_data.jsonl lines), the first ``limit``."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {n} is not JSON: {e.msg}") from None
            if not isinstance(r, dict) or not {"key", "prompt", "instruction_id_list", "kwargs"} <= set(r):
                raise ValueError(f"{path} line {n} is not an IFEval prompt (key, prompt, instruction_id_list, kwargs)")
            out.append(r)
            if limit is not None and len(out) >= limit:
                break
    return out


def base_path(out: str | Path) -> Path:
    """Where the unconstrained arm goes: OUT.jsonl -> OUT.base.jsonl."""
    out = Path(out)
    return out.with_name(out.stem + ".base" + (out.suffix or ".jsonl"))


# ------------------------------------------------------------------ generation

def plan(record: dict, arm: str, engine, max_new_tokens: int | None = None) -> tuple[str | None, int, str]:
    """(spec or None, token budget, why it is refused or "") for one prompt in one arm.
    The baseline answers with the budget the constrained arm would get before fitting;
    ``max_new_tokens`` replaces the budget (for both arms)."""
    try:
        spec, need = spec_string(record), max_new_tokens or budget(record)
    except TranslationError as e:
        return None, DEFAULT_BUDGET, "" if arm == "base" else f"no translation: {e}"
    if arm == "base":
        return None, need, ""
    return spec, need if max_new_tokens else fit_budget(spec, need, engine, most=MOST_BUDGET), ""


class ArmWriter:
    """What studio.batch.run_engine writes to, turned into IFEval's response lines: one
    file per arm, chosen by the request id ("perec:KEY" / "base:KEY")."""

    def __init__(self, paths: dict[str, Path], records: dict[str, dict], plans: dict[str, tuple],
                 command: str, on_line=None):
        from studio.batch import Writer

        self.writers = {arm: Writer(p) for arm, p in paths.items()}
        self.records, self.plans, self.on_line = records, plans, on_line
        self.command, self.commit = command, _commit()

    def write(self, obj: dict) -> None:
        arm, key = obj["id"].split(":", 1)
        rec, (spec, n, _) = self.records[key], self.plans[obj["id"]]
        line = {"key": rec["key"], "prompt": rec["prompt"], "response": obj.get("text", ""), "id": key,
                "spec": spec, "max_new_tokens": n}
        if "error" in obj:
            line["refused"] = obj["error"]
        else:
            line.update(tokens=obj.get("tokens"), stop_reason=obj.get("stop_reason"), message=obj.get("message"),
                        seed=obj.get("seed"))
        line.update(command=self.command, commit=self.commit)
        self.writers[arm].write(line)
        if self.on_line:
            self.on_line(arm, line)

    def refuse(self, rid: str, reason: str) -> None:
        self.write({"id": rid, "error": reason})

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def run(records: list[dict], out: str | Path, engine, seed: int = 0, rows: int = 8, fresh: bool = False,
        command: str = "", log=None, max_new_tokens: int | None = None) -> dict[str, int]:
    """Answer every prompt not yet in OUT (constrained) and OUT.base.jsonl (unconstrained),
    both arms in one batch.  Returns how many lines each arm wrote now."""
    from studio.batch import Line, Progress, finished_ids, run_engine
    from studio.request import Request

    paths = {"perec": Path(out), "base": base_path(out)}
    for p in paths.values():
        if fresh and p.exists():
            p.unlink()
        p.parent.mkdir(parents=True, exist_ok=True)
    done = {arm: finished_ids(p) for arm, p in paths.items()}
    by_key = {str(r["key"]): r for r in records}
    plans, lines, refused = {}, [], []
    for rec in records:
        for arm in ARMS:
            key = str(rec["key"])
            if key in done[arm]:
                continue
            rid = f"{arm}:{key}"
            plans[rid] = spec, n, why = plan(rec, arm, engine, max_new_tokens)
            if why:
                refused.append((rid, why))
                continue
            req = Request(prompt=rec["prompt"], constraints=spec, mode="instruct",
                          settings={"max_new_tokens": n, "seed": seed})
            req.id = rid
            lines.append(Line(rid, req))
    written = defaultdict(int)

    def on_line(arm, line):
        written[arm] += 1
        if log:
            state = f"refused: {line['refused']}" if "refused" in line else f"{line['stop_reason']}: {line['response'][:60]!r}"
            log(f"[{sum(written.values())}/{len(plans)}] {arm} {line['key']} {state}")

    writer = ArmWriter(paths, by_key, plans, command, on_line)
    try:
        for rid, why in refused:
            writer.refuse(rid, why)
        run_engine(lines, engine, writer, Progress(total=len(lines)), rows=rows)
    finally:
        writer.close()
    return dict(written)


# ------------------------------------------------------------------ judging

def content_words(text: str) -> int:
    return sum(1 for _ in iter_words(text))


def judge_lines(path: str | Path, records: dict[str, dict]) -> list[dict]:
    """The lines of ``path`` for ``records`` (by key), each with IFEval's strict and loose
    verdicts per instruction; a degenerate answer fails every instruction."""
    from bench.judges.ifeval import judge

    rows = []
    for ln in read_lines(path):
        rec = records.get(str(ln["key"]))
        if rec is None:
            continue
        verdict = judge(rec, ln["response"])
        degenerate = content_words(ln["response"]) < MIN_CONTENT_WORDS
        if degenerate:
            verdict = {k: [False] * len(v) for k, v in verdict.items()}
        rows.append(dict(ln, types=rec["instruction_id_list"], degenerate=degenerate, **verdict))
    return rows


def accuracy(rows: list[dict]) -> dict[str, float | None]:
    """Prompt-level and instruction-level accuracy, strict and loose."""
    out = {}
    for kind in ("strict", "loose"):
        out[f"prompt_{kind}"] = sum(all(r[kind]) for r in rows) / len(rows) if rows else None
        flat = [v for r in rows for v in r[kind]]
        out[f"instruction_{kind}"] = sum(flat) / len(flat) if flat else None
    return out


def per_type(rows: list[dict]) -> dict[str, dict]:
    """Instruction-level strict / loose per type, and the keys of the prompts holding it."""
    out: dict[str, dict] = defaultdict(lambda: {"strict": [], "loose": [], "keys": []})
    for r in rows:
        for i, t in enumerate(r["types"]):
            d = out[t]
            d["strict"].append(r["strict"][i])
            d["loose"].append(r["loose"][i])
            if str(r["key"]) not in d["keys"]:
                d["keys"].append(str(r["key"]))
    return dict(out)


def distinct2(texts: list[str]) -> float | None:
    """Distinct-2 (distinct word bigrams / bigrams, bench/defaults.py) of each answer,
    averaged over the answers that have a bigram."""
    scores = []
    for t in texts:
        words = [m.group().lower() for m in iter_words(t)]
        if len(words) > 1:
            scores.append(distinct_n(words, 2))
    return sum(scores) / len(scores) if scores else None


def _rate(xs: list[bool]) -> str:
    return f"{sum(xs) / len(xs):.3f}" if xs else "n/a"


def report(out: str | Path, records: dict[str, dict], engine=None, command: str = "") -> str:
    arms = {"perec": judge_lines(out, records), "base": judge_lines(base_path(out), records)}
    if engine is not None:
        for rows in arms.values():
            for r in rows:
                r["ppl"] = _ppl(engine, r["response"]) if r["response"].strip() else None
    gen_cmds = sorted({f"`{r.get('command', '')}` (commit {r.get('commit') or '?'})"
                       for rows in arms.values() for r in rows})
    lines = ["# IFEval on Perec (CPU)", "",
             f"Judged with: `{command}`", ""] + [f"Generated with: {c}" for c in gen_cmds] + [
        "",
        "IFEval (Zhou et al. 2023) judged by its own checker, lm-eval's `lm_eval/tasks/ifeval` unpatched "
        "(bench/judges/ifeval.py), its sentence splitter on NLTK's trained Punkt (bench/judges/punkt_data.py). "
        f"Anchors: {ANCHORS}. Arms: **perec**, the spec translated from the prompt's instructions "
        "(bench/ifeval_translate.py); **base**, the same model on the same prompts unconstrained, in the same "
        f"run. An answer with fewer than {MIN_CONTENT_WORDS} words counts as failed. Perplexity: each answer alone "
        "under the unconstrained model (studio.scoring), median.", ""]
    lines += ["| arm | prompts | prompt strict | prompt loose | instruction strict | instruction loose | "
              "degenerate | refused |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, rows in arms.items():
        a = accuracy(rows)
        lines.append(f"| {arm} | {len(rows)} | {_fmt(a['prompt_strict'], 3)} | {_fmt(a['prompt_loose'], 3)} | "
                     f"{_fmt(a['instruction_strict'], 3)} | {_fmt(a['instruction_loose'], 3)} | "
                     f"{sum(r['degenerate'] for r in rows)} | {sum(1 for r in rows if r.get('refused'))} |")
    types = {arm: per_type(rows) for arm, rows in arms.items()}
    by_key = {arm: {str(r["key"]): r for r in rows} for arm, rows in arms.items()}
    lines += ["", "## Per instruction type", "",
              "Instruction-level accuracy (strict / loose) per arm; perplexity and distinct-2 over the answers "
              "to the prompts holding the type; ratio = perec ppl / base ppl (the issue asks at most 1.5).", "",
              "| type | n | perec strict | perec loose | base strict | base loose | ppl perec | ppl base | ratio "
              "| distinct-2 perec | distinct-2 base |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    misses = []
    for t in sorted(set(types["perec"]) | set(types["base"])):
        p, b = types["perec"].get(t), types["base"].get(t)
        keys = (p or b)["keys"]
        texts = {arm: [by_key[arm][k]["response"] for k in keys if k in by_key[arm]] for arm in ARMS}
        ppl = {arm: _median(by_key[arm][k].get("ppl") for k in keys if k in by_key[arm]) for arm in ARMS}
        ratio = ppl["perec"] / ppl["base"] if ppl["perec"] and ppl["base"] else None
        if ratio is not None and ratio > 1.5:
            misses.append((t, ratio))
        lines.append(f"| {t} | {len(keys)} | {_rate(p['strict']) if p else 'n/a'} | {_rate(p['loose']) if p else 'n/a'} "
                     f"| {_rate(b['strict']) if b else 'n/a'} | {_rate(b['loose']) if b else 'n/a'} "
                     f"| {_fmt(ppl['perec'], 1)} | {_fmt(ppl['base'], 1)} | {_fmt(ratio)} "
                     f"| {_fmt(distinct2(texts['perec']), 3)} | {_fmt(distinct2(texts['base']), 3)} |")
    if misses:
        lines += ["", "Types whose constrained answers' perplexity is over 1.5x the baseline's: "
                  + ", ".join(f"{t} ({r:.2f}x)" for t, r in misses) + "."]
    lines += ["", "## Three responses per type (the first three prompts holding it)", "",
              "| type | key | spec | perec response | strict | ppl | base response | strict | ppl |",
              "|---|---|---|---|---|---:|---|---|---:|"]
    for t in sorted(types["perec"]):
        for k in types["perec"][t]["keys"][:3]:
            cells = []
            for arm in ARMS:
                r = by_key[arm].get(k)
                if r is None:
                    cells.append("(not generated) | — | n/a")
                    continue
                i = r["types"].index(t)
                cells.append(f"{_excerpt(r['response']) or '(empty)'} | {'yes' if r['strict'][i] else 'no'} | "
                             f"{_fmt(r.get('ppl'), 1)}")
            spec = by_key["perec"][k].get("spec") or "(none)"
            lines.append(f"| {t} | {k} | `{_excerpt(spec, 160)}` | {cells[0]} | {cells[1]} |")
    refused = [r for r in arms["perec"] if r.get("refused")]
    lines += ["", "## Refused before decoding (counted as failures)", ""]
    lines += [f"- {r['key']} ({', '.join(r['types'])}): {r['refused']}" for r in refused] or ["(none)"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="IFEval prompts (input_data.jsonl lines)")
    ap.add_argument("--out", required=True, help="the constrained answers (OUT.base.jsonl: the baseline)")
    ap.add_argument("--limit", type=int, default=None, help="the first N prompts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=8, help="requests decoded together")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="one token budget for every prompt (default: from its instructions)")
    ap.add_argument("--fresh", action="store_true", help="start both files over instead of resuming")
    ap.add_argument("--judge", action="store_true", help="score both files with IFEval's checker")
    ap.add_argument("--no-generate", action="store_true", help="with --judge: judge the files as they are")
    ap.add_argument("--report", default=None, help="where the markdown report goes")
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    command = "python bench/ifeval.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    if args.rows < 1:
        ap.error("--rows must be at least 1")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        ap.error("--max-new-tokens must be at least 1")
    if args.no_generate and not args.judge:
        ap.error("--no-generate goes with --judge")
    try:
        records = load_records(args.data, args.limit)
    except (OSError, ValueError) as e:
        ap.error(str(e))
    if args.judge:
        try:  # before any generation: a missing checker is said at once, in one line
            import bench.judges.ifeval  # noqa: F401
        except ImportError as e:
            ap.error(f"--judge: {e}")
    import studio

    engine = studio.load(args.model, device=args.device)
    if not args.no_generate:
        wrote = run(records, args.out, engine, seed=args.seed, rows=args.rows, fresh=args.fresh,
                    command=command, log=lambda s: print(s, flush=True), max_new_tokens=args.max_new_tokens)
        print(f"wrote {wrote.get('perec', 0)} lines to {args.out}, {wrote.get('base', 0)} to {base_path(args.out)}")
    if args.judge:
        text = report(args.out, {str(r["key"]): r for r in records}, engine, command)
        path = Path(args.report or RESULTS / "ifeval-cpu.md")
        path.write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
