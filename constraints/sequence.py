"""Whole-text constraints with state: must-use words, pangrams, rhopalism, E-Prime.

- ``include:w1,w2[@N]``: each word appears, as a whole word, in the new text (within the
  first N new tokens: the decoder's budget; ``check`` verifies presence).
  ``include-forms:`` also accepts inflected forms (plurals, -ed, -ing, ...).
- ``pangram`` / ``pangram:LETTERS``: every letter (of the alphabet, or those given) is used.
- ``rhopalism[:letters|syllables][+restart]``: each word one letter (syllable) longer than
  the one before; with ``+restart`` the chain starts over after a sentence end.
- ``e-prime``: no form of "to be", contractions included (a word-level ban list).
- ``reverse-lipogram:L``: every word uses L (``every-word-has`` under the Gadsby Space's name).

``PRESETS`` gives the studio's presets for these rules as spec strings.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from constraints import transforms  # noqa: F401  (registers the remaining text transforms)
from constraints.base import (
    SpecError,
    TextConstraint,
    Violation,
    WordConstraint,
    no_arg,
    register,
    split_list,
    shown,
)
from constraints.units import WORD_RE, iter_words
from constraints.letters import RequiredChars
from constraints.lexicon import default_lexicon, normalize
from constraints.words import _every_word_has, _letter_set, letters_of

PRESETS: dict[str, str] = {
    "Pangram": "pangram",
    "E-Prime": "e-prime",
    "Rhopalism": "rhopalism:letters+restart",
    "Theme": "theme:ocean",
}


# ---------------------------------------------------------------- must-use words

# Irregular forms a writer would expect include-forms: to accept (verbs and plurals).
IRREGULAR: dict[str, tuple[str, ...]] = {
    "be": ("am", "is", "are", "was", "were", "been", "being"),
    "have": ("has", "had", "having"), "do": ("does", "did", "done", "doing"),
    "go": ("goes", "went", "gone", "going"), "see": ("saw", "seen", "sees", "seeing"),
    "run": ("ran", "runs", "running"), "come": ("came", "comes", "coming"),
    "take": ("took", "taken", "takes", "taking"), "give": ("gave", "given", "gives", "giving"),
    "write": ("wrote", "written", "writes", "writing"), "sing": ("sang", "sung", "sings", "singing"),
    "swim": ("swam", "swum", "swims", "swimming"), "fly": ("flew", "flown", "flies", "flying"),
    "find": ("found", "finds", "finding"), "think": ("thought", "thinks", "thinking"),
    "bring": ("brought",), "buy": ("bought",), "catch": ("caught",), "teach": ("taught",),
    "fall": ("fell", "fallen"), "sleep": ("slept",), "keep": ("kept",), "feel": ("felt",),
    "leave": ("left",), "make": ("made",), "say": ("said",), "tell": ("told",), "sell": ("sold",),
    "stand": ("stood",), "understand": ("understood",), "speak": ("spoke", "spoken"),
    "break": ("broke", "broken"), "drive": ("drove", "driven"), "ride": ("rode", "ridden"),
    "rise": ("rose", "risen"), "eat": ("ate", "eaten"), "drink": ("drank", "drunk"),
    "begin": ("began", "begun"), "know": ("knew", "known"), "grow": ("grew", "grown"),
    "throw": ("threw", "thrown"), "blow": ("blew", "blown"), "draw": ("drew", "drawn"),
    "wear": ("wore", "worn"), "tear": ("tore", "torn"), "lie": ("lay", "lain", "lying"),
    "die": ("dying",), "get": ("got", "gotten"), "forget": ("forgot", "forgotten"),
    "hold": ("held",), "meet": ("met",), "lead": ("led",), "win": ("won",), "hear": ("heard",),
    "man": ("men",), "woman": ("women",), "child": ("children",), "mouse": ("mice",),
    "goose": ("geese",), "foot": ("feet",), "tooth": ("teeth",), "person": ("people",),
}

_VOWELS = "aeiou"


def _regular_forms(w: str) -> set[str]:
    """Plural / 3rd person, past, present participle, comparative, superlative."""
    forms = {w + "s", w + "es", w + "ed", w + "ing", w + "er", w + "est", w + "'s", w + "s'"}
    if w.endswith("e"):
        forms |= {w + "d", w[:-1] + "ing", w + "r", w + "st"}
    if w.endswith("y") and len(w) > 1 and w[-2] not in _VOWELS:
        stem = w[:-1]
        forms |= {stem + "ies", stem + "ied", stem + "ier", stem + "iest"}
    if w.endswith("ie"):
        forms.add(w[:-2] + "ying")
    if w.endswith("f"):
        forms.add(w[:-1] + "ves")
    if w.endswith("fe"):
        forms.add(w[:-2] + "ves")
    # Consonant-vowel-consonant: stop -> stopped, stopping, bigger.
    if len(w) >= 3 and w[-1] not in _VOWELS + "wxy" and w[-2] in _VOWELS and w[-3] not in _VOWELS:
        forms |= {w + w[-1] + "ed", w + w[-1] + "ing", w + w[-1] + "er", w + w[-1] + "est"}
    return forms


@lru_cache(maxsize=1024)
def inflections(word: str) -> frozenset[str]:
    """``word`` and its inflected forms that the lexicon knows (irregulars from a table)."""
    w = normalize(word)
    lex = default_lexicon()
    forms = {f for f in _regular_forms(w) if f in lex} | set(IRREGULAR.get(w, ()))
    return frozenset(forms | {w})


class Include(TextConstraint):
    """Each word appears as a whole word, in any order (case-insensitive).  ``within``:
    the decoder's budget in new tokens (None: the whole generation)."""

    def __init__(self, words, within: int | None = None, forms: bool = False):
        self.words = tuple(dict.fromkeys(normalize(w) for w in words))
        if not self.words:
            raise SpecError("include: no words given (e.g. include:lighthouse,orange)")
        bad = [w for w in self.words if not WORD_RE.fullmatch(w)]
        if bad:
            raise SpecError(f"include: {shown(bad[0])} is not a word (letters and inner apostrophes only)")
        if within is not None and within < 1:
            raise SpecError(f"include: the budget @N must be at least 1 token (got {within})")
        self.within, self.forms = within, forms

    def forms_of(self, word: str) -> frozenset[str]:
        """The written forms that count for ``word``."""
        return inflections(word) if self.forms else frozenset({word})

    def missing(self, text: str) -> list[str]:
        seen = {normalize(m.group()) for m in iter_words(text)}
        return [w for w in self.words if not (self.forms_of(w) & seen)]

    def spec(self) -> str:
        name = "include-forms" if self.forms else "include"
        return f"{name}:{','.join(self.words)}" + (f"@{self.within}" if self.within else "")

    def describe(self) -> str:
        what = " (or their forms)" if self.forms else ""
        where = f" within {self.within} tokens" if self.within else ""
        return f"uses the words {', '.join(self.words)}{what}{where}"

    def check(self, text: str) -> list[Violation]:
        return [Violation(len(text), len(text), self.spec(), f"never uses the word {w!r}")
                for w in self.missing(text)]


