"""Sound constraints from the CMU pronouncing dictionary (via ``pronouncing``).

How a word sounds is read the way the field reads it (FUDGE's metric, phyme's perfect
rhyme): by its **primary** (first) CMU pronunciation, and only CMU's words (the few
common words it lacks, "o'er", "e'er", are heard under ``+lenient``).  "fire" (F AY1 ER0 / F AY1 R) has
two syllables, "read" rhymes with "seed", not "bed".  A rule may opt back into any
pronunciation with ``+lenient`` (forms: ``;lenient``), the older reading under which
"fire" has one or two syllables.

Pronunciations that only spell a word's letters (CMU's "MIT" = EH1 M AY1 T IY1) and single
letters other than a, I and O do not count (constraints/spelled.py), unless a rule asks
with ``+letters`` (forms: ``;letters``).

A word outside the dictionary has no known sound: phonetic rules refuse it, except
``syllables:...+estimate``, which counts syllables with nltk's SyllableTokenizer and says
"(estimated)" in check's messages.

The module functions (``sound``, ``syllable_counts``, ``stress_patterns``, ``metres``,
``rhyme_keys``, ``first_phones``) are what the forms engine builds on; all are cached and
take a ``Reading`` (default: strict).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from functools import lru_cache
from typing import NamedTuple

import pronouncing

from constraints import limits
from constraints.base import SpecError, WordConstraint, register, require_arg, shown, within
from constraints.units import WORD_RE
from constraints.lexicon import EXTRA_PRONUNCIATIONS, normalize
from constraints.spelled import spelled_out
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


class Reading(NamedTuple):
    """Which pronunciations of a word a rule hears."""

    lenient: bool = False  # any CMU pronunciation; strict (False): the primary one
    letters: bool = False  # letter-by-letter readings (acronyms, single letters) count too

    def options(self, mark: str = "+") -> str:
        """The spec suffix that asks for this reading ("" for the strict default)."""
        return "".join(mark + n for n in ("lenient", "letters") if getattr(self, n))


STRICT = Reading()
READING_OPTIONS = ("lenient", "letters")


# ---------------------------------------------------------------- lookups


class Sound(NamedTuple):
    """What CMU says about one word under one reading; one entry per pronunciation heard."""

    phones: tuple[str, ...]  # "F AY1 ER0", ...
    syllables: frozenset[int]
    stresses: frozenset[str]  # "10": secondary stress read as 1 (the stress rules)
    metres: frozenset[str]  # metrical patterns: 0 weak, 1 strong, 2 either beat (forms)
    rhymes: frozenset[str]  # rhyming parts, "AY1 ER0"
    firsts: frozenset[str]  # first phonemes without stress, "F"


_EMPTY = Sound((), frozenset(), frozenset(), frozenset(), frozenset(), frozenset())
_interned: dict[frozenset, frozenset] = {}


def _intern(fs: frozenset) -> frozenset:
    # Most words share a handful of these sets ({1}, {"10"}): keeping one copy of
    # each holds the whole lexicon's sound table to a few tens of MB.
    return _interned.setdefault(fs, fs)


# Keeps only the stress digits of a pronunciation: "F AY1 ER0" -> "10".
_DIGITS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ ")


def _stress_of(pron: str) -> str:
    # Secondary stress (2) counts as stressed: the stress rules hear two levels.
    return pron.translate(_DIGITS).replace("2", "1")


def _metrical(pron: str, lenient: bool) -> str:
    """The metrical pattern of one pronunciation: 0 takes a weak beat, 1 a strong one,
    2 either.  Strict (the field's reading, FUDGE's): a stressed one-syllable word and a
    secondary stress fit either beat; an unstressed one-syllable word ("a", "the": AH0)
    takes a weak beat.  Lenient (the older reading): every one-syllable word is free and
    secondary stress is strong."""
    digits = pron.translate(_DIGITS)
    if len(digits) == 1:
        return "2" if lenient or digits != "0" else "0"
    return digits.replace("2", "1") if lenient else digits


def rhyme_part(pron: str) -> str:
    """Perfect rhyme: the phonemes from the last stressed vowel on ("K AE1 T" -> "AE1 T");
    a word with no stressed vowel ("the", DH AH0) rhymes from its last vowel."""
    ph = pron.split()
    vowels = [i for i, p in enumerate(ph) if p[-1].isdigit()]
    stressed = [i for i in vowels if ph[i][-1] in "12"]
    at = stressed[-1] if stressed else (vowels[-1] if vowels else 0)
    return " ".join(ph[at:])


@lru_cache(maxsize=_CACHE)
def pronunciations(word: str, letters: bool = False, extra: bool = True) -> tuple[str, ...]:
    """CMU's pronunciations of ``word`` in CMU's order, letter-by-letter readings dropped
    unless ``letters`` ("mit": ("M IH1 T",); with letters also "EH1 M AY1 T IY1").  With
    ``extra``, the few common words CMU lacks ("o'er") from lexicon.EXTRA_PRONUNCIATIONS."""
    w = normalize(word)
    raw = pronouncing.phones_for_word(w) or (EXTRA_PRONUNCIATIONS.get(w, ()) if extra else ())
    # A few CMU entries carry a comment ("AO1 L B AO0 R G # place, danish").
    found = tuple(p.split("#", 1)[0].strip() for p in raw)
    return found if letters else tuple(p for p in found if not spelled_out(w, p))


@lru_cache(maxsize=_CACHE)
def sound(word: str, reading: Reading = STRICT) -> Sound:
    """What a rule with this ``reading`` hears of ``word`` (cached): the primary CMU
    pronunciation (strict: only CMU's words, as the field's judges know them) or every one,
    our few extra words ("o'er") included (lenient)."""
    found = pronunciations(word, reading.letters, extra=reading.lenient)
    if not found:
        return _EMPTY
    heard = found if reading.lenient else found[:1]
    return Sound(
        heard,
        _intern(frozenset(len(p.translate(_DIGITS)) for p in heard)),  # a digit per syllable
        _intern(frozenset(map(_stress_of, heard))),
        _intern(frozenset(_metrical(p, reading.lenient) for p in heard)),
        _intern(frozenset(rhyme_part(p) for p in heard)),
        _intern(frozenset(p.split(" ", 1)[0].rstrip("012") for p in heard)),
    )


def phones(word: str, reading: Reading = STRICT) -> tuple[str, ...]:
    """The pronunciations of ``word`` this reading hears ("F AY1 ER0", ...); () if unknown."""
    return sound(word, reading).phones


def known(word: str, reading: Reading = STRICT) -> bool:
    return bool(sound(word, reading).phones)


def letters_only(word: str) -> bool:
    """CMU knows ``word`` only as letters read one by one ("ibm", "b")."""
    return not pronunciations(word) and bool(pronunciations(word, True))


def extra_only(word: str) -> bool:
    """CMU lacks ``word`` but our extra table has it ("o'er"): heard only when lenient."""
    return not pronunciations(word, True, extra=False) and bool(pronunciations(word, True))


def syllable_counts(word: str, reading: Reading = STRICT) -> frozenset[int]:
    """Syllable counts of ``word``, one per pronunciation heard; empty if unknown."""
    return sound(word, reading).syllables


def stress_patterns(word: str, reading: Reading = STRICT) -> frozenset[str]:
    """Stress patterns of ``word`` as strings of 0/1 (secondary stress -> 1)."""
    return sound(word, reading).stresses


def metres(word: str, reading: Reading = STRICT) -> frozenset[str]:
    """Metrical patterns of ``word``: 0 weak beat, 1 strong beat, 2 either."""
    return sound(word, reading).metres


def rhyme_keys(word: str, reading: Reading = STRICT) -> frozenset[str]:
    """The rhyming parts of ``word``'s pronunciations ("day" -> {"EY1"})."""
    return sound(word, reading).rhymes


