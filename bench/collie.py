"""COLLIE (Yao et al. 2023), the field's benchmark for constrained generation, on Perec.

Each instance's constraint tree is translated into Perec specs by its shape
(bench/collie_translate.py), the embedded model writes under them from COLLIE's prompt,
and COLLIE's own checker (bench/judges/collie.py: collie-bench unpatched, its nltk
splitters on NLTK's trained punkt data) judges the result beside our own ``check``.

    python bench/collie.py --out OUT.jsonl [--data FILE] [--mode instruct|continue]
                           [--opening question|heading] [--family sent04,para01]
                           [--limit N] [--seed S] [--no-unit] [--fresh]
    python bench/collie.py --out A.jsonl [B.jsonl ...] --judge [--no-generate] [--no-ppl] [--report FILE]
    python bench/collie.py --examples [--data FILE] [--report FILE]

Generation writes one JSON line per instance ({"id", "text"} plus family, spec, mode,
seconds, stop_reason, ...), appending as it goes: the same command resumes an interrupted
run (--fresh starts over).  --judge then scores the selected instances (--family, --limit)
of every OUT file with COLLIE's checker and ours, the perplexity of the outputs and of
COLLIE's source examples under the unconstrained model, and writes bench/results/collie.md;
with --no-generate (implied by several OUT files) it generates nothing first, and with
--no-ppl it loads no model (no perplexity columns).  --examples judges COLLIE's own
source examples (no model): COLLIE's verdict, and whether our check of
the translated spec agrees; it writes bench/results/collie-examples.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder (bench/) comes first on sys.path, where the name
# "collie" is this file, not COLLIE's package: put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from bench.collie_translate import TreeError, budget, spec_string  # noqa: E402
from bench.judges.collie import judge  # noqa: E402
from constraints.base import ImpossibleConstraint, SpecError  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "collie-dev.jsonl"
RESULTS = ROOT / "bench" / "results"
FAMILIES = ("word01", "word02", "word03", "sent01", "sent02", "sent03", "sent04",
            "para01", "para02", "para03", "para04", "para05", "pass01")
GPT4_ZERO_SHOT = 0.509  # COLLIE paper, all 2,080 instances


# ------------------------------------------------------------------ data

def load_records(path: str | Path = DATA, families=None, limit: int | None = None) -> list[dict]:
    """The instances of ``path``, optionally only some families and the first ``limit``
    of each (in file order)."""
    wanted = set(families) if families else None
    if wanted and not wanted <= set(FAMILIES):
        raise ValueError(f"unknown COLLIE families: {', '.join(sorted(wanted - set(FAMILIES)))} "
                         f"(known: {', '.join(FAMILIES)})")
    taken: dict[str, int] = defaultdict(int)
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            fam = r["collie_task"]
            if wanted and fam not in wanted:
                continue
            if limit is not None and taken[fam] >= limit:
                continue
            taken[fam] += 1
            out.append(r)
    return out


def read_lines(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


# ------------------------------------------------------------------ generation

def _heading(prompt: str) -> str:
    """COLLIE's request as a heading the text then follows:

    "Please generate a paragraph:\\n1) with exactly 6 sentences;\\n2) not containing the
    word 'is'." -> "A paragraph with exactly 6 sentences, not containing the word 'is':"
    and a blank line, so the text starts a fresh paragraph."""
    text = prompt.strip()
    for lead in ("Please generate ", "Generate "):
        if text.startswith(lead):
            text = text[len(lead):]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head, items = lines[0].rstrip(":").rstrip("."), []
    for ln in lines[1:]:
        item = ln.split(")", 1)[1] if ")" in ln[:4] else ln
        items.append(item.strip().rstrip(";.").strip())
    # COLLIE's sentence-character prompt adds an aside ("Include whitespace into your
    # character count."): keep only the request itself.
    head = head.split(". ")[0]
    text = head + (" " + ", ".join(items) if items else "")
    return text[:1].upper() + text[1:] + ":\n\n"


def _question(prompt: str) -> str:
    """COLLIE's prompt on one line as a question, and the start of its answer:
    "Q: Please generate a sentence ... respectively.\\nA: ".  (The engine drops the
    trailing space and the space the model writes before its first word.)"""
    return "Q: " + " ".join(ln.strip() for ln in prompt.strip().splitlines() if ln.strip()) + "\nA: "


# Continue mode's openings (compared in bench/results/collie.md): after the heading the
# model wants lists and code, which the masks cut into word fragments ("nerspelling is
# ..."); after the question it answers in whole sentences.
OPENINGS = {"question": _question, "heading": _heading}


def opening(prompt: str, style: str = "question") -> str:
    """The text continue mode starts from, derived from COLLIE's prompt."""
    if style not in OPENINGS:
        raise ValueError(f"unknown opening {style!r} (use {' or '.join(OPENINGS)})")
    return OPENINGS[style](prompt)