def _include_arg(name: str, arg: str | None) -> tuple[list[str], int | None]:
    text = (arg or "").strip()
    within = None
    m = re.fullmatch(r"(.*)@\s*(-?\d{1,9})\s*", text, re.S)
    if m:
        text, within = m.group(1), int(m.group(2))
        if within < 1:
            raise SpecError(f"'{name}': the budget @N must be at least 1 token (got {within})")
    elif "@" in text:
        raise SpecError(f"'{name}': expected WORDS@N with N a number of tokens, got {shown(arg)}")
    return split_list(name, text), within


@register("include", description="Use each of these words (any order); @N: within the first N new tokens.",
          example="include:lighthouse,orange,whisper@60", level="text")
def _include(arg):
    words, within = _include_arg("include", arg)
    return Include(words, within)


@register("include-forms",
          description="Use each of these words or an inflected form (plural, -ed, -ing, ...); @N as include.",
          example="include-forms:sail,storm@60", level="text")
def _include_forms(arg):
    words, within = _include_arg("include-forms", arg)
    return Include(words, within, forms=True)


# ---------------------------------------------------------------- pangram


class Pangram(RequiredChars):
    """Every letter of the alphabet (or of a given set) appears.  A RequiredChars, so the
    up-front conflict check with character rules (lipograms) applies as it is."""

    def __init__(self, letters: str | None = None):
        self.given = letters is not None
        super().__init__(letters if letters is not None else string.ascii_lowercase)

    def spec(self) -> str:
        return "pangram:" + self.chars if self.given else "pangram"

    def describe(self) -> str:
        return "uses every letter " + (", ".join(self.chars) if self.given else "a-z")


@register("pangram", description="Use every letter a-z somewhere (pangram:LETTERS for a given set).",
          example="pangram", level="text")
def _pangram(arg):
    if arg is None or not arg.strip():
        return Pangram()
    letters = "".join(ch for ch in arg.lower() if ch not in ", ")
    if not letters or not all(ch.isalpha() for ch in letters):
        raise SpecError(f"'pangram': needs letters, got {shown(arg)}")
    return Pangram(letters)


# ---------------------------------------------------------------- rhopalism

RHOPALISM_UNITS = ("letters", "syllables")
SENTENCE_END = frozenset(".!?")