def first_phones(word: str, reading: Reading = STRICT) -> frozenset[str]:
    """The first phoneme of each pronunciation ("sun" -> {"S"})."""
    return sound(word, reading).firsts


def bare_phones(word: str, reading: Reading = STRICT) -> frozenset[tuple[str, ...]]:
    """Pronunciations as phoneme tuples without stress digits (not cached: only
    sounds-like needs them, once per word, and its result set is cached)."""
    return frozenset(tuple(re.sub(r"\d", "", p).split()) for p in phones(word, reading))


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
    """All CMU words with ``key`` as the rhyming part of some pronunciation."""
    pronouncing.init_cmu()
    return tuple(pronouncing.rhyme_lookup.get(key, ()))


# ---------------------------------------------------------------- constraints


class PhoneticConstraint(WordConstraint):
    """Shared handling of readings and of words outside CMU: refused, with a message
    that says why."""

    estimate = False
    reading: Reading = STRICT

    @abstractmethod
    def sound_ok(self, word: str) -> bool:
        """The rule, for a word CMU knows."""

    @abstractmethod
    def core_spec(self) -> str:
        """The spec without the reading's options."""

    def spec(self) -> str:
        return self.core_spec() + self.reading.options()

    def heard(self, word: str) -> Sound:
        return sound(word, self.reading)

    def word_ok(self, word: str) -> bool:
        return bool(self.heard(word).phones) and self.sound_ok(word)

    def unknown_reason(self, word: str) -> str:
        if letters_only(word):
            return (f"{word!r} is only read letter by letter in CMU (an acronym or a letter), "
                    "so it is not a word here (+letters counts it)")
        if extra_only(word):
            return f"{word!r} is not in the CMU dictionary (+lenient hears our extra entry for it)"
        return f"{word!r} is not in the CMU dictionary, so its sound is unknown"

    def why_not(self, word: str) -> str:
        if not self.heard(word).phones:
            return self.unknown_reason(word)
        return f"{word!r} breaks {self.describe()}"

    def reading_note(self) -> str:
        parts = (["any pronunciation"] if self.reading.lenient else []) + \
            (["letter names count"] if self.reading.letters else [])
        return f" ({', '.join(parts)})" if parts else ""


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
    """Each word has N syllables (or <=N, >=N, <N, >N) by its primary pronunciation
    (``+lenient``: in some pronunciation)."""

    def __init__(self, op: str, n: int, estimate: bool = False, reading: Reading = STRICT):
        if op not in _OPS:
            raise SpecError(f"syllables: unknown comparison {shown(op)}")
        if n < 0:
            raise SpecError(f"syllables: count must not be negative (got {n})")
        self.op, self.n, self.estimate, self.reading = op, n, estimate, reading

    def counts(self, word: str) -> tuple[frozenset[int], bool]:
        """(possible counts, estimated?)."""
        c = self.heard(word).syllables
        if c or not self.estimate or letters_only(word):  # a letter is not a word to estimate
            return c, False
        return frozenset({estimate_syllables(word)}), True

    def sound_ok(self, word: str) -> bool:
        cmp = _OPS[self.op]
        return any(cmp(c, self.n) for c in self.heard(word).syllables)

    def word_ok(self, word: str) -> bool:
        cmp = _OPS[self.op]
        return any(cmp(c, self.n) for c in self.counts(word)[0])

    def core_spec(self) -> str:
        op = "" if self.op == "=" else self.op
        return f"syllables:{op}{self.n}" + (ESTIMATE if self.estimate else "")

    def describe(self) -> str:
        what = {"=": "", "<=": "at most ", ">=": "at least ", "<": "fewer than ", ">": "more than "}
        s = "" if self.n == 1 else "s"
        extra = " (estimated outside CMU)" if self.estimate else ""
        return f"words of {what[self.op]}{self.n} syllable{s}{extra}{self.reading_note()}"

    def why_not(self, word: str) -> str:
        counts, estimated = self.counts(word)
        if not counts:
            return self.unknown_reason(word)
        found = " or ".join(str(c) for c in sorted(counts))
        want = self.core_spec().split(":", 1)[1].replace(ESTIMATE, "")
        return f"{word!r} has {found} syllable(s), needs {want}" + (" (estimated)" if estimated else "")


