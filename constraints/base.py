"""Constraint, And / Or / Not, and the registry.

A constraint is a rule about what text may be.  It lives at one of three levels
(see docs/design.md, "Two levels of constraint"):

- ``char``: a predicate on characters (and banned strings).  A token passes iff its
  text passes, so the engine turns it into one boolean mask over the vocabulary.
- ``word``: a predicate on whole words.  The engine enforces it through the lexicon
  trie, so sub-word tokens can never assemble a word that breaks it.
- ``text``: a rule over the whole text with state (must-use words, required letters).
  The engine steers toward it while there is room and forces it when the budget runs out.

Every constraint has ``check(text)``, an independent verifier that never touches the
masking code, used by tests, ``perec check`` and the benchmarks.

This package never imports torch.
"""

from __future__ import annotations

import difflib
import json
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

from constraints import limits
from constraints.limits import Cap, LimitError
from constraints.units import iter_words

LEVELS = ("char", "word", "text")

class SpecError(ValueError):
    """A constraint spec that cannot be understood (unknown name, bad argument)."""


class SpecLimitError(SpecError, LimitError):
    """A spec past one of the server's caps (constraints/limits.py): a bad spec to every
    caller that handles SpecError, and a LimitError whose message names the cap's setting."""


def within(cap: Cap, got: int, error: type[SpecLimitError] | None = None) -> int:
    """``cap.check(got)`` for a spec: refused as a SpecLimitError (or the subclass ``error``)."""
    try:
        return cap.check(got)
    except LimitError as e:
        raise (error or SpecLimitError)(str(e)) from None


