"""Letter rules applied to whole words, and the scope wrappers ``next:`` / ``line-end:``.

All rules compare case-insensitively except ``title-case``.  Apostrophes are not
letters: "don't" has length 4, and anagram / palindrome / isogram ignore them.
"""

from __future__ import annotations

import re
from collections import Counter

from constraints.base import (
    And,
    Constraint,
    Or,
    SpecError,
    Violation,
    WordConstraint,
    no_arg,
    register,
    require_arg,
    shown,
)
from constraints.units import WORD_RE, iter_words
from constraints.lexicon import normalize


def letters_of(word: str) -> str:
    """Lower-case letters only: "Don't" -> "dont"."""
    return re.sub(r"['’]", "", word.lower())


def edit_distance(a, b, limit: int) -> int:
    """Levenshtein distance between two sequences, capped at ``limit + 1`` (early exit)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


class _Simple(WordConstraint):
    """A word rule with a spec, a readable description and a predicate."""

    def __init__(self, spec: str, text: str, ok):
        self._spec, self._text, self._ok = spec, text, ok

    def word_ok(self, word: str) -> bool:
        return self._ok(word)

    def spec(self) -> str:
        return self._spec

    def describe(self) -> str:
        return self._text


def _fragment(name: str, arg: str | None) -> str:
    s = normalize(require_arg(name, arg))
    if not any(c.isalpha() for c in s) or not all(c.isalpha() or c == "'" for c in s):
        raise SpecError(f"'{name}': {shown(s)} must be letters (apostrophes allowed)")
    return s


@register("starts-with", description="Every word starts with these letters.",
          example="starts-with:s", level="word")
def _starts_with(arg):
    s = _fragment("starts-with", arg)
    return _Simple(f"starts-with:{s}", f"words starting with {s!r}", lambda w: normalize(w).startswith(s))


@register("ends-with", description="Every word ends with these letters.",
          example="ends-with:ing", level="word")
def _ends_with(arg):
    s = _fragment("ends-with", arg)
    return _Simple(f"ends-with:{s}", f"words ending with {s!r}", lambda w: normalize(w).endswith(s))


@register("contains", description="Every word contains these letters, in a row.",
          example="contains:oo", level="word")
def _contains(arg):
    s = _fragment("contains", arg)
    return _Simple(f"contains:{s}", f"words containing {s!r}", lambda w: s in normalize(w))


def _letter_set(name: str, arg: str | None) -> str:
    chars = "".join(ch for ch in require_arg(name, arg).lower() if ch not in ", ")
    if not chars or not all(c.isalpha() for c in chars):
        raise SpecError(f"'{name}': needs letters, got {shown(arg)}")
    return "".join(sorted(set(chars)))


@register("every-word-has", description="Every word contains each of these letters.",
          example="every-word-has:e", level="word")
def _every_word_has(arg):
    ls = _letter_set("every-word-has", arg)
    return _Simple(f"every-word-has:{ls}", "every word has " + ", ".join(repr(c) for c in ls),
                   lambda w: all(c in w.lower() for c in ls))


class LetterAt(WordConstraint):
    """The letter at position POS is L (1-based; -1 is the last letter).
    A word too short to have that position fails."""

    def __init__(self, pos: int, letter: str):
        if pos == 0:
            raise SpecError("letter-at: positions count from 1 (or -1 from the end); 0 is not a position")
        if len(letter) != 1 or not letter.isalpha():
            raise SpecError(f"letter-at: {shown(letter)} is not a single letter")
        self.pos, self.letter = pos, letter.lower()

    def word_ok(self, word: str) -> bool:
        ls = letters_of(word)
        i = self.pos - 1 if self.pos > 0 else len(ls) + self.pos
        return 0 <= i < len(ls) and ls[i] == self.letter

    def spec(self) -> str:
        return f"letter-at:{self.pos}={self.letter}"

    def describe(self) -> str:
        where = f"letter {self.pos}" if self.pos > 0 else ("last letter" if self.pos == -1 else f"letter {-self.pos} from the end")
        return f"{where} is {self.letter!r}"


@register("letter-at", description="The letter at a position (1-based, negative from the end).",
          example="letter-at:2=a", level="word")
def _letter_at(arg):
    a = require_arg("letter-at", arg)
    m = re.fullmatch(r"\s*(-?\d{1,9})\s*=\s*(\S+)\s*", a)  # {1,9}: int() of thousands of digits fails
    if not m:
        raise SpecError(f"letter-at: expected POS=LETTER (e.g. letter-at:2=a, letter-at:-1=s), got {shown(a)}")
    return LetterAt(int(m.group(1)), m.group(2))


_LEN_OPS = {"=": int.__eq__, "<": int.__lt__, ">": int.__gt__, "<=": int.__le__, ">=": int.__ge__}


class Length(WordConstraint):
    """The word's number of letters compares with N (apostrophes not counted)."""

    def __init__(self, op: str, n: int):
        if op not in _LEN_OPS:
            raise SpecError(f"length: unknown comparison {shown(op)}")
        if n < 0:
            raise SpecError(f"length: must not be negative (got {n})")
        if (op, n) in (("<", 0), ("<", 1), ("<=", 0), ("=", 0)):
            raise SpecError(f"length:{'' if op == '=' else op}{n} allows no word at all")
        self.op, self.n = op, n

    def word_ok(self, word: str) -> bool:
        return _LEN_OPS[self.op](len(letters_of(word)), self.n)

    def spec(self) -> str:
        return f"length:{'' if self.op == '=' else self.op}{self.n}"

    def describe(self) -> str:
        what = {"=": "", "<": "fewer than ", ">": "more than ", "<=": "at most ", ">=": "at least "}
        return f"words of {what[self.op]}{self.n} letters"

    def why_not(self, word: str) -> str:
        return f"{word!r} has {len(letters_of(word))} letters, needs {self.spec().split(':', 1)[1]}"


