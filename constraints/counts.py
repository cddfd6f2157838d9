"""Occurrence counts: how many times something appears in the text (IFEval's counts).

- ``count-text:"LIT",COUNT``: occurrences of a literal, any case (``+case`` after the
  count: this case only), counted as IFEval counts a keyword (non-overlapping matches);
- ``count-word:WORD,COUNT``: the word as a whole word, any case;
- ``count-letter:L,COUNT``: the letter, any case;
- ``caps-words:COUNT``: words written in ALL CAPS (IFEval: a word token that ``isupper()``);
- ``placeholders:COUNT``: square-bracket placeholders such as ``[name]`` (IFEval:
  ``re.findall(r"\\[.*?\\]", text)``);
- ``highlights:COUNT``: markdown highlights such as ``*like this*`` with something inside
  (IFEval: ``\\*[^\\n\\*]*\\*`` and ``\\*\\*[^\\n\\*]*\\*\\*`` matches that are not empty).

COUNT is a structure count (``N``, ``N..M``, ``>=N``, ``<=N``, ``>N``, ``<N``), and 0 is a
count here ("no ALL CAPS words": ``caps-words:0``).  Each ``check`` finds the occurrences
with the definitions above; the decoder's masks (studio/masks/counts.py) count them their
own way, a character at a time.  This module never imports torch.
"""

from __future__ import annotations

import re

from constraints.base import SpecError, TextConstraint, quote_item, register, split_list
from constraints.lexicon import normalize
from constraints.structure import Count, CountedSpans, parse_count
from constraints.units import WORD_RE, counted_word_spans, is_letter, iter_words

CASE = "+case"  # after a count-text count: match the literal's case exactly


class OccurrenceCount(CountedSpans, TextConstraint):
    """``count`` occurrences of something (``spans``: where they are)."""

    name = ""

    def __init__(self, count: Count):
        self.count = count

    def target(self) -> str:
        """What is counted, as the spec writes it before the count ("" for none)."""
        return ""

    def subject(self) -> str:
        """What is counted, for messages ("" : the count names it, by ``what``)."""
        return ""

    def describe(self) -> str:
        s = self.subject()
        return f"{s} {self.count.describe('times')}" if s else self.count.describe(self.what)

    def spec(self) -> str:
        t = self.target()
        return f"{self.name}:{t + ',' if t else ''}{self.count.spec()}"


class TextCount(OccurrenceCount):
    name, what = "count-text", "occurrences"

    def __init__(self, literal: str, count: Count, case: bool = False):
        if not literal:
            raise SpecError("'count-text': the literal is empty")
        super().__init__(count)
        self.literal, self.case = literal, case

    def target(self) -> str:
        return quote_item(self.literal)

    def subject(self) -> str:
        return repr(self.literal) + (" (this case)" if self.case else "")

    def spec(self) -> str:
        return super().spec() + (CASE if self.case else "")

    def spans(self, text: str) -> list[tuple[int, int]]:
        flags = 0 if self.case else re.IGNORECASE
        return [m.span() for m in re.finditer(re.escape(self.literal), text, flags)]


class WordCount(OccurrenceCount):
    name, what = "count-word", "uses"

    def __init__(self, word: str, count: Count):
        super().__init__(count)
        self.word = normalize(word)

    def target(self) -> str:
        return self.word

    def subject(self) -> str:
        return f"the word {self.word!r}"

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in iter_words(text) if normalize(m.group()) == self.word]


class LetterCount(OccurrenceCount):
    name, what = "count-letter", "times"

    def __init__(self, letter: str, count: Count):
        super().__init__(count)
        self.letter = letter.lower()

    def target(self) -> str:
        return self.letter

    def subject(self) -> str:
        return f"the letter {self.letter!r}"

    def spans(self, text: str) -> list[tuple[int, int]]:
        # IFEval: collections.Counter(text.lower())[letter]
        return [(i, i + 1) for i, ch in enumerate(text) if ch.lower() == self.letter]


class CapsWords(OccurrenceCount):
    name, what = "caps-words", "ALL CAPS words"

    def spans(self, text: str) -> list[tuple[int, int]]:
        # IFEval: nltk.word_tokenize(text), then the tokens that are isupper().
        return [(a, b) for w, a, b in counted_word_spans(text) if w.isupper()]


class Placeholders(OccurrenceCount):
    name, what = "placeholders", "placeholders"
    PATTERN = re.compile(r"\[.*?\]")

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.PATTERN.finditer(text)]


class Highlights(OccurrenceCount):
    name, what = "highlights", "highlighted sections"
    SINGLE = re.compile(r"\*[^\n\*]*\*")
    DOUBLE = re.compile(r"\*\*[^\n\*]*\*\*")

    def spans(self, text: str) -> list[tuple[int, int]]:
        # IFEval counts both patterns, each match with something inside it.
        single = [m.span() for m in self.SINGLE.finditer(text) if m.group().strip("*").strip()]
        double = [m.span() for m in self.DOUBLE.finditer(text)
                  if m.group().removeprefix("**").removesuffix("**").strip()]
        return sorted(single + double)


# ---------------------------------------------------------------- the spec


def _target_and_count(name: str, arg: str | None) -> tuple[str, str]:
    items = split_list(name, arg)
    if len(items) != 2:
        raise SpecError(f"'{name}': expected WHAT,COUNT (quote a literal holding a comma: "
                        f"{name}:\",\",>=2), got {len(items)} items")
    return items[0], items[1]


@register("count-text", description="A literal appears COUNT times, any case (+case after the count: exactly "
          "this case); quote it to hold any character.", example='count-text:"P.S.",>=1', level="text")
def _count_text(arg):
    literal, count = _target_and_count("count-text", arg)
    case = count.endswith(CASE)
    return TextCount(literal, parse_count("count-text", count.removesuffix(CASE), zero_ok=True), case)


@register("count-word", description="A word appears COUNT times as a whole word, any case.",
          example="count-word:river,>=3", level="text")
def _count_word(arg):
    word, count = _target_and_count("count-word", arg)
    if not WORD_RE.fullmatch(word):
        raise SpecError(f"'count-word': {word!r} is not a word (letters and inner apostrophes only)")
    return WordCount(word, parse_count("count-word", count, zero_ok=True))


@register("count-letter", description="A letter (a-z) appears COUNT times, any case.",
          example="count-letter:o,>=6", level="text")
def _count_letter(arg):
    letter, count = _target_and_count("count-letter", arg)
    if len(letter) != 1 or not ("a" <= letter.lower() <= "z") or not is_letter(letter):
        raise SpecError(f"'count-letter': {letter!r} is not one letter a-z")
    return LetterCount(letter, parse_count("count-letter", count, zero_ok=True))


@register("caps-words", description="COUNT words written in ALL CAPS (<4: fewer than four).",
          example="caps-words:<4", level="text")
def _caps_words(arg):
    return CapsWords(parse_count("caps-words", arg, zero_ok=True))


@register("placeholders", description="COUNT square-bracket placeholders such as [name].",
          example="placeholders:>=2", level="text")
def _placeholders(arg):
    return Placeholders(parse_count("placeholders", arg, zero_ok=True))


@register("highlights", description="COUNT markdown highlights such as *this part*.",
          example="highlights:>=3", level="text")
def _highlights(arg):
    return Highlights(parse_count("highlights", arg, zero_ok=True))