def fit_budget(spec: str | None, n: int, engine, most: int = 2048) -> int:
    """``n``, or the first of 2n, 4n, ... (up to ``most``) that the rules' own budget
    check accepts: a budget too small for the counts is refused at the first step, and
    a refusal here must mean an impossible target, not a short estimate."""
    from studio.decode.maskset import compile_masks
    from constraints.spec import parse_spec

    if spec is None:
        return n
    try:
        masks = compile_masks(parse_spec(spec), engine.vocab)
    except (SpecError, ImpossibleConstraint):
        return n  # generation refuses it again, with the reason
    size = n
    while True:
        try:
            masks.check_budget(size)
            return size
        except ImpossibleConstraint:
            if size >= most:
                return n
            size = min(2 * size, most)


def attempts(spec: str | None, seed: int, retries: int) -> list[tuple[str | None, int]]:
    """(spec, seed) to try in turn until a text comes out.  COLLIE asks for "a word", so
    the word families try a dictionary word first, a common one (the writer's floor) and
    then any CMU word, before any string of letters that meets the counts: the counts
    alone let through strings such as 'OKBOSSLSAGRE'.  A dictionary word that fits may not
    exist; the decoder then ends empty and the next try goes on.  Then new seeds."""
    tiers = [spec]
    if spec and spec.startswith("one-word"):
        tiers = [f"{spec} & dictionary", f"{spec} & dictionary & common:0", spec]
    return [(t, seed) for t in tiers[:-1]] + [(tiers[-1], seed + 1000 * k) for k in range(retries + 1)]


def generate_one(record: dict, mode: str, engine, seed: int = 0, retries: int = 2,
                 max_new_tokens: int | None = None, unit: bool = True,
                 style: str = "question") -> dict:
    """One instance: translate, generate (the tries of ``attempts``: for a word, a dictionary
    word first; a new seed when the text comes out empty, up to ``retries`` more times), and
    the JSON line to keep, with the spec it was written under."""
    import studio

    line = {"id": record["id"], "family": record["collie_task"], "mode": mode}
    if mode == "continue":
        line["opening"] = style
    try:
        spec = spec_string(record, unit=unit)
    except TreeError as e:
        spec, line["refused"] = None, f"no translation: {e}"
    n = max_new_tokens or fit_budget(spec, budget(record), engine)
    prompt = record["prompt"] if mode == "instruct" else opening(record["prompt"], style)
    t0 = time.perf_counter()
    tries = attempts(spec, seed, retries)
    for attempt, (tried, s) in enumerate(tries):
        try:
            r = studio.generate(prompt, tried, mode=mode, engine=engine, max_new_tokens=n, seed=s)
            spec = tried
        except (SpecError, ImpossibleConstraint) as e:
            if tried != tries[-1][0]:
                continue  # a dictionary word cannot fit: the next, looser try
            # Refused before decoding: still write something, unconstrained, and say why.
            line["refused"] = f"{type(e).__name__}: {e}"
            spec = None
            r = studio.generate(prompt, None, mode=mode, engine=engine, max_new_tokens=n, seed=s)
        if r.text.strip():
            break
    line["spec"] = spec
    line.update(text=r.text, seconds=round(time.perf_counter() - t0, 3), attempts=attempt + 1,
                max_new_tokens=n, tokens=r.tokens, stop_reason=r.stop_reason, message=r.message,
                seed=r.seed)
    if mode == "continue":
        line["prompt"] = prompt  # the opening; instruct mode's prompt is COLLIE's own
    if not r.text.strip():
        line["empty"] = True
    return line


