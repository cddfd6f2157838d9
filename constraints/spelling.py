"""Old and unknown spellings read the way a reader reads them.

A writer's given line may end in a word the CMU dictionary lacks because it is spelt the
old way: Elizabethan and Scots print wrote "raine", "fynd", "loue", "minde", "starre",
"beautie", "vnto", "prick'd".  A reader hears "rain", "find", "love", and the line it
rhymes with must rhyme with that.  Two readings, tried in order:

1. **Respelling.** The regular differences between early modern and modern spelling,
   each a rewrite a reader makes without thinking (a silent final e, y for i, u for v
   between vowels, i for j before a vowel, a doubled consonant, ie for y, -'d for -ed),
   applied one or two at a time.  Of the respellings CMU knows, the one most frequent in
   today's English (wordfreq) wins, each rewrite costing it ``REWRITE_COST`` zipf.
2. **Analogy.** Otherwise the word is read like the CMU words that end in the same
   letters: the rhyming part that most of them share, when a clear majority does
   ("-ight" is AY1 T).  This is how a reader sounds out a name or a coinage.

Used wherever a line's rhyme word is heard: the given lines' rhymes (constraints/formspec.py)
and ``check_form``'s rhyme groups (constraints/forms.py), so a writer's own poem checked with
``perec check`` hears "raine" as "rain" too.  The decoder's own words are always CMU words,
so what it writes is heard by CMU alone.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import NamedTuple

from constraints.cmu import init_cmu
from constraints.phonetics import STRICT, Reading, pronunciations, rhyme_part, sound

# Each rewrite: (pattern, replacement), applied at every place it matches, one place at a time.
REWRITES: tuple[tuple[str, str], ...] = (
    (r"'d$", "ed"), (r"'st$", "est"), (r"'n$", "en"), (r"'", ""),   # elisions
    # A silent final e, after a long vowel's two letters or a consonant cluster: raine,
    # sweete, soule, minde, worlde; never after one vowel and one consonant, where the e
    # makes the vowel long ("clime" is not "clim", "hame" not "ham").
    (r"(?<=[aeiouy]{2}[^aeiouy])e$|(?<=[^aeiouy]{2})e$", ""),
    (r"(?<=[a-z]{2})e(?=s$)", ""),     # teares, thoughtes
    (r"(?<=[^aeiou'])d$", "ed"),       # wrongd
    (r"ee$", "e"),                     # mee, shee, bee
    (r"(?<=[^aeiou])y(?=[^aeiou])", "i"),  # fynd, tyme, lyfe
    (r"y", "i"), (r"i", "y"),          # payne / paine, wayes / waies
    (r"ie$", "y"), (r"ie(?=s$)", "y"),  # beautie, skie, eies
    (r"(?<=[aeiou])u(?=[aeiour])", "v"),  # loue, haue, euer, deceiue
    (r"^v(?=[^aeiou])", "u"),          # vnto, vp
    (r"^i(?=[aeiou])", "j"),           # ioy, iust
    (r"([bcdfgklmnprstz])\1$", r"\1"),  # starr(e), sinn(e): after the silent e goes
    (r"ght$", "te"),                   # spright, quight
    (r"ew$", "ue"), (r"ue$", "ew"),    # trew, vewe
    (r"oe$", "o"), (r"oo$", "o"),      # goe, doo
    (r"ce$", "se"), (r"se$", "ce"),    # sence, defense
    (r"ck$", "c"), (r"k$", "ck"),      # musick, publick
    (r"our$", "or"),
    (r"ee(?=[^aeiou])", "ie"),         # yeeld
)
MAX_REWRITES = 2  # a reader makes one or two of these at once, not five
REWRITE_COST = 1.5  # zipf: a respelling one rewrite further must be ~30x more common to win
ANALOGY_MIN_SUFFIX = 3  # letters the word must share with the CMU words it is read like
ANALOGY_MIN_WORDS = 3
ANALOGY_MIN_SHARE = 0.6  # of those words, the share that must agree on the rhyme


class Heard(NamedTuple):
    """How a reader hears a word CMU lacks: ``as_word`` when a respelling is a CMU word
    ("raine" -> "rain"), and the rhyming parts heard ({"EY1 N"}); ``how`` says which way."""

    as_word: str | None
    rhymes: frozenset[str]
    how: str  # "respelt" or "by analogy"


def _respellings(word: str) -> list[str]:
    """Every spelling one rewrite away (a rewrite applied at one of its places)."""
    out = []
    for pattern, repl in REWRITES:
        for m in re.finditer(pattern, word):
            new = word[:m.start()] + m.expand(repl) + word[m.end():]
            if new and new != word:
                out.append(new)
    return out


def respelt(word: str, known) -> str | None:
    """The modern spelling a reader hears in ``word``: of the CMU words (``known(w)``
    true) one or two rewrites away, the one most frequent in English less
    ``REWRITE_COST`` per rewrite ("loue" is "love", not the name "lou"; "starre" is "star"
    two rewrites away before "starr" one away); None if none is."""
    from wordfreq import zipf_frequency

    frontier, depth_of = [word], {word: 0}
    for depth in range(1, MAX_REWRITES + 1):
        nxt = [v for w in frontier for v in _respellings(w) if v not in depth_of]
        for v in nxt:
            depth_of.setdefault(v, depth)
        frontier = list(dict.fromkeys(nxt))
    found = [w for w, d in depth_of.items() if d and known(w)]
    if not found:
        return None
    return max(found, key=lambda w: (zipf_frequency(w, "en") - REWRITE_COST * depth_of[w], w))


@lru_cache(maxsize=1)
def _suffix_rhymes() -> dict[str, Counter]:
    """Letters a CMU word ends in (3 to 6 of them) -> the rhyming parts of the words that
    end so, counted (the primary pronunciation of each)."""
    import pronouncing

    init_cmu()
    out: dict[str, Counter] = {}
    for w, prons in pronouncing.lookup.items():
        if not w.isalpha() or len(w) < ANALOGY_MIN_SUFFIX or not prons:
            continue
        part = rhyme_part(prons[0])
        for k in range(ANALOGY_MIN_SUFFIX, min(6, len(w)) + 1):
            out.setdefault(w[-k:], Counter())[part] += 1
    return out


def by_analogy(word: str) -> str | None:
    """The rhyming part most CMU words ending in ``word``'s last letters share (the longest
    ending that has enough words), or None when they do not agree."""
    letters = re.sub(r"[^a-z]", "", word)
    table = _suffix_rhymes()
    for k in range(min(6, len(letters)), ANALOGY_MIN_SUFFIX - 1, -1):
        counts = table.get(letters[-k:])
        if not counts or sum(counts.values()) < ANALOGY_MIN_WORDS:
            continue
        part, n = counts.most_common(1)[0]
        return part if n / sum(counts.values()) >= ANALOGY_MIN_SHARE else None
    return None


@lru_cache(maxsize=4096)
def read_unknown(word: str, reading: Reading = STRICT) -> Heard | None:
    """How a reader hears ``word`` (lower case), which CMU lacks: respelt into a word
    ``reading`` hears, else by analogy; None when neither gives a reading, or when CMU has
    the word in a reading this one leaves out."""
    if pronunciations(word, True):
        return None  # CMU knows it, as letters ("ibm") or in our extra table: the reading decides
    modern = respelt(word, lambda w: bool(sound(w, reading).rhymes))
    if modern is not None:
        return Heard(modern, sound(modern, reading).rhymes, "respelt")
    part = by_analogy(word)
    return Heard(None, frozenset({part}), "by analogy") if part else None


def heard_rhymes(word: str, reading: Reading = STRICT) -> frozenset[str]:
    """The rhyming parts a reader hears at the end of a line ending in ``word``: CMU's
    under ``reading``, or else the reading of an old or unknown spelling; empty when
    neither knows it."""
    keys = sound(word, reading).rhymes
    if keys:
        return keys
    read = read_unknown(word, reading)
    return read.rhymes if read else frozenset()


__all__ = ["Heard", "read_unknown", "respelt", "by_analogy", "heard_rhymes", "REWRITES"]