class Rhymes(PhoneticConstraint):
    """Each word rhymes with WORD: the same sounds from the last stressed vowel on, by
    primary pronunciations (``+lenient``: in some pronunciation of each).  WORD itself
    does not count as its own rhyme."""

    def __init__(self, word: str, reading: Reading = STRICT):
        self.word = normalize(word)
        self.reading = reading
        self.keys = rhyme_keys(self.word, reading)
        if not self.keys:
            why = "it is only read as letters (+letters counts it)" if letters_only(self.word) \
                else "it is not in the CMU dictionary"
            raise SpecError(f"rhymes: no rhymes for {shown(word)}: {why}")
        if not any(w != self.word for k in self.keys for w in rhymes_of(k)):
            raise SpecError(f"rhymes: no rhymes for {shown(word)} in the CMU dictionary")

    def sound_ok(self, word: str) -> bool:
        return normalize(word) != self.word and bool(self.heard(word).rhymes & self.keys)

    def core_spec(self) -> str:
        return f"rhymes:{self.word}"

    def describe(self) -> str:
        return f"rhymes with {self.word!r}{self.reading_note()}"


def _stress_arg(pattern: str) -> str:
    p = pattern.strip()
    if not p or set(p) - set("012"):
        raise SpecError(f"stress: pattern must be digits 0, 1 (2 counts as 1), e.g. stress:01; got {shown(pattern)}")
    return p.replace("2", "1")