@register("length", description="Word length in letters: N, <N, >N, <=N, >=N.",
          example="length:<=5", level="word")
def _length(arg):
    a = require_arg("length", arg)
    m = re.fullmatch(r"(<=|>=|<|>|=)?\s*(-?\d{1,9})", a)
    if not m:
        raise SpecError(f"length: expected N, <N, >N, <=N or >=N (e.g. length:<=5), got {shown(a)}")
    return Length(m.group(1) or "=", int(m.group(2)))


def _word(name: str, arg: str | None) -> str:
    w = require_arg(name, arg)
    if not WORD_RE.fullmatch(w):
        raise SpecError(f"'{name}': {shown(w)} is not a word")
    return normalize(w)


def _no_arg_rule(name: str, text: str, ok, **extra):
    @register(name, description=text[0].upper() + text[1:] + ".", example=name, level="word",
              takes_arg=False)
    def factory(arg):
        no_arg(name, arg)
        c = _Simple(name, text, ok)
        for k, v in extra.items():
            setattr(c, k, v)
        return c

    return factory


_no_arg_rule("palindrome", "every word reads the same backwards",
             lambda w: letters_of(w) == letters_of(w)[::-1])
_no_arg_rule("isogram", "no word repeats a letter",
             lambda w: len(set(letters_of(w))) == len(letters_of(w)))
_no_arg_rule("reverse-isogram", "every letter of a word appears at least twice in it",
             lambda w: all(n >= 2 for n in Counter(letters_of(w)).values()))
# The one rule about case: the lexicon tries Capitalized forms for it (lexicon.is_case_sensitive).
_no_arg_rule("title-case", "every word starts with a capital letter",
             lambda w: w[:1].isupper(), case_sensitive=True)


@register("anagram", description="Every word is an anagram of WORD (same letters, a different word).",
          example="anagram:listen", level="word")
def _anagram(arg):
    w = _word("anagram", arg)
    key = sorted(letters_of(w))
    return _Simple(f"anagram:{w}", f"anagrams of {w!r}",
                   lambda x: sorted(letters_of(x)) == key and letters_of(x) != letters_of(w))


@register("partial-anagram",
          description="Every word uses only the letters of WORD, each at most as often.",
          example="partial-anagram:wordsmith", level="word")