def shown(text, limit: int = 60) -> str:
    """A writer's text quoted inside a message: on one line (line breaks and other
    control characters escaped) and cut to ``limit`` characters, so a refusal stays one
    short line whatever was pasted."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in s) + "'"


class ImpossibleConstraint(ValueError):
    """A constraint set that no text can satisfy, refused before any decoding."""


@dataclass(frozen=True, slots=True)
class Violation:
    start: int  # character offset in the checked text
    end: int
    rule: str  # the spec of the constraint that is broken (one shared copy: see __post_init__)
    message: str

    def __post_init__(self):
        # A spec may be tens of kilobytes (a long ban: list) and one check may find thousands
        # of violations of it: interned, every violation of a rule holds the same string.
        if type(self.rule) is str:
            object.__setattr__(self, "rule", sys.intern(self.rule))

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "rule": self.rule, "message": self.message}

    def where(self, text: str) -> str:
        """Human position: 'line L, col C'."""
        line = text.count("\n", 0, self.start) + 1
        col = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return f"line {line}, col {col}"


class Constraint(ABC):
    """Base class.  Subclasses set ``level`` and implement ``spec`` and ``check``."""

    level: ClassVar[str] = "char"

    @abstractmethod
    def spec(self) -> str:
        """The spec string that parses back to this constraint."""

    @abstractmethod
    def check(self, text: str) -> list[Violation]:
        """Every violation in ``text``, in order of position."""

    def describe(self) -> str:
        """One readable line for chips and messages."""
        return self.spec()

    # Word-level view of any constraint: used when it is combined under Or / Not, where
    # only a per-word meaning makes sense.  Text-level constraints have none.
    def word_ok(self, word: str) -> bool:
        raise ImpossibleConstraint(
            f"'{self.spec()}' is a whole-text rule and cannot be combined with or / not"
        )

    def leaves(self) -> list["Constraint"]:
        """The top-level conjuncts (And is flattened)."""
        return [self]

    def check_first(self, text: str, limit: int | None) -> tuple[list[Violation], int]:
        """The first ``limit`` violations by position (all when None) and how many there are
        in all.  Families whose check can find a violation per character make only the
        violations returned; the rest check in full and cut."""
        vs = self.check(text)
        return (vs if limit is None else vs[:limit]), len(vs)

    def satisfied(self, text: str) -> bool:
        return not self.check(text)

    def __and__(self, other: "Constraint") -> "And":
        return And(self, other)

    def __or__(self, other: "Constraint") -> "Or":
        return Or(self, other)

    def __invert__(self) -> "Not":
        return Not(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec()}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Constraint) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.spec())


class CharConstraint(Constraint):
    """Rules on characters.  ``char_ok`` judges one character; ``banned_strings``
    are multi-character strings that may not appear (they can span tokens).

    ``char_ok('\\ufffd')`` judges a token's incomplete UTF-8 bytes: return False
    unless any non-ASCII character would be acceptable."""

    level: ClassVar[str] = "char"
    ignore_case: bool = True

    def char_ok(self, ch: str) -> bool:
        return True

    @property
    def banned_strings(self) -> tuple[str, ...]:
        return ()

    def word_ok(self, word: str) -> bool:
        w = word.lower() if self.ignore_case else word
        return all(self.char_ok(c) for c in word) and not any(s in w for s in self.banned_strings)

    def check(self, text: str) -> list[Violation]:
        return self.check_first(text, None)[0]

    def check_first(self, text: str, limit: int | None) -> tuple[list[Violation], int]:
        # Violation objects are made for the first ``limit`` places only; the rest are
        # counted (a 50,000-character text of banned letters is 50,000 places).
        if type(self).check is not CharConstraint.check:  # a subclass with its own check
            return super().check_first(text, limit)
        keep = limit if limit is not None else len(text) + 1
        # char_ok is a function of the character alone: judge each distinct one once.
        bad = {ch for ch in set(text) if not self.char_ok(ch)}
        hits: list[tuple[int, int, str]] = []  # (start, order at one start, banned string or "")
        total = 0
        if bad:
            for i, ch in enumerate(text):
                if ch in bad:
                    total += 1
                    if total <= keep:
                        hits.append((i, 0, ""))
        hay = text.lower() if self.ignore_case else text
        for order, s in enumerate(self.banned_strings, 1):
            start, n = hay.find(s), 0
            while start != -1:
                n += 1
                if n <= keep:
                    hits.append((start, order, s))
                start = hay.find(s, start + 1)
            total += n
        hits.sort(key=lambda h: (h[0], h[1]))
        rule = self.spec()
        out = [Violation(i, i + len(s), rule, f"banned string {s!r}") if s
               else Violation(i, i + 1, rule, f"character {text[i]!r} is not allowed")
               for i, _, s in hits[:keep]]
        return out, total


class WordConstraint(Constraint):
    """Rules on whole words.  Subclasses implement ``word_ok`` (given the word as
    written; compare case-insensitively unless the rule is about case)."""

    level: ClassVar[str] = "word"

    @abstractmethod
    def word_ok(self, word: str) -> bool:
        """Whether one word (letters and inner apostrophes) obeys the rule."""

    def why_not(self, word: str) -> str:
        return f"{word!r} breaks {self.describe()}"

    def check(self, text: str) -> list[Violation]:
        rule = self.spec()
        return [
            Violation(m.start(), m.end(), rule, self.why_not(m.group()))
            for m in iter_words(text)
            if not self.word_ok(m.group())
        ]


class TextConstraint(Constraint):
    """Rules over the whole text (state across words, a budget).  The engine builds
    a stateful masker for each kind; ``check`` verifies the finished text."""

    level: ClassVar[str] = "text"


# ---------------------------------------------------------------- composition


class And(Constraint):
    def __init__(self, *parts: Constraint):
        if not parts:
            raise SpecError("and: needs at least one constraint")
        flat: list[Constraint] = []
        for p in parts:
            flat.extend(p.leaves() if isinstance(p, And) else [p])
        self.parts = tuple(flat)

    @property
    def level(self) -> str:  # type: ignore[override]
        return max((p.level for p in self.parts), key=LEVELS.index)

    def leaves(self) -> list[Constraint]:
        return list(self.parts)

    def spec(self) -> str:
        return " & ".join(_wrap(p, Or) for p in self.parts)

    def describe(self) -> str:
        return " and ".join(p.describe() for p in self.parts)

    def word_ok(self, word: str) -> bool:
        return all(p.word_ok(word) for p in self.parts)

    def check(self, text: str) -> list[Violation]:
        return sorted((v for p in self.parts for v in p.check(text)), key=lambda v: v.start)

    def check_first(self, text: str, limit: int | None) -> tuple[list[Violation], int]:
        # The first ``limit`` overall are among each part's first ``limit``.
        vs, total = [], 0
        for p in self.parts:
            got, n = p.check_first(text, limit)
            vs += got
            total += n
        vs.sort(key=lambda v: v.start)
        return (vs if limit is None else vs[:limit]), total


class _WordCombination(WordConstraint):
    """Or / Not: only a per-word meaning is well defined, so they are word-level
    ("every word is one syllable or starts with s"); their parts' word_ok decide."""

    def __init__(self, *parts: Constraint):
        for p in parts:
            if p.level == "text":
                raise ImpossibleConstraint(
                    f"'{p.spec()}' is a whole-text rule and cannot be combined with or / not"
                )
            if getattr(p, "scope", "every") != "every":
                # Under or / not the scope would be lost (the rule would apply everywhere).
                raise SpecError(
                    f"'{p.spec()}': a scope (next:, line-end:) must be outermost; "
                    f"write e.g. next:(a | b)"
                )
        self.parts = tuple(parts)


