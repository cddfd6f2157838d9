"""What counts as a word: the one definition the checkers and the decoder share.

A word is a run of letters, optionally joined by apostrophes ("don't", "o'er").  Digits,
punctuation, symbols and whitespace separate words: word-level rules never judge them.
Letters are Unicode word characters other than decimal digits and the underscore, so
"naïve" is one word and "baby¹ball" (a superscript is not a decimal digit) is one too.

Checkers find words with ``WORD_RE`` / ``iter_words``; the decoder, which sees text a
character at a time, asks ``is_word_char`` (a word character may still turn out to be
an apostrophe that joins nothing).  Both come from the same two sets below.  This module
says only where words are; what a rule allows stays with the rule.
"""

from __future__ import annotations

import re
from typing import Iterator

APOSTROPHES = "'’"
_LETTER = r"[^\W\d_]"

# A word, for verification: letters, optionally joined by apostrophes.
WORD_RE = re.compile(rf"{_LETTER}+(?:[{APOSTROPHES}]{_LETTER}+)*")


def is_letter(ch: str) -> bool:
    """A character of ``WORD_RE``'s letter class, by str methods: the decoder asks this of
    every character it sees, and a regex call costs ten times more.  (tests/test_units.py
    checks the two agree on every code point.)"""
    return ch.isalnum() and not ch.isdecimal()


def is_word_char(ch: str) -> bool:
    """A character that may belong to the word in progress: a letter or an apostrophe."""
    return ch in APOSTROPHES or is_letter(ch)


def is_boundary(ch: str) -> bool:
    """A character that ends the word in progress."""
    return not is_word_char(ch)


def iter_words(text: str) -> Iterator[re.Match]:
    """Every word of ``text`` as a regex match (``.group()``, ``.start()``, ``.end()``)."""
    return WORD_RE.finditer(text)
