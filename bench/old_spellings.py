"""How well old and unknown spellings are heard (constraints/spelling.py), on real verse.

In ``../shared/data/verse/verse.txt`` (Pope, Byron, Burns, Tennyson, Rossetti... in their
own spelling), take every pair of neighbouring lines in a stanza whose end words are
different.  Where both end words are in CMU, the share of pairs that rhyme is the base
rate of this corpus.  Where one end word is not in CMU and the other is, the reading of the
unknown one (respelt, or by analogy) is asked whether it rhymes with the known one.  If the
readings were right as often as CMU is, that share would be near the base rate; a reading
no better than chance would rhyme about as often as a random known word does (the control:
the unknown word's reading against the known end word of a random other pair).

    python bench/old_spellings.py [--out FILE]
Writes bench/results/old-spellings.md (or --out).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from constraints.phonetics import sound  # noqa: E402
from constraints.spelling import read_unknown  # noqa: E402

VERSE = ROOT.parent / "shared" / "data" / "verse" / "verse.txt"
WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def end_word(line: str) -> str | None:
    ws = WORD.findall(line)
    return ws[-1].lower().strip("'") if ws else None


def pairs(text: str):
    for stanza in re.split(r"\n\s*\n|\n===\n", text):
        ends = [end_word(ln) for ln in stanza.split("\n") if ln.strip() and ln.strip() != "==="]
        for a, b in zip(ends, ends[1:]):
            if a and b and a != b:
                yield a, b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "old-spellings.md"))
    args = ap.parse_args()
    if not VERSE.exists():
        raise SystemExit(f"no verse corpus at {VERSE}")
    known_pairs = rhymed_known = 0
    mixed = []  # (unknown word, known word)
    for a, b in pairs(VERSE.read_text(encoding="utf-8")):
        ka, kb = sound(a).rhymes, sound(b).rhymes
        if ka and kb:
            known_pairs += 1
            rhymed_known += bool(ka & kb)
        elif ka or kb:
            mixed.append((b, a) if ka else (a, b))
    rng = random.Random(0)
    read = {w: read_unknown(w) for w in {u for u, _ in mixed}}
    by_how = Counter(r.how if r else "no reading" for r in read.values())
    heard = [(u, k) for u, k in mixed if read[u]]
    rhymed = [(u, k) for u, k in heard if read[u].rhymes & sound(k).rhymes]
    knowns = [k for _, k in mixed]
    control = sum(bool(read[u].rhymes & sound(rng.choice(knowns)).rhymes) for u, _ in heard)
    per_how = {}
    for how in ("respelt", "by analogy"):
        hs = [(u, k) for u, k in heard if read[u].how == how]
        per_how[how] = (sum(bool(read[u].rhymes & sound(k).rhymes) for u, k in hs), len(hs))
    words = Counter(u for u, _ in rhymed)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    out = [f"# Old and unknown spellings, heard (constraints/spelling.py; {commit}"
           f"{', uncommitted changes' if dirty else ''})\n",
           f"`python bench/old_spellings.py` on `../shared/data/verse/verse.txt`\n",
           f"- neighbouring end words both in CMU: {known_pairs} pairs, **{rhymed_known / known_pairs:.1%}** "
           "rhyme (the corpus's base rate)",
           f"- one end word not in CMU: {len(mixed)} pairs, {len(read)} distinct unknown words: "
           + ", ".join(f"{k} {v}" for k, v in by_how.most_common()),
           f"- of the {len(heard)} pairs whose unknown word has a reading, **{len(rhymed) / max(len(heard), 1):.1%}** "
           f"rhyme with their neighbour as read ({', '.join(f'{h}: {a}/{n}' for h, (a, n) in per_how.items())})",
           f"- control, the same readings against a random other pair's known word: "
           f"{control / max(len(heard), 1):.1%}",
           "- before this reading, every one of these pairs had an unknown rhyme (none could be rhymed with)",
           "",
           "Most frequent unknown words that rhymed as read: "
           + ", ".join(f"{u} ({read[u].as_word or '/'.join(sorted(read[u].rhymes))})" for u, _ in words.most_common(25)),
           "",
           "Samples of unknown words and their readings (first 30 by frequency): "
           + ", ".join(f"{u} -> {(read[u].as_word or '/'.join(sorted(read[u].rhymes))) if read[u] else '?'}"
                       for u, _ in Counter(u for u, _ in mixed).most_common(30)),
           ""]
    Path(args.out).write_text("\n".join(out), encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
