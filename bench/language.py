"""Which languages the embedded model writes under ``language:CODE``, as langdetect judges.

For each language, the model answers a few instructions (asked in English, as IFEval asks
"answer in French") under ``language:CODE``; langdetect (bench-only: the product never
imports it) names the language of each answer, beside Perec's own ``check``.  The same
prompts without the rule are the baseline.

    python bench/language.py [--langs fr,es,de] [--tokens 60] [--report bench/results/language.md]

A language is served (constraints/language.py SERVED) when langdetect names it for most of
its answers.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = (
    "Write two sentences about the sea, in {name}.",
    "Tell a short story about a dog. Answer in {name} only.",
)

EXTRA_NAMES = {"sv": "Swedish", "pl": "Polish", "ro": "Romanian", "ca": "Catalan", "da": "Danish",
               "fi": "Finnish", "cs": "Czech", "tr": "Turkish", "id": "Indonesian", "nb": "Norwegian"}


def detect(text: str) -> str:
    from langdetect import DetectorFactory, LangDetectException, detect as ld_detect

    DetectorFactory.seed = 0  # langdetect samples: fixed, as IFEval's checker runs it
    try:
        return ld_detect(text)
    except LangDetectException:
        return "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--langs", default="fr,es,de,it,pt,nl,sv,pl")
    ap.add_argument("--tokens", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", default=str(ROOT / "bench" / "results" / "language.md"))
    args = ap.parse_args(argv)

    import studio
    from constraints.base import ImpossibleConstraint
    from constraints.language import SERVED
    from constraints.spec import parse_spec
    from studio.decode.sampling import Settings

    # Languages not yet served are measured too: that is how one becomes served.
    for code in args.langs.split(","):
        SERVED.setdefault(code, EXTRA_NAMES.get(code, code))
    engine = studio.load()
    settings = Settings(max_new_tokens=args.tokens, seed=args.seed)
    n = len(PROMPTS)
    report = Path(args.report)
    report.write_text("\n".join([
        "# language:CODE on the embedded model, judged by langdetect",
        "",
        f"`python bench/language.py {shlex.join(sys.argv[1:] if argv is None else argv)}` "
        f"(SmolLM2-135M-Instruct, CPU, instruct mode, {args.tokens} tokens, seed {args.seed}; "
        f"{n} prompts per language, asked in English; rows are written as each language ends).",
        "",
        "| code | language | langdetect agrees, unconstrained | langdetect agrees, under language: "
        "| Perec's check passes | first answer under language: |",
        "|---|---|---|---|---|---|",
    ]) + "\n", encoding="utf-8")
    for code in args.langs.split(","):
        name = SERVED[code]
        rule = parse_spec(f"language:{code}")
        hits = base_hits = ours = 0
        sample = ""
        for p in PROMPTS:
            prompt = p.format(name=name)
            base = engine.generate(prompt, None, settings, mode="instruct").text
            base_hits += detect(base) == code
            try:
                text = engine.generate(prompt, rule, settings, mode="instruct").text
            except ImpossibleConstraint as e:
                text, sample = "", f"refused: {e}"
            hits += detect(text) == code
            ours += not rule.check(text)
            sample = sample or text
        print(code, base_hits, hits, ours, repr(sample[:80]), flush=True)
        shown = sample[:90].replace("|", "\\|").replace("\n", " ")
        with report.open("a", encoding="utf-8") as f:
            f.write(f"| {code} | {name} | {base_hits}/{n} | {hits}/{n} | {ours}/{n} | {shown} |\n")
    print("wrote", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
