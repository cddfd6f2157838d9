"""Sound constraints from the CMU pronouncing dictionary (via ``pronouncing``).

A word with several pronunciations ("fire": F AY1 ER0 / F AY1 R) passes a rule if
ANY of its pronunciations passes.  A word outside the dictionary has no known sound:
phonetic rules refuse it, except ``syllables:...+estimate``, which counts syllables
with nltk's SyllableTokenizer and says "(estimated)" in check's messages.

The module functions (``syllable_counts``, ``stress_patterns``, ``rhyme_keys``,
``first_phones``) are what the forms engine builds on; all are cached.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from functools import lru_cache
from typing import NamedTuple

import pronouncing

from constraints.base import SpecError, Violation, WordConstraint, register, require_arg, shown
from constraints.units import WORD_RE, iter_words
from constraints.lexicon import EXTRA_PRONUNCIATIONS, normalize
from constraints.words import edit_distance

# The 39 ARPAbet phonemes of the CMU dictionary (stress digits stripped).
PHONEMES = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH".split()
)

ESTIMATE = "+estimate"
# Bounded: big enough for the whole lexicon, but a long-running server that sees
# arbitrary text cannot grow the caches forever.
_CACHE = 1 << 18


# ---------------------------------------------------------------- lookups


class Sound(NamedTuple):
    """What CMU says about one word; every field has one entry per pronunciation."""

    phones: tuple[str, ...]  # "F AY1 ER0", ...
    syllables: frozenset[int]
    stresses: frozenset[str]  # "10", secondary stress read as 1
    rhymes: frozenset[str]  # rhyming parts, "AY1 ER0"
    firsts: frozenset[str]  # first phonemes without stress, "F"


_EMPTY = Sound((), frozenset(), frozenset(), frozenset(), frozenset())
_interned: dict[frozenset, frozenset] = {}


def _intern(fs: frozenset) -> frozenset:
    # Most words share a handful of these sets ({1}, {"10"}): keeping one copy of
    # each holds the whole lexicon's sound table to a few tens of MB.
    return _interned.setdefault(fs, fs)


# Keeps only the stress digits of a pronunciation: "F AY1 ER0" -> "10".
_STRESS_ONLY = str.maketrans("2", "1", "ABCDEFGHIJKLMNOPQRSTUVWXYZ ")


def _stress_of(pron: str) -> str:
    # Secondary stress (2) counts as stressed: metre hears two levels, not three.
    return pron.translate(_STRESS_ONLY)


@lru_cache(maxsize=_CACHE)
def sound(word: str) -> Sound:
    """CMU's pronunciations of ``word`` and what follows from them (cached)."""
    w = normalize(word)
    raw = pronouncing.phones_for_word(w) or EXTRA_PRONUNCIATIONS.get(w, ())
    # A few CMU entries carry a comment ("AO1 L B AO0 R G # place, danish").
    found = tuple(p.split("#", 1)[0].strip() for p in raw)
    if not found:
        return _EMPTY
    stresses = [_stress_of(p) for p in found]
    return Sound(
        found,
        _intern(frozenset(map(len, stresses))),  # one stress digit per syllable
        _intern(frozenset(stresses)),
        _intern(frozenset(k for k in map(pronouncing.rhyming_part, found) if k)),
        _intern(frozenset(p.split(" ", 1)[0].rstrip("012") for p in found)),
    )


def phones(word: str) -> tuple[str, ...]:
    """Every CMU pronunciation of ``word`` ("F AY1 ER0", ...); () if unknown."""
    return sound(word).phones


def known(word: str) -> bool:
    return bool(sound(word).phones)


def syllable_counts(word: str) -> frozenset[int]:
    """Possible syllable counts of ``word``, one per pronunciation; empty if unknown."""
    return sound(word).syllables


def stress_patterns(word: str) -> frozenset[str]:
    """Stress patterns of ``word`` as strings of 0/1 (secondary stress -> 1)."""
    return sound(word).stresses


def rhyme_keys(word: str) -> frozenset[str]:
    """The rhyming parts of ``word``'s pronunciations ("day" -> {"EY1"})."""
    return sound(word).rhymes


def first_phones(word: str) -> frozenset[str]:
    """The first phoneme of each pronunciation ("sun" -> {"S"})."""
    return sound(word).firsts