def word_measures(word: str, unit: str) -> frozenset[int]:
    """The lengths a word may have: its letters, or its syllables in each CMU pronunciation
    (empty when CMU does not know it)."""
    if unit == "letters":
        return frozenset({len(letters_of(word))})
    from constraints.phonetics import syllable_counts

    return syllable_counts(word)


class Rhopalism(TextConstraint):
    """Each word is one unit longer than the one before (the first is free).  With
    ``restart``, a word after a sentence end (. ! ?) starts a new chain."""

    def __init__(self, unit: str = "letters", restart: bool = False):
        if unit not in RHOPALISM_UNITS:
            raise SpecError(f"rhopalism: unknown unit {shown(unit)}; use letters or syllables")
        self.unit, self.restart = unit, restart

    def spec(self) -> str:
        if self.unit == "letters" and not self.restart:
            return "rhopalism"
        return f"rhopalism:{self.unit}" + ("+restart" if self.restart else "")

    def describe(self) -> str:
        unit = "letter" if self.unit == "letters" else "syllable"
        again = ", starting over at each sentence" if self.restart else ""
        return f"each word one {unit} longer than the last{again}"

    def check(self, text: str) -> list[Violation]:
        out, need, prev_end, rule = [], None, 0, self.spec()
        for m in iter_words(text):
            if self.restart and any(ch in SENTENCE_END for ch in text[prev_end:m.start()]):
                need = None
            prev_end = m.end()
            have = word_measures(m.group(), self.unit)
            if not have:
                out.append(Violation(m.start(), m.end(), rule,
                                     f"{m.group()!r} is not in the CMU dictionary, so its syllables are unknown"))
                need = None
                continue
            fits = have if need is None else have & need
            if not fits:
                unit = self.unit[:-1] if have == {1} else self.unit
                out.append(Violation(m.start(), m.end(), rule,
                                     f"{m.group()!r} has {' or '.join(map(str, sorted(have)))} {unit}, "
                                     f"needs {' or '.join(map(str, sorted(need)))}"))
                fits = have  # judge the next word against this one: one slip, one violation
            need = frozenset(n + 1 for n in fits)
        return out


@register("rhopalism",
          description="Each word one letter longer than the one before (rhopalism:syllables for "
                      "syllables; +restart to start over after each sentence).",
          example="rhopalism:letters+restart", level="text")
def _rhopalism(arg):
    a = (arg or "").strip().lower()
    restart = a.endswith("restart")
    if restart:
        a = a[: -len("restart")].rstrip("+ ")
    unit = a or "letters"
    if unit not in RHOPALISM_UNITS:
        raise SpecError(f"rhopalism: expected letters or syllables (optionally +restart), got {shown(arg)}")
    return Rhopalism(unit, restart)


# ---------------------------------------------------------------- E-Prime

# "To be" in every form, with the contractions that can only mean it.  "'s" after a noun
# ("the cat's") is usually a possessive, so only pronoun and wh- contractions are banned.
TO_BE: frozenset[str] = frozenset(
    """
    be am is are was were been being
    isn't aren't wasn't weren't ain't
    i'm you're we're they're who're what're where're there're
    he's she's it's that's there's here's what's who's where's when's why's how's
    tis twas 'tis 'twas
    """.split()
)


class EPrime(WordConstraint):
    """No form of "to be" (E-Prime, as in the Gadsby Space's preset)."""

    def word_ok(self, word: str) -> bool:
        return normalize(word) not in TO_BE

    def spec(self) -> str:
        return "e-prime"

    def describe(self) -> str:
        return 'no form of "to be" (E-Prime)'

    def why_not(self, word: str) -> str:
        return f'{word!r} is a form of "to be"'


@register("e-prime", description='No form of "to be" (is, was, be, been, it\'s, I\'m, ...).',
          example="e-prime", level="word", takes_arg=False)
def _e_prime(arg):
    no_arg("e-prime", arg)
    return EPrime()


# ---------------------------------------------------------------- reverse lipogram


class _Alias(WordConstraint):
    """A registered rule under another name (its spec keeps the name the writer used)."""

    def __init__(self, name: str, inner: WordConstraint):
        self.name, self.inner = name, inner

    def word_ok(self, word: str) -> bool:
        return self.inner.word_ok(word)

    def spec(self) -> str:
        return f"{self.name}:{self.inner.spec().split(':', 1)[1]}"

    def describe(self) -> str:
        return self.inner.describe()


@register("reverse-lipogram", description="Every word uses this letter (the Gadsby Space's name "
                                          "for every-word-has).",
          example="reverse-lipogram:e", level="word")
def _reverse_lipogram(arg):
    _letter_set("reverse-lipogram", arg)  # errors name the rule the writer used
    return _Alias("reverse-lipogram", _every_word_has(arg))


__all__ = ["Include", "Pangram", "Rhopalism", "EPrime", "TO_BE", "PRESETS", "inflections",
           "word_measures"]