class Stress(PhoneticConstraint):
    """Each word has this stress pattern (0 unstressed, 1 stressed) by its primary
    pronunciation (``+lenient``: in some pronunciation)."""

    def __init__(self, pattern: str, reading: Reading = STRICT):
        self.pattern = _stress_arg(pattern)
        self.reading = reading

    def sound_ok(self, word: str) -> bool:
        return self.pattern in self.heard(word).stresses

    def core_spec(self) -> str:
        return f"stress:{self.pattern}"

    def describe(self) -> str:
        return f"stress pattern {self.pattern}{self.reading_note()}"


class MetreOf(PhoneticConstraint):
    """Each word shares a stress pattern with WORD ("metre-of:again" = 01)."""

    def __init__(self, word: str, reading: Reading = STRICT):
        self.word = normalize(word)
        self.reading = reading
        self.patterns = stress_patterns(self.word, reading)
        if not self.patterns:
            raise SpecError(f"metre-of: {shown(word)} is not in the CMU dictionary, so its metre is unknown")

    def sound_ok(self, word: str) -> bool:
        return bool(self.heard(word).stresses & self.patterns)

    def core_spec(self) -> str:
        return f"metre-of:{self.word}"

    def describe(self) -> str:
        return f"same stress as {self.word!r} ({' or '.join(sorted(self.patterns))}){self.reading_note()}"


class SoundsLike(PhoneticConstraint):
    """Each word sounds like WORD: a pronunciation is within N phoneme edits (insert,
    delete, substitute; stress ignored) of one of WORD's.  N defaults to 1, so homophones
    ("their" ~ "there") and near-rhymes of one sound ("cat" ~ "bat", "cap", "at") pass.
    WORD itself passes."""

    def __init__(self, word: str, distance: int = 1, reading: Reading = STRICT):
        self.word = normalize(word)
        self.distance = distance
        self.reading = reading
        self.targets = bare_phones(self.word, reading)
        if not self.targets:
            raise SpecError(f"sounds-like: {shown(word)} is not in the CMU dictionary, so its sound is unknown")
        if not 0 <= distance <= 3:
            raise SpecError(f"sounds-like: distance must be 0 to 3 (got {distance})")

    def sound_ok(self, word: str) -> bool:
        return any(
            edit_distance(a, b, self.distance) <= self.distance
            for a in bare_phones(word, self.reading) for b in self.targets
        )

    def core_spec(self) -> str:
        return f"sounds-like:{self.word}" + (f",{self.distance}" if self.distance != 1 else "")

    def describe(self) -> str:
        within = f" (within {self.distance} sounds)" if self.distance != 1 else ""
        return f"sounds like {self.word!r}{within}{self.reading_note()}"


class Alliterate(PhoneticConstraint):
    """Each word starts with one of these phonemes (ARPAbet, stress ignored)."""

    def __init__(self, sounds: frozenset[str], reading: Reading = STRICT):
        bad = sorted(s for s in sounds if s not in PHONEMES)
        if not sounds or bad:
            raise SpecError(f"alliterate: {bad[0] if bad else ''!r} is not an ARPAbet phoneme")
        self.sounds = frozenset(sounds)
        self.reading = reading

    def sound_ok(self, word: str) -> bool:
        return bool(self.heard(word).firsts & self.sounds)

    def core_spec(self) -> str:
        return "alliterate:" + ",".join(sorted(self.sounds))

    def describe(self) -> str:
        return "starts with the sound " + " or ".join(sorted(self.sounds)) + self.reading_note()


