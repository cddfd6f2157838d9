"""Do our checker and the field's metric agree?  Shakespeare's own 14th lines, judged by
the FUDGE couplet metric (bench/judges/fudge.py, independent of constraints/) and by
``check_form`` through ``FormConstraint("couplet-iambic", [line 13], end=".?!")``.

FUDGE (Yang & Klein 2021) reported that Shakespeare's own 14th lines score 0.45.  Every
disagreement is listed with its cause.  Beside the default (primary-pronunciation)
reading, the same table under ``;lenient`` (any pronunciation) shows what the strict
reading buys.

    python bench/fudge_agreement.py
Writes bench/results/fudge-agreement.md.  torch-free; runs in seconds.

    python bench/fudge_agreement.py --rejudge FILE
judges the lines of a fudge_couplet results table (| sonnet | line 13 | line 14 | ...)
by the FUDGE metric, e.g. an earlier run's:
``--rejudge <(git show b93a020:bench/results/fudge-couplet-cpu.md)``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from constraints.formspec import FormConstraint  # noqa: E402
from constraints.phonetics import Reading  # noqa: E402
from judges.fudge import judge, pieces, _first_stresses  # noqa: E402

FORM, END = "couplet-iambic", ".?!"


def couplets() -> list[tuple[int, str, str]]:
    """(sonnet, line 13, line 14): each sonnet's closing couplet, its last two lines."""
    text = (ROOT / "bench" / "data" / "sonnets.txt").read_text(encoding="utf-8")
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        if lines and lines[0].isdigit():
            out.append((int(lines[0]), lines[-2].strip(), lines[-1].strip()))
    return out


def explain(l13: str, l14: str, fudge, ours: list[str]) -> str:
    """Why the two judges differ on this line (the causes found in this data)."""
    causes = []
    compounds = [p for p in pieces(l14) if _first_stresses(p) is None and re.search(r"\w[-–—]+\w", p)]
    if compounds:
        causes.append(f"FUDGE looks up whitespace pieces whole, so the compound {compounds[0]!r} is "
                      "a word CMU lacks (not iambic; its syllables guessed as len/3); our checker "
                      "reads its words (" + ", ".join(re.split(r"[-–—]+", compounds[0])) + ") in CMU")
    if fudge.ok and any("not in the CMU dictionary" in m for m in ours):
        causes.append("our checker refuses a word CMU lacks that FUDGE's pieces never look up")
    if not fudge.rhymes and not any("rhyme" in m for m in ours) and fudge.syllables == 10 and fudge.iambic:
        causes.append("the rhyme: phyme's perfect-rhyme groups (its own dictionary, the last "
                      "stressed syllable or the last two) differ from the last stressed vowel on")
    if any("repeats the rhyme word" in m for m in ours):
        causes.append("the same rhyme word twice: FUDGE counts it as a rhyme, a form does not")
    return "; ".join(causes) or "UNEXPLAINED"


def run(reading: Reading):
    rows = []
    for n, l13, l14 in couplets():
        fudge = judge(l13, l14)
        fc = FormConstraint(FORM, [l13], END, reading=reading)
        ours = [v.message for v in fc.check(l14)]
        rows.append((n, l13, l14, fudge, ours))
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def rejudge(path: str) -> None:
    """The FUDGE metric over the rows of a fudge_couplet results table."""
    from wordfreq import zipf_frequency

    from constraints.units import iter_words

    ok = n = rare = words = 0
    for row in Path(path).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        verdict = judge(cells[1], cells[2])
        ok, n = ok + verdict.ok, n + 1
        ws = [m.group().lower() for m in iter_words(cells[2])]
        rare += sum(zipf_frequency(w, "en") < 3 for w in ws)
        words += len(ws)
    print(f"FUDGE metric {ok}/{n} = {ok / max(n, 1):.2f}; words below zipf 3: {rare / max(words, 1):.1%}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--rejudge":
        return rejudge(sys.argv[2])
    strict, lenient = run(Reading()), run(Reading(lenient=True))
    n = len(strict)
    fudge_pass = sum(r[3].ok for r in strict)
    out = ["# Our checker and FUDGE's metric on Shakespeare's own 14th lines\n",
           "`python bench/fudge_agreement.py` (torch-free; the judge: bench/judges/fudge.py, "
           "written from FUDGE's metric and sharing no code with constraints/)\n",
           f"Each of the {n} sonnets' closing couplet: line 13 given, line 14 judged. Our side is "
           f"`FormConstraint('{FORM}', [line 13], end='{END}').check(line 14)` "
           "(check_form: primary pronunciations, perfect rhyme).\n",
           "| | FUDGE metric passes | our check_form passes | agree | disagree |",
           "|---|---:|---:|---:|---:|"]
    for name, rows in (("default (primary pronunciation)", strict), (";lenient (any pronunciation)", lenient)):
        ours_pass = sum(not r[4] for r in rows)
        agree = sum(r[3].ok == (not r[4]) for r in rows)
        out.append(f"| {name} | {fudge_pass}/{n} = **{fudge_pass / n:.3f}** | {ours_pass}/{n} = "
                   f"{ours_pass / n:.3f} | {agree} | {n - agree} |")
    out += ["", f"FUDGE's paper reports 0.45 for Shakespeare's own 14th lines; this judge gives "
                f"{fudge_pass / n:.3f}.", ""]
    dis = [r for r in strict if r[3].ok == bool(r[4])]
    out += ["## Disagreements (default reading), each explained\n"]
    if not dis:
        out.append("None.\n")
    for n_, l13, l14, fudge, ours in dis:
        out += [f"- sonnet {n_}: \"{l14}\" (after \"{l13}\"). FUDGE: "
                f"{'pass' if fudge.ok else '; '.join(fudge.reasons)}. Ours: "
                f"{'pass' if not ours else '; '.join(ours)}. Cause: {explain(l13, l14, fudge, ours)}."]
    lenient_only = [r for r, s in zip(lenient, strict) if (r[3].ok == bool(r[4])) and not (s[3].ok == bool(s[4]))]
    out += ["", f"## What ;lenient changes\n",
            f"Under `;lenient` {len(lenient_only)} more line(s) disagree. The older reading "
            "accepts a line by any pronunciation of a word (\"fire\" as one syllable, \"cause\" "
            "/ \"laws\" as a rhyme), lets an unstressed one-syllable word (\"and\", \"the\": AH0 in "
            "CMU's first reading) take a strong beat, and counts a secondary stress as strong "
            "(\"myself\", 2 1, then needs two strong beats), where FUDGE lets it take either.\n"]
    for n_, l13, l14, fudge, ours in lenient_only:
        out.append(f"- sonnet {n_}: \"{l14}\": FUDGE {'pass' if fudge.ok else '; '.join(fudge.reasons)}; "
                   f"ours (lenient) {'pass' if not ours else '; '.join(ours)}")
    out += ["", "## Every line (default reading)\n",
            "| sonnet | line 14 | FUDGE | FUDGE's reasons | ours | our violations | agree |",
            "|---:|---|---|---|---|---|---|"]
    for n_, l13, l14, fudge, ours in strict:
        out.append(f"| {n_} | {cell(l14)} | {'pass' if fudge.ok else 'fail'} | {cell('; '.join(fudge.reasons))} "
                   f"| {'pass' if not ours else 'fail'} | {cell('; '.join(ours))} | "
                   f"{'yes' if fudge.ok == (not ours) else '**NO**'} |")
    path = ROOT / "bench" / "results" / "fudge-agreement.md"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out[:12]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