class Or(_WordCombination):
    def __init__(self, *parts: Constraint):
        if len(parts) < 2:
            raise SpecError("or: needs at least two constraints")
        super().__init__(*parts)

    def spec(self) -> str:
        return " | ".join(_wrap(p, And) for p in self.parts)

    def describe(self) -> str:
        return " or ".join(p.describe() for p in self.parts)

    def word_ok(self, word: str) -> bool:
        return any(p.word_ok(word) for p in self.parts)


class Not(_WordCombination):
    def __init__(self, part: Constraint):
        super().__init__(part)
        self.part = part

    def spec(self) -> str:
        return "!" + _wrap(self.part, And, Or)

    def describe(self) -> str:
        return f"not ({self.part.describe()})"

    def word_ok(self, word: str) -> bool:
        return not self.part.word_ok(word)


def _wrap(c: Constraint, *kinds: type) -> str:
    s = c.spec()
    return f"({s})" if isinstance(c, kinds) else s


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[[str | None], Constraint]
    description: str
    example: str
    level: str
    takes_arg: bool = True
    takes_spec: bool = False  # the argument is itself a spec (scope wrappers: next:SPEC)


REGISTRY: dict[str, Entry] = {}


def register(name: str, *, description: str, example: str, level: str, takes_arg: bool = True,
             takes_spec: bool = False):
    """Decorator for ``factory(arg) -> Constraint``; ``arg`` is the text after ``name:``
    (or None), or the parsed Constraint when ``takes_spec``."""

    def deco(factory):
        if name in REGISTRY:
            raise ValueError(f"constraint {name!r} registered twice")
        REGISTRY[name] = Entry(name, factory, description, example, level, takes_arg, takes_spec)
        return factory

    return deco


def lookup(name: str) -> Entry:
    _load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SpecError(f"unknown constraint {shown(name)}{hint}; `perec constraints` lists them") from None


def entries() -> list[Entry]:
    _load_builtin()
    return sorted(REGISTRY.values(), key=lambda e: (LEVELS.index(e.level), e.name))


def require_arg(name: str, arg: str | None) -> str:
    """The argument, stripped; an argument that is one quoted literal (``"..."``) as the
    text it quotes, so single-value rules read ``lipogram:"&"`` as ``&``.  An argument
    mixing literals and bare parts stays as written (list rules split it: split_list)."""
    a = text_of(arg)
    if a.startswith('"'):
        text, end = _literal(a, 0)
        if end == len(a):
            a = text if text.strip() else ""
    if not a:
        raise SpecError(f"'{name}' needs an argument, e.g. {lookup(name).example}")
    return a


def text_of(arg: str | None) -> str:
    """An argument as written, stripped ("" for none)."""
    return "" if arg is None else arg.strip()


