"""The FUDGE couplet success metric (Yang & Klein 2021), an independent judge.

Written from the metric's definition in FUDGE's evaluation (poetry_util.py and the
couplet evaluation script of the FUDGE release), sharing no code with ``constraints/``:
the 14th line succeeds when all four hold.

- **iambic**: the line is split on whitespace, each piece stripped of punctuation
  (``string.punctuation``) and looked up in CMU; its FIRST pronunciation gives its
  stresses.  A one-syllable word whose stress is 1 counts as 2 (either beat); 2 (secondary
  stress) fits either beat.  No 1 may stand at an even position (0, 2, ...: a weak beat)
  and no 0 at an odd one.  A piece CMU lacks (an unknown word, a hyphenated compound, a
  lone dash) makes the line not iambic.
- **ten syllables**: the sum over pieces of the first pronunciation's syllables (at most
  10 a word); a piece CMU lacks counts round(len / 3).
- **end**: the stripped line ends with ``.``, ``?`` or ``!``.
- **perfect rhyme**: the last pieces of line 13 and line 14 have the same perfect-rhyme
  group in the ``phyme`` package (``Phyme().get_perfect_rhymes``: the words sharing the
  last stressed syllable, by phyme's first pronunciation, with "(1)" variants folded);
  a word phyme lacks rhymes with nothing.  The same word twice counts as a rhyme.

Note what the issue's summary leaves out and FUDGE's definition has: a one-syllable
word CMU marks unstressed in its first pronunciation ("a", "the", "and", "in": AH0,
IH0) is *not* free: it must take a weak beat.

torch-free; phyme's data ships in its wheel (works offline).  ``judge(line13, line14)``
gives a ``Verdict`` with each part and the reasons it failed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache

import pronouncing

PHRASE_ENDS = ".?!"
MAX_SYLLABLES_PER_WORD = 10


def pieces(line: str) -> list[str]:
    """Whitespace-separated pieces, punctuation stripped from their ends (FUDGE's words)."""
    return [p.strip().strip(string.punctuation) for p in line.split()]


def _first_stresses(piece: str) -> str | None:
    found = pronouncing.phones_for_word(piece)
    return pronouncing.stresses(found[0]) if found else None


def metre(line: str) -> str | None:
    """The line's stresses by first pronunciations, one-syllable 1s shown as 2; None when
    a piece is not in CMU."""
    out = ""
    for p in pieces(line):
        s = _first_stresses(p)
        if s is None:
            return None
        out += "2" if s == "1" else s
    return out


def is_iambic(line: str) -> bool:
    m = metre(line)
    if m is None:
        return False
    return "1" not in m[0::2] and "0" not in m[1::2]


def count_syllables(line: str) -> int:
    total = 0
    for p in pieces(line):
        s = _first_stresses(p)
        n = len(s) if s is not None else round(len(p) / 3)
        total += min(MAX_SYLLABLES_PER_WORD, n)
    return total


_PHYME = None


def _phyme():
    global _PHYME
    if _PHYME is None:
        from Phyme import Phyme  # loads its rhyme trie (a few seconds, once)

        _PHYME = Phyme()
    return _PHYME


@lru_cache(maxsize=1 << 14)
def rhyme_group(word: str) -> tuple[str, ...] | None:
    """phyme's perfect-rhyme group of ``word`` (sorted, "(1)" variants folded); None when
    phyme does not know the word."""
    try:
        found = _phyme().get_perfect_rhymes(word)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        return None
    return tuple(sorted({w.split("(")[0] for ws in found.values() for w in ws}))


def last_piece(line: str) -> str:
    ps = line.split()
    return ps[-1].strip(string.punctuation) if ps else ""


def rhymes(line13: str, line14: str) -> bool:
    a, b = rhyme_group(last_piece(line13)), rhyme_group(last_piece(line14))
    return a is not None and a == b


def ends_well(line: str) -> bool:
    s = line.strip()
    return bool(s) and s[-1] in PHRASE_ENDS


@dataclass
class Verdict:
    iambic: bool
    syllables: int
    rhymes: bool
    end: bool
    metre: str | None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


def judge(line13: str, line14: str) -> Verdict:
    """FUDGE's verdict on ``line14`` as the line after ``line13``."""
    m = metre(line14)
    iambic = is_iambic(line14)
    n = count_syllables(line14)
    rhyme = rhymes(line13, line14)
    end = ends_well(line14)
    reasons = []
    if not iambic:
        bad = [p for p in pieces(line14) if _first_stresses(p) is None]
        reasons.append(f"not iambic: {bad[0]!r} is not in CMU" if bad else f"not iambic: {m}")
    if n != 10:
        reasons.append(f"{n} syllables, not 10")
    if not rhyme:
        a, b = last_piece(line13), last_piece(line14)
        unknown = [w for w in (a, b) if rhyme_group(w) is None]
        reasons.append(f"no perfect rhyme: phyme lacks {unknown[0]!r}" if unknown
                       else f"no perfect rhyme: {b!r} / {a!r}")
    if not end:
        reasons.append("does not end with . ? or !")
    return Verdict(iambic, n, rhyme, end, m, reasons)


__all__ = ["judge", "Verdict", "is_iambic", "count_syllables", "rhymes", "rhyme_group", "metre",
           "pieces", "ends_well", "PHRASE_ENDS"]
