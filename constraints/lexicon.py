"""The word list and the prefix trie behind word-level constraints.

The engine enforces a word-level rule through the set of words that obey it: a
token may extend the word in progress only while the result is still a prefix of
some allowed word (design.md, "Two levels of constraint").  This module gives:

- ``Lexicon`` / ``default_lexicon()``: the CMU dictionary's words, lower-cased and
  restricted to letters with inner apostrophes, plus a few common words it lacks.
- ``allowed_words(constraint)``: the lexicon filtered by a constraint, cached per spec.
- ``PrefixTrie``: a dict-of-dicts trie for callers that walk prefixes letter by letter.
- the lexical constraints ``dictionary``, ``word-bank`` and ``ban-words``.
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import Callable, Iterable, Iterator

from constraints.base import (
    And,
    Constraint,
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

    pronouncing.init_cmu()
    words = {w for w in pronouncing.lookup if WORD_RE.fullmatch(w)}
    words.update(EXTRA_PRONUNCIATIONS)
    return tuple(sorted(words))


class Lexicon:
    """A sorted, lower-case word list with set membership and prefix queries."""

    def __init__(self, words: Iterable[str]):
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


def allowed_words(constraint: Constraint, lexicon: Lexicon | None = None) -> frozenset[str]:
    """The words of ``lexicon`` (default: CMU) obeying ``constraint``; cached per spec."""
    return (lexicon or default_lexicon()).allowed(constraint)


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
]
