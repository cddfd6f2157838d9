"""Where to put the writer's lexicon floor (constraints.lexicon.DEFAULT_FLOOR).

The CMU dictionary lists company names, surnames and fragments beside English words; a
floor on wordfreq's Zipf frequency removes most of them.  For each candidate floor:

- what it keeps of the words real writers used under constraints: *Robinson Crusoe in
  Words of One Syllable* and *Gadsby* (../shared/data) and Shakespeare's sonnets
  (bench/data/sonnets.txt); share of their word tokens (and distinct words) found in
  CMU that the floor keeps;
- what it removes of CMU: the words below the floor, split into English words and
  names/junk by the hand-labelled sample of 50 words per zipf band
  (bench/data/lexicon-floor-labels.tsv), scaled to each band's size.

Beside the floor, the letter-by-letter words (``not_a_word``: single letters, acronyms,
abbreviations, fragments) are counted: most sit above any floor.

    python bench/lexicon_floor.py
Writes bench/results/lexicon-floor.md.  torch-free; about a minute.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from constraints.lexicon import DEFAULT_FLOOR, default_lexicon, normalize, not_a_word, zipf  # noqa: E402
from constraints.units import iter_words  # noqa: E402

FLOORS = (0.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0)
BANDS = ((0, 1), (1, 2), (2, 2.5), (2.5, 3), (3, 3.5), (3.5, 4), (4, 99))
DATA = ROOT.parent / "shared" / "data"
CORPORA = {
    "Crusoe (one syllable)": DATA / "crusoe-one-syllable.txt",
    "Gadsby (no e)": DATA / "gadsby-train.txt",
    "Shakespeare's sonnets": ROOT / "bench" / "data" / "sonnets.txt",
}


def band_of(z: float) -> tuple[float, float]:
    return next(b for b in BANDS if b[0] <= z < b[1])


def labels() -> dict[str, str]:
    rows = (ROOT / "bench" / "data" / "lexicon-floor-labels.tsv").read_text().splitlines()
    return {r.split("\t")[0]: r.split("\t")[2] for r in rows if r and not r.startswith("#")}


def main() -> None:
    cmu = default_lexicon()
    z = {w: zipf(w) for w in cmu.words}
    band_size = Counter(band_of(v) for v in z.values())
    lab = labels()
    # Share of English words per band, from the labelled sample.
    per_band: dict[tuple, Counter] = {b: Counter() for b in BANDS}
    for w, label in lab.items():
        per_band[band_of(z[w])][label] += 1
    word_share = {b: c["word"] / sum(c.values()) for b, c in per_band.items()}

    out = ["# The writer's lexicon floor\n",
           "`python bench/lexicon_floor.py` (wordfreq 3.x English, CMU via `pronouncing`; "
           f"chosen floor: zipf >= **{DEFAULT_FLOOR:g}**, `constraints.lexicon.DEFAULT_FLOOR`)\n",
           f"CMU lists {len(cmu):,} words (letters and inner apostrophes). A hand-labelled "
           "sample of 50 per zipf band (bench/data/lexicon-floor-labels.tsv) gives the share of "
           "English words in each band:\n",
           "| zipf band | CMU words | sample: word / name / junk | est. English words | est. names + junk |",
           "|---|---:|---|---:|---:|"]
    for b in BANDS:
        c = per_band[b]
        n = band_size[b]
        hi = "+" if b[1] > 9 else f"{b[1]:g}"
        out.append(f"| [{b[0]:g}, {hi}) | {n:,} | {c['word']} / {c['name']} / {c['junk']} | "
                   f"{round(n * word_share[b]):,} | {round(n * (1 - word_share[b])):,} |")
    total_words = sum(band_size[b] * word_share[b] for b in BANDS)
    total_junk = sum(band_size[b] * (1 - word_share[b]) for b in BANDS)

    tokens = {}
    for name, path in CORPORA.items():
        ws = [normalize(m.group()) for m in iter_words(path.read_text(encoding="utf-8"))]
        tokens[name] = [w for w in ws if w in cmu]

    out += ["", "## Each floor: what writers keep, what CMU loses\n",
            "Kept: the share of each book's word tokens found in CMU (distinct words in brackets) "
            "with zipf >= floor. Removed: CMU words below the floor, estimated from the sample.\n",
            "| floor | CMU words kept | " + " | ".join(f"{n}: kept" for n in CORPORA) +
            " | names + junk removed | English words removed |",
            "|---:|---:|" + "---:|" * len(CORPORA) + "---:|---:|"]
    for f in FLOORS:
        kept = sum(1 for v in z.values() if v >= f)
        cells = []
        for name in CORPORA:
            toks = tokens[name]
            types = set(toks)
            cells.append(f"{sum(z[w] >= f for w in toks) / len(toks):.2%} "
                         f"({sum(z[w] >= f for w in types) / len(types):.1%})")
        below = [b for b in BANDS if b[1] <= f]
        junk = sum(band_size[b] * (1 - word_share[b]) for b in below)
        words = sum(band_size[b] * word_share[b] for b in below)
        out.append(f"| {f:g} | {kept:,} | " + " | ".join(cells) +
                   f" | {junk:,.0f} of {total_junk:,.0f} ({junk / total_junk:.0%}) | "
                   f"{words:,.0f} of {total_words:,.0f} ({words / total_words:.0%}) |")

    lost = {name: sorted({w for w in toks if z[w] < DEFAULT_FLOOR}) for name, toks in tokens.items()}
    out += ["", f"Words the books use that the {DEFAULT_FLOOR:g} floor leaves out (the writer can still "
                "type them; `common:0` lets the decoder choose them): " +
            "; ".join(f"{n}: {len(v)} distinct, e.g. {', '.join(v[:12])}" for n, v in lost.items()), ""]

    reasons = Counter()
    examples: dict[str, list[str]] = {}
    high = Counter()
    for w in cmu.words:
        r = not_a_word(w)
        if r:
            reasons[r] += 1
            examples.setdefault(r, []).append(w)
            if z[w] >= DEFAULT_FLOOR:
                high[r] += 1
    out += ["## Letters, acronyms, abbreviations, fragments\n",
            "Found by pronunciation and spelling, not a list (constraints/spelled.py, "
            "`constraints.lexicon.not_a_word`); removed whatever the floor, unless `+letters`. "
            f"Most are frequent in wordfreq (they are frequent as tokens), so the floor alone keeps them.\n",
            f"| kind | in CMU | of them zipf >= {DEFAULT_FLOOR:g} | examples |", "|---|---:|---:|---|"]
    for r, n in reasons.most_common():
        common = [w for w in examples[r] if z[w] >= DEFAULT_FLOOR]
        out.append(f"| {r} | {n:,} | {high[r]:,} | {', '.join(common[:14])} |")

    def removed(f: float) -> float:
        return sum(band_size[b] * (1 - word_share[b]) for b in BANDS if b[1] <= f)

    def kept_range(f: float) -> str:
        shares = [sum(z[w] >= f for w in toks) / len(toks) for toks in tokens.values()]
        return f"{min(shares):.1%}-{max(shares):.1%}"

    lower, upper = DEFAULT_FLOOR - 0.5, DEFAULT_FLOOR + 0.5
    out += ["", "## Choice\n",
            f"The floor is **{DEFAULT_FLOOR:g}**: the field's line for common English (the issue's "
            f"yardstick counts zipf < 3 as rare). At it the decoder loses an estimated "
            f"{removed(DEFAULT_FLOOR) / total_junk:.0%} of CMU's names and junk while the three books "
            f"keep {kept_range(DEFAULT_FLOOR)} of their tokens. {lower:g} keeps {kept_range(lower)} but "
            f"leaves about {total_junk - removed(lower):,.0f} names and junk entries instead of "
            f"{total_junk - removed(DEFAULT_FLOOR):,.0f}; {upper:g} keeps only {kept_range(upper)}. "
            "The words the floor leaves out are mostly literary (bough, mirth, scythe, aghast): a "
            "writer who wants the decoder to choose them writes `common:2.5` or `common:0`."]
    path = ROOT / "bench" / "results" / "lexicon-floor.md"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