def _partial_anagram(arg):
    w = _word("partial-anagram", arg)
    have = Counter(letters_of(w))
    return _Simple(f"partial-anagram:{w}", f"words made from the letters of {w!r}",
                   lambda x: not (Counter(letters_of(x)) - have))


@register("edit-distance",
          description="Every word is within N letter edits of WORD (WORD,N; N defaults to 1).",
          example="edit-distance:cat,1", level="word")
def _edit_distance(arg):
    a = require_arg("edit-distance", arg)
    m = re.fullmatch(r"\s*([^,<=\s]+)\s*(?:(?:,|<=)\s*(-?\d{1,9})\s*)?", a)
    if not m:
        raise SpecError(f"edit-distance: expected WORD,N (e.g. edit-distance:cat,2), got {shown(a)}")
    w, n = _word("edit-distance", m.group(1)), int(m.group(2) or 1)
    if n < 0:
        raise SpecError(f"edit-distance: N must not be negative (got {n})")
    return _Simple(f"edit-distance:{w},{n}", f"within {n} edit(s) of {w!r}",
                   lambda x: edit_distance(normalize(x), w, n) <= n)


# ---------------------------------------------------------------- scope

SCOPES = ("every", "next", "line-end")


class Scoped(WordConstraint):
    """A word rule applied to some words only: ``scope`` is "next" (the next word
    generated: the interactive picker) or "line-end" (the last word of each line).
    ``word_ok`` is the inner rule's; the engine reads ``scope`` to know when to apply it.
    Put scopes at the top of a spec: under ! or | the scope would be lost."""

    def __init__(self, inner: Constraint, scope: str):
        if scope not in SCOPES:
            raise SpecError(f"unknown scope {shown(scope)}; scopes are {', '.join(SCOPES)}")
        if isinstance(inner, Scoped):
            raise SpecError(f"'{scope}:' cannot wrap another scope ('{inner.spec()}')")
        if inner.level == "text":
            raise SpecError(f"'{scope}:' applies to words; '{inner.spec()}' is a whole-text rule")
        self.inner, self.scope = inner, scope

    def word_ok(self, word: str) -> bool:
        return self.inner.word_ok(word)

    def why_not(self, word: str) -> str:
        if isinstance(self.inner, WordConstraint):
            return self.inner.why_not(word)
        return f"{word!r} breaks {self.inner.describe()}"

    def spec(self) -> str:
        s = self.inner.spec()
        if isinstance(self.inner, (And, Or)):
            s = f"({s})"
        return s if self.scope == "every" else f"{self.scope}:{s}"

    def describe(self) -> str:
        where = {"every": "", "next": "next word: ", "line-end": "line-final words: "}[self.scope]
        return where + self.inner.describe()

    def scoped_words(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, word) for each word of ``text`` this scope applies to."""
        words = ((m.start(), m.end(), m.group()) for m in iter_words(text))
        if self.scope == "every":
            return list(words)
        if self.scope == "next":
            return [w for w, _ in zip(words, range(1))]
        out, offset = [], 0
        for line in text.split("\n"):
            last = None
            for last in iter_words(line):
                pass
            if last is not None:
                out.append((offset + last.start(), offset + last.end(), last.group()))
            offset += len(line) + 1
        return out

    def check(self, text: str) -> list[Violation]:
        rule = self.spec()
        return [
            Violation(start, end, rule, self.why_not(word))
            for start, end, word in self.scoped_words(text)
            if not self.word_ok(word)
        ]


def scope_of(c: Constraint) -> str:
    """"next", "line-end", or "every" for an unscoped rule."""
    return getattr(c, "scope", "every") if isinstance(c, Scoped) else "every"


@register("next", description="Apply a word rule to the next word only (the interactive picker).",
          example="next:syllables:2", level="word", takes_spec=True)
def _next(inner):
    return Scoped(inner, "next")


@register("line-end", description="Apply a word rule to line-final words only.",
          example="line-end:rhymes:day", level="word", takes_spec=True)
def _line_end(inner):
    return Scoped(inner, "line-end")


__all__ = ["letters_of", "edit_distance", "LetterAt", "Length", "Scoped", "SCOPES", "scope_of"]
