"""The word list and the prefix trie behind word-level constraints.

The engine enforces a word-level rule through the set of words that obey it: a
token may extend the word in progress only while the result is still a prefix of
some allowed word (design.md, "Two levels of constraint").  This module gives:

- ``Lexicon`` / ``default_lexicon()``: the CMU dictionary's words, lower-cased and
  restricted to letters with inner apostrophes, plus a few common words it lacks.
- the writer's lexicon (``writer_lexicon``, ``lexicon_for``): what the decoder chooses
  from.  CMU lists company names, surnames and fragments ("chronar", "sarff"), acronyms
  read as letters ("mit") and single letters: a writer means none of them.  By default
  the masks draw only on common English words, wordfreq zipf >= ``DEFAULT_FLOOR`` (the
  floor measured in bench/results/lexicon-floor.md), without letter-by-letter words.
  ``common:Z`` sets the floor (``common:0``: rare words too, for word games) and is a word
  rule of its own; ``+letters`` lets acronyms and single letters back in.  Without a
  ``common:`` rule the floor shapes only the words the masks offer, never ``check``: a
  writer's own rare word breaks no rule that does not mention commonness.
- ``allowed_words(constraint)``: the constraint's lexicon filtered by it, cached per spec.
- ``PrefixTrie``: a dict-of-dicts trie for callers that walk prefixes letter by letter.
- the lexical constraints ``dictionary``, ``word-bank``, ``ban-words`` and ``common``.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache
from typing import Callable, Hashable, Iterable, Iterator

from constraints.base import (
    And,
    Constraint,
    ImpossibleConstraint,
    Not,
    Or,
    SpecError,
    WordConstraint,
    no_arg,
    register,
    require_arg,
    split_list,
    shown,
)
from constraints.spelled import is_letter, spelled_out
from constraints.stored import stored_words
from constraints.units import WORD_RE

# Common words the CMU dictionary lacks, with pronunciations so phonetic rules can
# judge them too (phonetics.py reads this table).  Kept short on purpose.
EXTRA_PRONUNCIATIONS: dict[str, tuple[str, ...]] = {
    "o'er": ("OW1 R",),
    "e'er": ("EH1 R",),
    "emoji": ("IH0 M OW1 JH IY0",),
    "covid": ("K OW1 V IH0 D",),
}

# English function words: articles, pronouns, prepositions, conjunctions, auxiliaries
# and a few particles.  ``word-bank:...+function`` adds them so a bank of content words
# can still make sentences.
FUNCTION_WORDS: frozenset[str] = frozenset(
    """
    a an the
    i me my mine myself you your yours yourself yourselves he him his himself she her
    hers herself it its itself we us our ours ourselves they them their theirs themselves
    this that these those who whom whose which what whoever whatever
    one ones some any no none all both each every either neither other another such
    about above across after against along among around as at before behind below
    beneath beside between beyond by down during for from in inside into near of off on
    onto out outside over past since through throughout till to toward towards under
    until up upon with within without
    and but or nor so yet if because although though while whereas unless whether than
    when where why how then there here
    be am is are was were been being have has had having do does did doing done
    will would shall should can could may might must ought
    not too very just also only even still
    don't doesn't didn't isn't aren't wasn't weren't can't couldn't won't wouldn't
    shouldn't i'm you're he's she's it's we're they're i've you've we've they've
    i'll you'll he'll she'll we'll they'll i'd you'd he'd she'd we'd they'd let's
    """.split()
)


def normalize(word: str) -> str:
    """Lexicon form of a word: lower case, typographic apostrophe made plain."""
    return word.lower().replace("’", "'")


@lru_cache(maxsize=1)
def _cmu_words() -> tuple[str, ...]:
    import pronouncing

    from constraints.cmu import init_cmu

    init_cmu()
    words = {w for w in pronouncing.lookup if WORD_RE.fullmatch(w)}
    words.update(EXTRA_PRONUNCIATIONS)
    return tuple(sorted(words))


class Lexicon:
    """A sorted, lower-case word list with set membership and prefix queries.  ``key``
    names it for the per-lexicon tables built from it (forms' word tables)."""

    def __init__(self, words: Iterable[str], key: Hashable = "cmu"):
        self.key = key
        self.words: tuple[str, ...] = tuple(sorted({normalize(w) for w in words}))
        self._set = frozenset(self.words)
        self._filtered: dict[str, frozenset[str]] = {}

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and normalize(word) in self._set

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def is_prefix(self, s: str) -> bool:
        """Whether some word starts with ``s`` (a whole word counts as its own prefix)."""
        s = normalize(s)
        i = bisect.bisect_left(self.words, s)
        return i < len(self.words) and self.words[i].startswith(s)

    def words_with_prefix(self, prefix: str) -> list[str]:
        p = normalize(prefix)
        lo = bisect.bisect_left(self.words, p)
        # Every string starting with p sorts below p + the largest code point.
        hi = bisect.bisect_left(self.words, p + "\U0010ffff", lo)
        return list(self.words[lo:hi])

    def filter(self, predicate: Callable[[str], bool]) -> frozenset[str]:
        """The words for which ``predicate`` holds (uncached: see ``allowed``)."""
        return frozenset(w for w in self.words if predicate(w))

    def with_words(self, words: Iterable[str]) -> "Lexicon":
        """This lexicon and ``words`` (the writer's own, such as a layout's literal
        "P.S."), or this one when it holds them all already."""
        extra = sorted({normalize(w) for w in words} - self._set)
        if not extra:
            return self
        return _extended(self, tuple(extra))

    def allowed(self, constraint: Constraint) -> frozenset[str]:
        """The words that obey ``constraint``, cached by its spec.

        Words are stored lower-case; for a rule about case (title-case) a word is
        allowed when its Capitalized form passes, since the model may write it so."""
        key = constraint.spec()
        hit = self._filtered.get(key)
        if hit is None:
            ok = constraint.word_ok
            if is_case_sensitive(constraint):
                hit = self.filter(lambda w: ok(w) or ok(w.capitalize()))
            else:
                hit = self.filter(ok)
            self._filtered[key] = hit
        return hit


@lru_cache(maxsize=8)
def _extended(lexicon: Lexicon, extra: tuple[str, ...]) -> Lexicon:
    return Lexicon(lexicon.words + extra, key=(lexicon.key, "with", extra))


def is_case_sensitive(c: Constraint) -> bool:
    """Whether any part of ``c`` judges letter case (marked ``case_sensitive = True``)."""
    if isinstance(c, (And, Or)):
        return any(is_case_sensitive(p) for p in c.parts)
    if isinstance(c, Not):
        return is_case_sensitive(c.part)
    inner = getattr(c, "inner", None)  # scope wrappers
    if isinstance(inner, Constraint):
        return is_case_sensitive(inner)
    return bool(getattr(c, "case_sensitive", False))


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The CMU lexicon, built once per process (~0.5 s)."""
    return Lexicon(_cmu_words())


# ---------------------------------------------------------------- the writer's lexicon

# The zipf floor of the words the masks choose from when no common: rule says otherwise:
# the field's line for common English (the yardstick: zipf < 3 is rare), measured
# against writers' own words in bench/results/lexicon-floor.md.
DEFAULT_FLOOR = 3.0


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    from wordfreq import get_frequency_dict  # its data ships in the wheel: no download

    return get_frequency_dict("en")


@lru_cache(maxsize=1 << 18)
def zipf(word: str) -> float:
    """wordfreq's Zipf frequency of ``word`` in English (log10 per billion words; 0 when
    wordfreq never saw it), equal to ``wordfreq.zipf_frequency``: a word wordfreq keeps
    whole is looked up directly; one its tokenizer splits ("d'arc") goes through it."""
    w = normalize(word)
    f = _frequencies().get(w)
    if f is None:
        if "'" not in w:
            return 0.0
        from wordfreq import zipf_frequency

        return zipf_frequency(w, "en")
    return round(math.log10(f) + 9, 2)


# The two-letter words of English (a closed class, like a, I and O among single letters).
# CMU's other two-letter entries are fragments and names ("ai", "ot", "ab", "ty").
TWO_LETTER_WORDS = frozenset(
    "ad ah am an as at aw ax ay be by do eh ex go ha he hi hm ho id if in is it la lo ma me "
    "mm my no of oh oi on or ow ox oy pa pi re so to uh um up us we ye yo".split())


def _primary(word: str) -> str | None:
    import pronouncing

    from constraints.cmu import init_cmu

    init_cmu()
    found = pronouncing.phones_for_word(word)
    return found[0].split("#", 1)[0].strip() if found else None


@lru_cache(maxsize=1 << 16)
def not_a_word(word: str) -> str | None:
    """Why CMU's entry ``word`` is not a word a writer means, or None when it is one:
    a single letter ("b"), an acronym CMU reads letter by letter first ("mit": EH1 M AY1
    T IY1), an abbreviation (no vowel letter yet read with vowels: "dr", "mr", "st"), or a
    two-letter fragment ("ai", "ot").  Letters and acronyms are found by their
    pronunciation (constraints/spelled.py), not by a list."""
    w = normalize(word)
    if is_letter(w):
        return "a single letter"
    primary = _primary(w)
    if primary is not None and spelled_out(w, primary):
        return "an acronym read as letters"
    if primary is not None and not any(c in "aeiouy" for c in w) and \
            any(p[-1].isdigit() for p in primary.split()):
        return "an abbreviation"
    if len(w) == 2 and w not in TWO_LETTER_WORDS:
        return "a two-letter fragment"
    return None


def is_word(word: str) -> bool:
    """A word at all: wordfreq has seen it in real text (zipf > 0; CMU's entries it never
    saw are names and fragments such as "chronar") and it is not a letter, acronym,
    abbreviation or fragment.  What the next-word list may offer; the floor decides what
    the masks choose."""
    w = normalize(word)
    return zipf(w) > 0 and not_a_word(w) is None


@lru_cache(maxsize=8)
def writer_lexicon(floor: float = DEFAULT_FLOOR, letters: bool = False) -> Lexicon:
    """The CMU words a writer may be offered: zipf >= ``floor``, and no letters, acronyms,
    abbreviations or fragments (``not_a_word``) unless ``letters`` (cached per setting)."""
    if floor <= 0 and letters:
        return default_lexicon()

    def derive():
        return [w for w in default_lexicon().words if zipf(w) >= floor and (letters or not_a_word(w) is None)]

    return Lexicon(stored_words(f"writer-{floor:g}-{int(letters)}", derive), key=("writer", floor, letters))


def lexicon_settings(constraint: Constraint | None) -> tuple[float, bool]:
    """(floor, letters) of the words the masks draw on for ``constraint``: the floor of
    its top-level ``common:`` rules (the highest, since all must hold; none:
    ``DEFAULT_FLOOR``), and whether any top-level rule asks for letter-by-letter words.
    The one place the default reaches word masks and form tables alike."""
    if constraint is None:
        return DEFAULT_FLOOR, False
    leaves = constraint.leaves()
    floors = [c.floor for c in leaves if isinstance(c, Common)]
    letters = any(c.letters if isinstance(c, Common) else getattr(getattr(c, "reading", None), "letters", False)
                  for c in leaves)
    return (max(floors) if floors else DEFAULT_FLOOR), letters


def lexicon_for(constraint: Constraint | None) -> Lexicon:
    """The writer's lexicon under ``constraint`` (see ``lexicon_settings``), or the word
    list a top-level rule brings (``word_list()``: language:fr's French words)."""
    if constraint is not None:
        lists = {id(c): c for c in constraint.leaves() if hasattr(c, "word_list")}
        own = [(c, c.word_list()) for c in lists.values()]
        own = [(c, words) for c, words in own if words is not None]
        if len({c.spec() for c in lists.values()}) > 1:
            raise ImpossibleConstraint(
                " and ".join(f"'{c.spec()}'" for c in lists.values()) + ": an answer is in one language")
        if own:
            c, words = own[0]
            return _own_lexicon(c.spec(), words)
    return writer_lexicon(*lexicon_settings(constraint))


@lru_cache(maxsize=4)
def _own_lexicon(key: str, words: tuple[str, ...]) -> Lexicon:
    return Lexicon(words, key=("own", key))


def allowed_words(constraint: Constraint, lexicon: Lexicon | None = None) -> frozenset[str]:
    """The words of ``lexicon`` (default: the writer's lexicon for ``constraint``) obeying
    ``constraint``; cached per spec."""
    return (lexicon or lexicon_for(constraint)).allowed(constraint)


# ---------------------------------------------------------------- prefix trie

_END = ""  # key marking "a word ends here"; never a letter, so it cannot clash


class PrefixTrie:
    """A dict-of-dicts trie: walk letter by letter, or ask about whole prefixes."""

    def __init__(self, words: Iterable[str] = ()):
        self.root: dict = {}
        self._n = 0
        for w in words:
            self.insert(w)

    def insert(self, word: str) -> None:
        node = self.root
        for ch in word:
            node = node.setdefault(ch, {})
        if _END not in node:
            node[_END] = True
            self._n += 1

    def __len__(self) -> int:
        return self._n

    def node(self, prefix: str) -> dict | None:
        """The node reached by ``prefix``, or None if no word starts with it."""
        node = self.root
        for ch in prefix:
            node = node.get(ch)
            if node is None:
                return None
        return node

    def is_prefix(self, prefix: str) -> bool:
        node = self.node(prefix)
        return node is not None and bool(node)

    def contains(self, word: str) -> bool:
        node = self.node(word)
        return node is not None and _END in node

    __contains__ = contains

    def next_letters(self, prefix: str) -> set[str]:
        node = self.node(prefix)
        return {k for k in node if k != _END} if node else set()

    def words_with_prefix(self, prefix: str) -> list[str]:
        node = self.node(prefix)
        if node is None:
            return []
        out: list[str] = []
        stack = [(prefix, node)]
        while stack:
            p, n = stack.pop()
            if _END in n:
                out.append(p)
            stack.extend((p + k, child) for k, child in n.items() if k != _END)
        return sorted(out)


# ---------------------------------------------------------------- constraints


def _word_list(name: str, arg: str | None) -> tuple[str, ...]:
    words = split_list(name, arg)
    bad = [w for w in words if not WORD_RE.fullmatch(w)]
    if bad:
        raise SpecError(f"'{name}': {shown(bad[0])} is not a word (letters and inner apostrophes only)")
    return tuple(dict.fromkeys(normalize(w) for w in words))


class InDictionary(WordConstraint):
    """Every word is in the lexicon (the CMU dictionary)."""

    def word_ok(self, word: str) -> bool:
        return word in default_lexicon()

    def spec(self) -> str:
        return "dictionary"

    def describe(self) -> str:
        return "dictionary words only"

    def why_not(self, word: str) -> str:
        return f"{word!r} is not in the dictionary"


class WordBank(WordConstraint):
    """Only these words (case-insensitive), optionally plus the function words."""

    def __init__(self, words: Iterable[str], function_words: bool = False):
        self.words = tuple(dict.fromkeys(normalize(w) for w in words))
        if not self.words:
            raise SpecError("word-bank: no words given")
        self.function_words = function_words
        self._allowed = frozenset(self.words) | (FUNCTION_WORDS if function_words else frozenset())

    def word_ok(self, word: str) -> bool:
        return normalize(word) in self._allowed

    def spec(self) -> str:
        return "word-bank:" + ",".join(self.words) + ("+function" if self.function_words else "")

    def describe(self) -> str:
        extra = " (plus function words)" if self.function_words else ""
        return f"only the words {', '.join(self.words)}{extra}"

    def why_not(self, word: str) -> str:
        return f"{word!r} is not in the word bank"


class BanWords(WordConstraint):
    """These whole words never appear (case-insensitive); "cat" bans "Cat", not "catch"."""

    def __init__(self, words: Iterable[str]):
        self.words = tuple(dict.fromkeys(normalize(w) for w in words))
        if not self.words:
            raise SpecError("ban-words: no words given")
        self._banned = frozenset(self.words)

    def word_ok(self, word: str) -> bool:
        return normalize(word) not in self._banned

    def spec(self) -> str:
        return "ban-words:" + ",".join(self.words)

    def describe(self) -> str:
        return "never the words " + ", ".join(self.words)

    def why_not(self, word: str) -> str:
        return f"{word!r} is a banned word"


class Common(WordConstraint):
    """Every word is common English: wordfreq zipf >= ``floor``, and not a single letter,
    an acronym read as letters, an abbreviation or a fragment (unless ``letters``).  ``common:0`` admits every word
    (rare ones for word games); as a top-level rule it also sets the masks' floor."""

    def __init__(self, floor: float, letters: bool = False):
        if not 0 <= floor <= 8:
            raise SpecError(f"common: the floor is a zipf frequency from 0 to 8 (got {floor:g}); "
                            f"{DEFAULT_FLOOR:g} is once per million words")
        self.floor, self.letters = float(floor), letters

    def word_ok(self, word: str) -> bool:
        return (self.letters or not_a_word(word) is None) and zipf(word) >= self.floor

    def spec(self) -> str:
        return f"common:{self.floor:g}" + ("+letters" if self.letters else "")

    def describe(self) -> str:
        what = "any word, rare ones too" if self.floor <= 0 else \
            f"common English words (wordfreq zipf >= {self.floor:g})"
        return what + (", letters and acronyms too" if self.letters else "")

    def why_not(self, word: str) -> str:
        reason = None if self.letters else not_a_word(word)
        if reason:
            return f"{word!r} is {reason}, not a word (+letters allows it)"
        return f"{word!r} is rare (wordfreq zipf {zipf(word):g} < {self.floor:g})"


@register("common",
          description=f"Every word is common English: wordfreq zipf >= Z (once per 10^(Z-9) words). "
                      f"Without it the decoder still chooses words of zipf >= {DEFAULT_FLOOR:g} under "
                      f"word rules and forms (but check does not judge them); common:0 lets rare "
                      f"words in (word games). Single letters, acronyms read as letters (MIT), "
                      f"abbreviations (Dr) and fragments are never words; +letters allows them.",
          example=f"common:{DEFAULT_FLOOR:g}", level="word")
def _common(arg):
    text = require_arg("common", arg)
    letters = text.endswith("+letters")
    if letters:
        text = text[: -len("+letters")].strip()
    try:
        floor = float(text)
    except ValueError:
        raise SpecError(f"common: {text!r} is not a number (e.g. common:{DEFAULT_FLOOR:g}, common:0)") from None
    return Common(floor, letters)


@register("dictionary", description="Every word is in the dictionary (CMU).",
          example="dictionary", level="word", takes_arg=False)
def _dictionary(arg):
    no_arg("dictionary", arg)
    return InDictionary()


@register("word-bank",
          description="Only these words; add +function to allow articles, pronouns, "
                      "prepositions, conjunctions and auxiliaries too.",
          example="word-bank:sea,salt,wind+function", level="word")
def _word_bank(arg):
    text = require_arg("word-bank", arg)
    function = text.endswith("+function")
    if function:
        text = text[: -len("+function")]
    return WordBank(_word_list("word-bank", text), function_words=function)


@register("ban-words", description="These whole words never appear (case-insensitive).",
          example="ban-words:very,really", level="word")
def _ban_words(arg):
    return BanWords(_word_list("ban-words", arg))


__all__ = [
    "FUNCTION_WORDS", "EXTRA_PRONUNCIATIONS", "Lexicon", "PrefixTrie", "default_lexicon",
    "allowed_words", "is_case_sensitive", "normalize", "InDictionary", "WordBank", "BanWords",
    "Common", "DEFAULT_FLOOR", "TWO_LETTER_WORDS", "zipf", "not_a_word", "is_word", "writer_lexicon",
    "lexicon_settings", "lexicon_for",
]