def bare_phones(word: str) -> frozenset[tuple[str, ...]]:
    """Pronunciations as phoneme tuples without stress digits (not cached: only
    sounds-like needs them, once per word, and its result set is cached)."""
    return frozenset(tuple(re.sub(r"\d", "", p).split()) for p in phones(word))


_TOKENIZER = None


@lru_cache(maxsize=_CACHE)
def estimate_syllables(word: str) -> int:
    """A spelling-based syllable count for words outside CMU (at least 1)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from nltk.tokenize import SyllableTokenizer  # needs no downloaded corpora

        _TOKENIZER = SyllableTokenizer()
    letters = re.sub(r"[^a-z]", "", normalize(word))
    if not letters:
        return 1
    # The tokenizer splits consonant-only runs off as pieces; only pieces with a
    # vowel are syllables.
    pieces = _TOKENIZER.tokenize(letters)
    return max(1, sum(1 for p in pieces if re.search(r"[aeiouy]", p)))


@lru_cache(maxsize=4096)
def rhymes_of(key: str) -> tuple[str, ...]:
    """All CMU words whose rhyming part is ``key``."""
    pronouncing.init_cmu()
    return tuple(pronouncing.rhyme_lookup.get(key, ()))


# ---------------------------------------------------------------- constraints


class PhoneticConstraint(WordConstraint):
    """Shared handling of words outside CMU: refused, with a message that says why."""

    estimate = False

    @abstractmethod
    def sound_ok(self, word: str) -> bool:
        """The rule, for a word CMU knows."""

    def word_ok(self, word: str) -> bool:
        return known(word) and self.sound_ok(word)

    def why_not(self, word: str) -> str:
        if not known(word):
            return f"{word!r} is not in the CMU dictionary, so its sound is unknown"
        return f"{word!r} breaks {self.describe()}"


_OPS = {
    "=": lambda a, b: a == b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_CMP = re.compile(r"(<=|>=|<|>|=)?\s*(.*)", re.S)  # re.S: a pasted line break is a bad number, not a crash


def parse_comparison(name: str, arg: str) -> tuple[str, int]:
    """'3', '<=3', '>=3', '<3', '>3' -> (op, n); n a non-negative int."""
    op, num = _CMP.fullmatch(arg.strip()).groups()
    op = op or "="
    try:
        n = int(num)
    except ValueError:
        raise SpecError(f"'{name}': {shown(num)} is not a whole number (e.g. {name}:3, {name}:<=3)") from None
    if n < 0:
        raise SpecError(f"'{name}': count must not be negative (got {n})")
    return op, n


class Syllables(PhoneticConstraint):
    """Each word has N syllables (or <=N, >=N, <N, >N) in some pronunciation."""

    def __init__(self, op: str, n: int, estimate: bool = False):
        if op not in _OPS:
            raise SpecError(f"syllables: unknown comparison {shown(op)}")
        if n < 0:
            raise SpecError(f"syllables: count must not be negative (got {n})")
        self.op, self.n, self.estimate = op, n, estimate

    def counts(self, word: str) -> tuple[frozenset[int], bool]:
        """(possible counts, estimated?)."""
        c = syllable_counts(word)
        if c or not self.estimate:
            return c, False
        return frozenset({estimate_syllables(word)}), True

    def sound_ok(self, word: str) -> bool:
        cmp = _OPS[self.op]
        return any(cmp(c, self.n) for c in syllable_counts(word))

    def word_ok(self, word: str) -> bool:
        cmp = _OPS[self.op]
        return any(cmp(c, self.n) for c in self.counts(word)[0])

    def spec(self) -> str:
        op = "" if self.op == "=" else self.op
        return f"syllables:{op}{self.n}" + (ESTIMATE if self.estimate else "")

    def describe(self) -> str:
        what = {"=": "", "<=": "at most ", ">=": "at least ", "<": "fewer than ", ">": "more than "}
        s = "" if self.n == 1 else "s"
        extra = " (estimated outside CMU)" if self.estimate else ""
        return f"words of {what[self.op]}{self.n} syllable{s}{extra}"

    def why_not(self, word: str) -> str:
        counts, estimated = self.counts(word)
        if not counts:
            return f"{word!r} is not in the CMU dictionary, so its syllables are unknown"
        found = " or ".join(str(c) for c in sorted(counts))
        want = self.spec().split(":", 1)[1].replace(ESTIMATE, "")
        return f"{word!r} has {found} syllable(s), needs {want}" + (" (estimated)" if estimated else "")


class Rhymes(PhoneticConstraint):
    """Each word rhymes with WORD: shares a rhyming part (last stressed vowel onward)
    in some pronunciation.  WORD itself does not count as its own rhyme."""

    def __init__(self, word: str):
        self.word = normalize(word)
        self.keys = rhyme_keys(self.word)
        if not self.keys:
            raise SpecError(f"rhymes: no rhymes for {shown(word)}: it is not in the CMU dictionary")
        if not any(w != self.word for k in self.keys for w in rhymes_of(k)):
            raise SpecError(f"rhymes: no rhymes for {shown(word)} in the CMU dictionary")

    def sound_ok(self, word: str) -> bool:
        return normalize(word) != self.word and bool(rhyme_keys(word) & self.keys)

    def spec(self) -> str:
        return f"rhymes:{self.word}"

    def describe(self) -> str:
        return f"rhymes with {self.word!r}"


def _stress_arg(pattern: str) -> str:
    p = pattern.strip()
    if not p or set(p) - set("012"):
        raise SpecError(f"stress: pattern must be digits 0, 1 (2 counts as 1), e.g. stress:01; got {shown(pattern)}")
    return p.replace("2", "1")


class Stress(PhoneticConstraint):
    """Each word has this stress pattern (0 unstressed, 1 stressed) in some pronunciation."""

    def __init__(self, pattern: str):
        self.pattern = _stress_arg(pattern)

    def sound_ok(self, word: str) -> bool:
        return self.pattern in stress_patterns(word)

    def spec(self) -> str:
        return f"stress:{self.pattern}"

    def describe(self) -> str:
        return f"stress pattern {self.pattern}"


class MetreOf(PhoneticConstraint):
    """Each word shares a stress pattern with WORD ("metre-of:again" = 01)."""

    def __init__(self, word: str):
        self.word = normalize(word)
        self.patterns = stress_patterns(self.word)
        if not self.patterns:
            raise SpecError(f"metre-of: {shown(word)} is not in the CMU dictionary, so its metre is unknown")

    def sound_ok(self, word: str) -> bool:
        return bool(stress_patterns(word) & self.patterns)

    def spec(self) -> str:
        return f"metre-of:{self.word}"

    def describe(self) -> str:
        return f"same stress as {self.word!r} ({' or '.join(sorted(self.patterns))})"


class SoundsLike(PhoneticConstraint):
    """Each word sounds like WORD: some pronunciation is within N phoneme edits
    (insert, delete, substitute; stress ignored) of some pronunciation of WORD.
    N defaults to 1, so homophones ("their" ~ "there") and near-rhymes of one
    sound ("cat" ~ "bat", "cap", "at") pass.  WORD itself passes."""

    def __init__(self, word: str, distance: int = 1):
        self.word = normalize(word)
        self.distance = distance
        self.targets = bare_phones(self.word)
        if not self.targets:
            raise SpecError(f"sounds-like: {shown(word)} is not in the CMU dictionary, so its sound is unknown")
        if not 0 <= distance <= 3:
            raise SpecError(f"sounds-like: distance must be 0 to 3 (got {distance})")

    def sound_ok(self, word: str) -> bool:
        return any(
            edit_distance(a, b, self.distance) <= self.distance
            for a in bare_phones(word) for b in self.targets
        )

    def spec(self) -> str:
        return f"sounds-like:{self.word}" + (f",{self.distance}" if self.distance != 1 else "")

    def describe(self) -> str:
        return f"sounds like {self.word!r}" + (f" (within {self.distance} sounds)" if self.distance != 1 else "")


class Alliterate(PhoneticConstraint):
    """Each word starts with one of these phonemes (ARPAbet, stress ignored)."""

    def __init__(self, sounds: frozenset[str]):
        bad = sorted(s for s in sounds if s not in PHONEMES)
        if not sounds or bad:
            raise SpecError(f"alliterate: {bad[0] if bad else ''!r} is not an ARPAbet phoneme")
        self.sounds = frozenset(sounds)

    def sound_ok(self, word: str) -> bool:
        return bool(first_phones(word) & self.sounds)

    def spec(self) -> str:
        return "alliterate:" + ",".join(sorted(self.sounds))

    def describe(self) -> str:
        return "starts with the sound " + " or ".join(sorted(self.sounds))


def _alliterate_arg(arg: str) -> frozenset[str]:
    """'S' or 's' (a phoneme), 'S,SH' (several), or a word: 'sun' -> its first sound.
    A phoneme name wins over a word of the same spelling ("b" is the sound B)."""
    out: set[str] = set()
    for item in (x.strip() for x in arg.split(",")):
        if item.upper() in PHONEMES:
            out.add(item.upper())
        elif WORD_RE.fullmatch(item) and first_phones(item):
            out |= first_phones(item)
        else:
            raise SpecError(
                f"alliterate: {item!r} is neither an ARPAbet phoneme (S, SH, K, ...) nor a word in CMU"
            )
    return frozenset(out)


def _word_arg(name: str, arg: str | None) -> str:
    w = require_arg(name, arg)
    if not WORD_RE.fullmatch(w):
        raise SpecError(f"'{name}': {shown(w)} is not a word")
    return w


def _no_estimate(name: str, arg: str | None) -> str:
    a = require_arg(name, arg)
    if a.endswith(ESTIMATE):
        raise SpecError(f"'{name}': +estimate only applies to syllables (stress and sound cannot be guessed)")
    return a


@register("syllables",
          description="Every word has N syllables (also <=N, >=N, <N, >N); add +estimate to "
                      "judge words outside CMU by spelling.",
          example="syllables:1", level="word")
def _syllables(arg):
    a = require_arg("syllables", arg)
    estimate = a.endswith(ESTIMATE)
    if estimate:
        a = a[: -len(ESTIMATE)]
    op, n = parse_comparison("syllables", a)
    return Syllables(op, n, estimate)


@register("rhymes", description="Every word rhymes with WORD (CMU rhyming part).",
          example="rhymes:day", level="word")
def _rhymes(arg):
    return Rhymes(_word_arg("rhymes", _no_estimate("rhymes", arg)))


@register("stress", description="Every word has this stress pattern (0 weak, 1 strong).",
          example="stress:10", level="word")
def _stress(arg):
    return Stress(_no_estimate("stress", arg))


@register("metre-of", description="Every word has the same stress pattern as WORD.",
          example="metre-of:river", level="word")
def _metre_of(arg):
    return MetreOf(_word_arg("metre-of", _no_estimate("metre-of", arg)))


@register("sounds-like",
          description="Every word is within one sound (phoneme edit) of WORD; WORD,N for N edits.",
          example="sounds-like:cat", level="word")
def _sounds_like(arg):
    a = _no_estimate("sounds-like", arg)
    word, _, n = a.partition(",")
    try:
        distance = int(n) if n.strip() else 1
    except ValueError:
        raise SpecError(f"sounds-like: distance {shown(n.strip())} is not a whole number") from None
    return SoundsLike(_word_arg("sounds-like", word), distance)


@register("alliterate",
          description="Every word starts with this sound: an ARPAbet phoneme (S, SH) or a word's "
                      "first sound (alliterate:sun).",
          example="alliterate:S", level="word")
def _alliterate(arg):
    return Alliterate(_alliterate_arg(_no_estimate("alliterate", arg)))


def unknown_words(text: str) -> list[Violation]:
    """Words of ``text`` outside CMU, as violations (used by the forms checker)."""
    return [
        Violation(m.start(), m.end(), "cmu", f"{m.group()!r} is not in the CMU dictionary")
        for m in iter_words(text) if not known(m.group())
    ]


__all__ = [
    "PHONEMES", "Sound", "sound", "phones", "known", "syllable_counts", "estimate_syllables", "stress_patterns",
    "rhyme_keys", "bare_phones", "first_phones", "rhymes_of",
    "PhoneticConstraint", "Syllables", "Rhymes", "Stress", "MetreOf", "SoundsLike", "Alliterate",
    "parse_comparison", "unknown_words",
]
