"""Constraints on letters and characters.

Character level (a token passes iff its text passes): lipogram, banned strings,
character classes.  Whole-text level: required characters.
"""

from __future__ import annotations

import string
import unicodedata

from constraints.base import (
    CharConstraint,
    ImpossibleConstraint,
    SpecError,
    TextConstraint,
    Violation,
    no_arg,
    quote_arg,
    quote_item,
    register,
    require_arg,
    split_list,
)

REPLACEMENT = "\ufffd"  # how a token's incomplete UTF-8 bytes reach char_ok


def _letters_arg(name: str, arg: str | None) -> str:
    """'e', 'e,a', 'xyz' -> the set of characters, lower-cased, no separators (commas and
    any white space: a tab in the set could not be written back into a spec)."""
    chars = "".join(ch for ch in require_arg(name, arg) if ch != "," and not ch.isspace())
    if not chars:
        raise SpecError(f"'{name}' needs at least one character")
    return "".join(sorted(set(chars.lower())))


class Lipogram(CharConstraint):
    """No use of the given letters, in either case."""

    def __init__(self, letters: str):
        if not letters:
            raise SpecError("lipogram: no letters given")
        self.letters = frozenset(letters.lower())

    def char_ok(self, ch: str) -> bool:
        if ch == REPLACEMENT:
            # Partial UTF-8 bytes can only build a banned character if it is non-ASCII.
            return all(c.isascii() for c in self.letters)
        return ch.lower() not in self.letters and _fold(ch) not in self.letters

    def spec(self) -> str:
        return "lipogram:" + quote_arg("".join(sorted(self.letters)))

    def describe(self) -> str:
        return "no " + ", ".join(f'"{c}"' for c in sorted(self.letters))


def _fold(ch: str) -> str:
    """'é' -> 'e': accented forms of a banned letter are banned too."""
    base = unicodedata.normalize("NFKD", ch)[:1].lower()
    return base


class BannedStrings(CharConstraint):
    """None of the given strings may appear anywhere, even across tokens."""

    def __init__(self, strings: list[str], ignore_case: bool = True):
        if not strings or any(not s for s in strings):
            raise SpecError("ban: empty string in the list")
        self.ignore_case = ignore_case
        self.strings = tuple(s.lower() if ignore_case else s for s in strings)
        # Built once: char_ok runs for every character checked and every vocabulary token.
        self._singles = frozenset(s for s in self.strings if len(s) == 1)
        self._banned = tuple(s for s in self.strings if len(s) > 1)
        self._ascii = all(s.isascii() for s in self.strings)

    @property
    def banned_strings(self) -> tuple[str, ...]:
        # One-character strings are plain character rules (cheaper, same meaning).
        return self._banned

    def char_ok(self, ch: str) -> bool:
        if ch == REPLACEMENT:
            return self._ascii
        return (ch.lower() if self.ignore_case else ch) not in self._singles

    def spec(self) -> str:
        name = "ban" if self.ignore_case else "ban-exact"
        return f"{name}:" + ",".join(quote_item(s) for s in self.strings)

    def describe(self) -> str:
        return "never " + ", ".join(repr(s) for s in self.strings)


class CharClass(CharConstraint):
    """Every character belongs to a class (ASCII, letters, no digits, ...)."""

    def __init__(self, name: str, ok, replacement_ok: bool, text: str):
        self.name, self._ok, self._replacement_ok, self.text = name, ok, replacement_ok, text

    def char_ok(self, ch: str) -> bool:
        if ch == REPLACEMENT:
            return self._replacement_ok
        return self._ok(ch)

    def spec(self) -> str:
        return self.name

    def describe(self) -> str:
        return self.text


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P") or ch in string.punctuation


CLASSES = {
    "ascii-only": (lambda c: c.isascii(), False, "ASCII characters only"),
    "letters-only": (lambda c: c.isalpha() or c.isspace(), False, "letters and spaces only"),
    "no-digits": (lambda c: not c.isdigit(), True, "no digits"),
    "no-punctuation": (lambda c: not _is_punct(c), True, "no punctuation"),
    "lowercase": (lambda c: not c.isupper(), True, "no capital letters"),
    "uppercase": (lambda c: not c.islower(), True, "no lower-case letters"),
}


def _register_class(name: str, ok, replacement_ok: bool, text: str) -> None:
    @register(name, description=text[0].upper() + text[1:] + ".", example=name, level="char",
              takes_arg=False)
    def factory(arg, _n=name):
        no_arg(_n, arg)
        return CharClass(_n, ok, replacement_ok, text)


for _name, (_ok, _rep, _text) in CLASSES.items():
    _register_class(_name, _ok, _rep, _text)


class RequiredChars(TextConstraint):
    """Each of these characters appears somewhere in the text (case-insensitive).
    The engine steers toward missing ones and forces them before the budget ends."""

    def __init__(self, chars: str):
        if not chars:
            raise SpecError("require: no characters given")
        self.chars = "".join(sorted(set(chars.lower())))

    def missing(self, text: str) -> str:
        low = text.lower()
        return "".join(c for c in self.chars if c not in low)

    def spec(self) -> str:
        return "require:" + quote_arg(self.chars)

    def describe(self) -> str:
        return "uses " + ", ".join(f'"{c}"' for c in self.chars)

    def check(self, text: str) -> list[Violation]:
        miss = self.missing(text)
        if not miss:
            return []
        return [Violation(len(text), len(text), self.spec(), f"never uses {', '.join(repr(c) for c in miss)}")]


@register("lipogram", description="Never use these letters, in either case (Perec's La Disparition).",
          example="lipogram:e", level="char")
def _lipogram(arg):
    return Lipogram(_letters_arg("lipogram", arg))


@register("ban", description="Never write these strings, even split across tokens (case-insensitive).",
          example="ban:the,and", level="char")
def _ban(arg):
    return BannedStrings(split_list("ban", arg), ignore_case=True)


@register("ban-exact", description="Never write these strings, case-sensitive.",
          example="ban-exact:I", level="char")
def _ban_exact(arg):
    return BannedStrings(split_list("ban-exact", arg), ignore_case=False)


@register("require", description="Use each of these letters somewhere in the text.",
          example="require:xz", level="text")
def _require(arg):
    return RequiredChars(_letters_arg("require", arg))


def conflicts(banned: CharConstraint, required: RequiredChars) -> str | None:
    """A required letter that a character rule forbids, if any."""
    for c in required.chars:
        if not banned.char_ok(c) and not banned.char_ok(c.upper()):
            return c
    return None


__all__ = ["Lipogram", "BannedStrings", "CharClass", "RequiredChars", "conflicts", "ImpossibleConstraint"]