def no_arg(name: str, arg: str | None) -> None:
    if arg not in (None, ""):
        raise SpecError(f"'{name}' takes no argument (got {shown(arg)})")


# ---------------------------------------------------------------- quoted literals
#
# Inside an argument, "..." is a literal read as a JSON string (escapes \" \\ \n \t
# \uXXXX), so it can hold any character: commas, quotes, brackets, & | ), line breaks.
# The parser (constraints/spec.py) only finds where an argument ends, skipping literals;
# the rules read the argument with the helpers below, and write it back with quote_arg /
# quote_item, which quote exactly what would otherwise be read differently.

_ARG_SPECIAL = '&|()"'  # would end the argument or open a literal
_ITEM_SPECIAL = _ARG_SPECIAL + ","  # ... or split a list


def _literal(text: str, i: int) -> tuple[str, int]:
    """The literal opening at ``text[i]`` (a double quote) and the index after it."""
    try:
        # strict=False: a line break typed inside the quotes is kept as it is.
        return json.decoder.scanstring(text, i + 1, False)
    except json.JSONDecodeError as e:
        what = "unclosed quote" if e.msg.startswith("Unterminated") else e.msg.lower()
        raise SpecError(f"bad quoted literal {shown(text[i:], 30)}: {what}") from None


def literal_end(text: str, i: int) -> int:
    """The index after the literal opening at ``text[i]`` (SpecError if it is malformed)."""
    return _literal(text, i)[1]


def split_items(arg: str, sep: str | None = ",", cap: Cap | None = None) -> list[str]:
    """``arg`` cut at each ``sep`` outside quoted literals; in each item, bare text and the
    literals' texts joined, spaces around the item dropped (not inside a literal).
    ``sep`` None: one item.  ``cap`` bounds the number of items, counted while cutting."""
    items: list[str] = []
    parts: list[tuple[str, bool]] = []  # (text, quoted) of the item being read
    i, start, n = 0, 0, len(arg)

    def close(end: int) -> None:
        parts.append((arg[start:end], False))
        if parts[0][1] is False:
            parts[0] = (parts[0][0].lstrip(), False)
        if parts[-1][1] is False:
            parts[-1] = (parts[-1][0].rstrip(), False)
        items.append("".join(t for t, _q in parts))
        parts.clear()
        if cap is not None:
            within(cap, len(items))

    while i < n:
        ch = arg[i]
        if ch == '"':
            parts.append((arg[start:i], False))
            text, i = _literal(arg, i)
            parts.append((text, True))
            start = i
        elif sep is not None and ch == sep:
            close(i)
            i += 1
            start = i
        else:
            i += 1
    close(n)
    return items


def unquote(text: str) -> str:
    """One item as written (bare text and literals) -> its text."""
    return split_items(text, sep=None)[0]


def quote_item(item: str, special: str = _ITEM_SPECIAL) -> str:
    """An item as the spec language reads it back: bare when it would be read the same,
    else one JSON literal."""
    if (not item or item != item.strip() or item[0] == "["
            or any(c in special or not c.isprintable() for c in item)):
        return json.dumps(item, ensure_ascii=False)
    return item


def quote_arg(arg: str) -> str:
    """A whole argument as the spec language reads it back (a comma may stay bare: the
    rules that take one value read it whole)."""
    return quote_item(arg, _ARG_SPECIAL)


def split_list(name: str, arg: str | None) -> list[str]:
    """Comma-separated items (bare or quoted), none empty, at most ``limits.ARG_ITEMS``."""
    a = text_of(arg)
    if not a:
        require_arg(name, arg)  # the message naming the rule's example
    items = split_items(a, cap=limits.ARG_ITEMS)
    if any(not x for x in items):
        raise SpecError(f"'{name}': empty item in list {shown(arg)}")
    return items


def _load_builtin() -> None:
    """Import the modules whose @register decorators fill the registry (once; the
    imports are cached).  Listed here, so every spec parses whatever was imported first."""
    from constraints import (  # noqa: F401
        counts, formspec, grammar, language, layout, letters, lexicon, phonetics, semantic, sequence,
        structure, words,
    )