def _alliterate_arg(arg: str, reading: Reading) -> frozenset[str]:
    """'S' or 's' (a phoneme), 'S,SH' (several), or a word: 'sun' -> its first sound.
    A phoneme name wins over a word of the same spelling ("b" is the sound B)."""
    out: set[str] = set()
    within(limits.ARG_ITEMS, arg.count(",") + 1)  # each item is a dictionary look-up
    for item in (x.strip() for x in arg.split(",")):
        if item.upper() in PHONEMES:
            out.add(item.upper())
        elif WORD_RE.fullmatch(item) and first_phones(item, reading):
            out |= first_phones(item, reading)
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


def split_options(name: str, arg: str | None, allowed=READING_OPTIONS) -> tuple[str, set[str]]:
    """'1+estimate+lenient' -> ('1', {'estimate', 'lenient'}); an option outside
    ``allowed`` is refused by name."""
    core, *opts = require_arg(name, arg).split("+")
    found = set()
    for o in (x.strip().lower() for x in opts):
        if o not in allowed:
            extra = " (+estimate only applies to syllables: stress and sound cannot be guessed)" \
                if o == "estimate" else ""
            raise SpecError(f"'{name}': unknown option +{o}; options are "
                            f"{', '.join('+' + a for a in allowed)}{extra}")
        found.add(o)
    if not core.strip():
        raise SpecError(f"'{name}' needs an argument, e.g. {name}:... before its +options")
    return core.strip(), found


def _reading(found: set[str]) -> Reading:
    return Reading(lenient="lenient" in found, letters="letters" in found)


_OPTIONS_NOTE = " +lenient hears any pronunciation, +letters counts letter-by-letter readings (MIT)."


@register("syllables",
          description="Every word has N syllables (also <=N, >=N, <N, >N) by its primary "
                      "pronunciation; +estimate judges words outside CMU by spelling." + _OPTIONS_NOTE,
          example="syllables:1", level="word")
def _syllables(arg):
    a, found = split_options("syllables", arg, READING_OPTIONS + ("estimate",))
    op, n = parse_comparison("syllables", a)
    return Syllables(op, n, "estimate" in found, _reading(found))


@register("rhymes", description="Every word rhymes with WORD (perfect rhyme: the same sounds from "
                                "the last stressed vowel, primary pronunciations)." + _OPTIONS_NOTE,
          example="rhymes:day", level="word")
def _rhymes(arg):
    a, found = split_options("rhymes", arg)
    return Rhymes(_word_arg("rhymes", a), _reading(found))


@register("stress", description="Every word has this stress pattern (0 weak, 1 strong)." + _OPTIONS_NOTE,
          example="stress:10", level="word")
def _stress(arg):
    a, found = split_options("stress", arg)
    return Stress(a, _reading(found))


@register("metre-of", description="Every word has the same stress pattern as WORD." + _OPTIONS_NOTE,
          example="metre-of:river", level="word")
def _metre_of(arg):
    a, found = split_options("metre-of", arg)
    return MetreOf(_word_arg("metre-of", a), _reading(found))


@register("sounds-like",
          description="Every word is within one sound (phoneme edit) of WORD; WORD,N for N edits." + _OPTIONS_NOTE,
          example="sounds-like:cat", level="word")
def _sounds_like(arg):
    a, found = split_options("sounds-like", arg)
    word, _, n = a.partition(",")
    try:
        distance = int(n) if n.strip() else 1
    except ValueError:
        raise SpecError(f"sounds-like: distance {shown(n.strip())} is not a whole number") from None
    return SoundsLike(_word_arg("sounds-like", word), distance, _reading(found))


@register("alliterate",
          description="Every word starts with this sound: an ARPAbet phoneme (S, SH) or a word's "
                      "first sound (alliterate:sun)." + _OPTIONS_NOTE,
          example="alliterate:S", level="word")
def _alliterate(arg):
    a, found = split_options("alliterate", arg)
    reading = _reading(found)
    return Alliterate(_alliterate_arg(a, reading), reading)


__all__ = [
    "PHONEMES", "Reading", "STRICT", "READING_OPTIONS", "Sound", "sound", "phones", "pronunciations",
    "known", "letters_only", "extra_only", "syllable_counts", "estimate_syllables", "stress_patterns", "metres",
    "rhyme_keys", "rhyme_part", "bare_phones", "first_phones", "rhymes_of",
    "PhoneticConstraint", "Syllables", "Rhymes", "Stress", "MetreOf", "SoundsLike", "Alliterate",
    "parse_comparison", "split_options",
]