def _commit() -> str:
    """The checkout's commit, kept with each line (the rules change as they improve)."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return out.stdout.strip()


def run(records: list[dict], out: str | Path, mode: str, engine, seed: int = 0,
        fresh: bool = False, command: str = "", log=None, unit: bool = True,
        style: str = "question") -> list[dict]:
    """Generate every record not already in ``out`` (all of them with ``fresh``), one JSON
    line each, flushed as it goes.  Returns the lines written now."""
    out = Path(out)
    if fresh and out.exists():
        out.unlink()
    done = {ln["id"] for ln in read_lines(out) if ln.get("mode") == mode}
    other = {ln.get("mode") for ln in read_lines(out)} - {mode}
    if other:
        raise ValueError(f"{out} holds {', '.join(sorted(map(str, other)))}-mode lines; "
                         f"use another file for mode {mode} (or --fresh)")
    written, commit = [], _commit()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for i, rec in enumerate(records):
            if rec["id"] in done:
                continue
            line = generate_one(rec, mode, engine, seed=seed, unit=unit, style=style)
            line["command"], line["commit"] = command, commit
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()
            written.append(line)
            if log:
                log(f"[{i + 1}/{len(records)}] {line['id']} {line['family']} "
                    f"{line['seconds']:.1f}s {line['stop_reason']}: {line['text'][:70]!r}")
    return written


# ------------------------------------------------------------------ judging

def our_check(text: str, spec: str | None):
    """Our own checker: True / False, or the reason it cannot judge (spec refused)."""
    import studio

    if spec is None:
        return "no spec"
    try:
        return not studio.check(text, spec)
    except (SpecError, ImpossibleConstraint) as e:
        return f"{type(e).__name__}: {e}"


def _ppl(engine, text: str) -> float | None:
    from studio.scoring import score_text

    try:
        return score_text(engine, text).perplexity
    except ValueError:  # empty, or a single token: nothing to score
        return None


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _rate(oks: list) -> float | None:
    judged = [o for o in oks if isinstance(o, bool)]
    return sum(judged) / len(judged) if judged else None


def judge_file(path: str | Path, records: dict[str, dict], engine=None) -> list[dict]:
    """The lines of ``path`` for ``records`` (by id; others are left out) with COLLIE's
    verdict, ours, and (with an engine) the perplexity of the text and of COLLIE's source
    example under the unconstrained model."""
    rows = []
    for ln in read_lines(path):
        rec = records.get(ln["id"])
        if rec is None:
            continue
        row = dict(ln, collie=judge(ln["text"], rec), ours=our_check(ln["text"], ln.get("spec")))
        if engine is not None:
            row["ppl"] = _ppl(engine, ln["text"]) if ln["text"].strip() else None
            row["example_ppl"] = _ppl(engine, rec["example"])
        rows.append(row)
    return rows


def _family_table(rows: list[dict], with_ppl: bool) -> tuple[list[str], float | None]:
    fams = defaultdict(list)
    for r in rows:
        fams[r["family"]].append(r)
    head = "| family | n | COLLIE's checker | our check | agree | empty | refused |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if with_ppl:
        head += " ppl outputs (median) | ppl COLLIE examples (median) |"
        sep += "---:|---:|"
    head += " s / instance (median, min-max) |"
    sep += "---|"
    lines, rates = [head, sep], []
    for fam in FAMILIES:
        rs = fams.get(fam)
        if not rs:
            continue
        collie = _rate([r["collie"] for r in rs])
        rates.append(collie)
        ours = _rate([r["ours"] for r in rs])
        agree = [r["collie"] == r["ours"] for r in rs if isinstance(r["ours"], bool)]
        secs = [r["seconds"] for r in rs]
        row = (f"| {fam} | {len(rs)} | {_fmt(collie)} | {_fmt(ours)} | {sum(agree)}/{len(agree)} "
               f"| {sum(1 for r in rs if r.get('empty'))} | {sum(1 for r in rs if r.get('refused'))} |")
        if with_ppl:
            row += f" {_fmt(_median(r['ppl'] for r in rs), 1)} | {_fmt(_median(r['example_ppl'] for r in rs), 1)} |"
        row += f" {statistics.median(secs):.1f} ({min(secs):.1f}-{max(secs):.1f}) |"
        lines.append(row)
    macro = sum(rates) / len(rates) if rates else None
    return lines, macro


def _excerpt(text: str, n: int = 400) -> str:
    t = text.replace("\n", " / ").replace("|", "\\|")
    return t if len(t) <= n else t[:n] + " …"


def judge_report(paths, records: dict[str, dict], engine=None, command: str = "") -> str:
    out = ["# COLLIE on Perec", "",
           "COLLIE (Yao et al. 2023) judged by its own checker (collie-bench 0.1.0), unpatched: "
           "its nltk `sent_tokenize` / `word_tokenize` on NLTK's trained punkt data, written "
           "from the `punkt` package (bench/judges/collie.py, bench/judges/punkt_data.py); "
           "beside it our own `check` of the translated spec. "
           f"Reference: GPT-4 zero-shot {GPT4_ZERO_SHOT:.2f} over all 2,080 instances (paper). "
           "Perplexity: each text alone under the unconstrained model (studio.scoring); "
           "single-token words cannot be scored (n/a). Seconds: wall time of one instance's "
           "generation on this machine (mask compilation included).", "",
           f"Judged with: `{command}`", ""]
    for path in paths:
        rows = judge_file(path, records, engine)
        if not rows:
            out += [f"## {path}", "", "(no lines)", ""]
            continue
        modes = sorted({r["mode"] for r in rows})
        gen_cmds = sorted({f"{r.get('command', '')}` (commit {r.get('commit') or '?'})" for r in rows})
        table, macro = _family_table(rows, engine is not None)
        micro = _rate([r["collie"] for r in rows])
        out += [f"## {Path(path).name}: mode {', '.join(modes)}", ""]
        out += [f"Generated with: `{c}" for c in gen_cmds] + [""]
        out += [f"**COLLIE macro satisfaction {_fmt(macro)}** (micro {_fmt(micro)}, "
                f"{len(rows)} instances; GPT-4 zero-shot {GPT4_ZERO_SHOT:.2f}); "
                f"our check {_fmt(_rate([r['ours'] for r in rows]))}.", ""]
        out += table + [""]
        out += ["Three outputs per family (the first three in the file):", "",
                "| family | id | spec | text | COLLIE | ours | ppl |", "|---|---|---|---|---|---|---:|"]
        shown = defaultdict(int)
        for r in rows:
            if shown[r["family"]] >= 3:
                continue
            shown[r["family"]] += 1
            ours = r["ours"] if isinstance(r["ours"], bool) else "—"
            out.append(f"| {r['family']} | {r['id']} | `{_excerpt(r.get('spec') or '(none)', 160)}` | "
                       f"{_excerpt(r['text'])} | {'yes' if r['collie'] else 'no'} | "
                       f"{'yes' if ours is True else 'no' if ours is False else ours} | "
                       f"{_fmt(r.get('ppl'), 1)} |")
        refused = [r for r in rows if r.get("refused")]
        if refused:
            out += ["", "Refused specs (generated unconstrained instead):", ""]
            out += [f"- {r['id']}: {r['refused']}" for r in refused]
        out.append("")
    return "\n".join(out)


def _examples_family(items, key):
    """(our pass rate, agreements 'a/b', refused count) of one family for one spec kind."""
    c = [x["collie"] for x in items]
    o = [x[key] for x in items]
    judged = [(ci, oi) for ci, oi in zip(c, o) if isinstance(oi, bool)]
    agree = sum(ci == oi for ci, oi in judged)
    return f"{_fmt(_rate(o), 3)} | {agree}/{len(judged)} | {len(c) - len(judged)}"


def examples_report(records: list[dict], command: str = "") -> str:
    """COLLIE's own source examples: COLLIE's verdict (its checker unpatched), and our check
    of the translated spec (agreement: the field's yardstick beside ours), for the tree
    alone and with the unit the prompt asks for (one-word, sentences:1, paragraphs:1)."""
    fams = defaultdict(list)
    for rec in records:
        item = {"rec": rec, "collie": judge(rec["example"], rec)}
        for key, unit in (("tree", False), ("unit", True)):
            try:
                item[key + "_spec"] = spec_string(rec, unit=unit)
            except TreeError as e:
                item[key + "_spec"], item[key] = None, f"no translation: {e}"
            else:
                item[key] = our_check(rec["example"], item[key + "_spec"])
        fams[rec["collie_task"]].append(item)
    lines = ["# COLLIE's source examples under COLLIE's own checker", "",
             "Each instance's `example` is the source text COLLIE extracted it from.  Here "
             "COLLIE's checker (collie-bench) runs unpatched: nltk's `sent_tokenize` / "
             "`word_tokenize` on NLTK's trained punkt data, written from the `punkt` package "
             "(bench/judges/collie.py, bench/judges/punkt_data.py).  \"our check\" is Perec's `check` of the spec "
             "the instance translates to (bench/collie_translate.py): the tree alone, and with "
             "the unit the prompt asks for as generation uses it (one-word / sentences:1 / "
             "paragraphs:1); \"agree\" counts examples where our verdict matches COLLIE's; "
             "\"refused\" counts specs our parser refused.", "", f"`{command}`", "",
             "| family | n | COLLIE's checker | our check (tree) | agree | refused "
             "| our check (tree + unit) | agree | refused |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rates, total, passed, notes = [], 0, 0, []
    for fam in FAMILIES:
        items = fams.get(fam)
        if not items:
            continue
        c = [x["collie"] for x in items]
        rates.append(sum(c) / len(c))
        total += len(c)
        passed += sum(c)
        lines.append(f"| {fam} | {len(c)} | {sum(c)}/{len(c)} = {sum(c) / len(c):.3f} | "
                     f"{_examples_family(items, 'tree')} | {_examples_family(items, 'unit')} |")
        for x in items:
            rec, ci = x["rec"], x["collie"]
            for key in ("tree", "unit"):
                oi = x[key]
                if isinstance(oi, bool) and oi != ci:
                    notes.append(f"- {rec['id']} ({fam}, {key}): COLLIE {'pass' if ci else 'fail'}, ours "
                                 f"{'pass' if oi else 'fail'}; `{_excerpt(x[key + '_spec'], 200)}`; "
                                 f"example: {_excerpt(rec['example'], 200)}")
                elif not isinstance(oi, bool):
                    notes.append(f"- {rec['id']} ({fam}, {key}): our check could not run: {_excerpt(str(oi), 300)}")
    lines += ["", f"COLLIE's checker on its own examples: micro {passed}/{total} = {passed / total:.3f}, "
              f"macro {sum(rates) / len(rates):.3f} over {len(rates)} families.", ""]
    if notes:
        lines += ["Disagreements, and examples our check could not judge:", ""] + notes + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------ main

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="COLLIE instances, one JSON a line")
    ap.add_argument("--out", nargs="+", help="output JSONL (several with --judge alone)")
    ap.add_argument("--mode", choices=("instruct", "continue"), default="instruct")
    ap.add_argument("--family", default="", help="comma-separated COLLIE families (default all)")
    ap.add_argument("--limit", type=int, default=None, help="first N instances of each family")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opening", choices=tuple(OPENINGS), default="question",
                    help="continue mode's opening: the prompt as Q:/A: (default) or as a heading")
    ap.add_argument("--no-unit", action="store_true",
                    help="leave out the unit the prompt asks for (one-word, sentences:1, paragraphs:1)")
    ap.add_argument("--fresh", action="store_true", help="start OUT over instead of resuming")
    ap.add_argument("--judge", action="store_true", help="score OUT with COLLIE's checker and ours")
    ap.add_argument("--no-generate", action="store_true", help="with --judge: judge OUT as it is")
    ap.add_argument("--no-ppl", action="store_true",
                    help="with --judge --no-generate: load no model, leave out the perplexity columns")
    ap.add_argument("--examples", action="store_true", help="judge COLLIE's source examples (no model)")
    ap.add_argument("--report", default=None, help="where the markdown report goes")
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    command = "python bench/collie.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    families = [f.strip() for f in args.family.split(",") if f.strip()]
    records = load_records(args.data, families, args.limit)

    if args.examples:
        text = examples_report(records, command)
        path = Path(args.report or RESULTS / "collie-examples.md")
        path.write_text(text, encoding="utf-8")
        print(text)
        return
    if not args.out:
        ap.error("--out is required (or --examples)")

    judge_only = args.judge and (args.no_generate or len(args.out) > 1)
    if args.no_ppl and not judge_only:
        ap.error("--no-ppl goes with --judge --no-generate (generation needs the model)")
    engine = None
    if not args.no_ppl:
        import studio

        engine = studio.load(args.model, device=args.device)
    if not judge_only:
        if len(args.out) != 1:
            ap.error("generation writes one --out file (judge several with --judge)")
        lines = run(records, args.out[0], args.mode, engine, seed=args.seed, fresh=args.fresh,
                    command=command, log=lambda s: print(s, flush=True), unit=not args.no_unit,
                    style=args.opening)
        empty = [ln["id"] for ln in lines if ln.get("empty")]
        print(f"wrote {len(lines)} lines to {args.out[0]}; empty outputs: {len(empty)} {empty}")
    if args.judge:
        text = judge_report(args.out, {r["id"]: r for r in records}, engine, command)
        path = Path(args.report or RESULTS / "collie.md")
        path.write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
