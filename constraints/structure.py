"""Structure rules: count and place characters, words, sentences and paragraphs.

- ``chars:COUNT``, ``words:COUNT``, ``sentences:COUNT``, ``paragraphs:COUNT``: how many
  (COUNT is ``N``, ``N..M``, ``>=N``, ``<=N``, ``>N`` or ``<N``);
- ``word-at:P=W[,P=W...]`` / ``char-at:P=C[,...]``: the word / character at a 1-based
  position (negative from the end);
- ``starts-with-word:W`` / ``ends-with-word:W``: the first / last word;
- ``each-sentence:(RULE)`` / ``each-paragraph:(RULE)``: RULE holds in every sentence /
  paragraph (RULE: the rules above, joined with ``&``; ``sentences:`` only per paragraph);
- ``sentence-ends:["w1","w2",...]``: sentence i ends with the word wi;
- ``paragraph-ends:["sentence 1",...]``: paragraph i ends with the given sentence (and there
  are exactly that many paragraphs);
- ``paragraph-starts:I=WORD``: paragraph I starts with the word (IFEval's first-word check);
- ``one-word``: the whole text is a single word.

Units are those of ``constraints.units`` (COLLIE's: NLTK's trained English Punkt for
sentences, NLTK's Treebank word tokenizer for words).  Every rule's ``check`` counts them
on the finished text.

``constraints.structure_plan`` gathers them into the plan the decoder works with.

This module never imports torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from constraints import limits
from constraints.base import (
    Constraint,
    ImpossibleConstraint,
    SpecError,
    TextConstraint,
    Violation,
    no_arg,
    register,
    quote_item,
    require_arg,
    split_list,
    text_of,
    within,
)
from constraints.units import (
    WORD_RE,
    counted_word_spans,
    counted_words,
    paragraph_spans,
    sentence_spans,
    sentences,
    unit_key,
)

# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class Count:
    """An inclusive range of counts; ``hi`` None: no upper bound."""

    lo: int = 0
    hi: int | None = None

    def __contains__(self, n: int) -> bool:
        return n >= self.lo and (self.hi is None or n <= self.hi)

    @property
    def exact(self) -> int | None:
        return self.lo if self.hi == self.lo else None

    @property
    def empty(self) -> bool:
        return self.hi is not None and self.hi < self.lo

    def meet(self, other: "Count") -> "Count":
        his = [h for h in (self.hi, other.hi) if h is not None]
        return Count(max(self.lo, other.lo), min(his) if his else None)

    def spec(self) -> str:
        if self.hi is None:
            return f">={self.lo}"
        if self.lo == self.hi:
            return str(self.lo)
        if self.lo == 0:
            return f"<={self.hi}"
        return f"{self.lo}..{self.hi}"

    def describe(self, what: str) -> str:
        one = what[:-1] if what.endswith("s") else what
        name = lambda n: f"{n} {one if n == 1 else what}"  # noqa: E731
        if self.hi is None:
            return f"at least {name(self.lo)}"
        if self.lo == self.hi:
            return f"exactly {name(self.lo)}"
        if self.lo == 0:
            return f"at most {name(self.hi)}"
        return f"{self.lo} to {self.hi} {what}"


ANY = Count()
_COUNT_RE = re.compile(r"\s*(?:(\d+)\s*\.\.\s*(\d+)|(>=|<=|>|<|=)?\s*(\d+))\s*")


def parse_count(name: str, arg: str | None, zero_ok: bool = False) -> Count:
    """A COUNT argument.  ``zero_ok``: a count of 0 means something (occurrence counts:
    none at all); for units it would allow only an empty text."""
    a = require_arg(name, arg)
    m = _COUNT_RE.fullmatch(a)
    if not m:
        raise SpecError(f"'{name}': expected a count N, N..M, >=N, <=N, >N or <N (e.g. {name}:3..5), got {a!r}")
    if m.group(1) is not None:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise SpecError(f"'{name}': the range {lo}..{hi} is empty")
        c = Count(lo, hi)
    else:
        op, n = m.group(3) or "=", int(m.group(4))
        c = {"=": Count(n, n), ">=": Count(n), ">": Count(n + 1), "<=": Count(0, n),
             "<": Count(0, n - 1)}[op]
        if c.empty:
            raise SpecError(f"'{name}:{a}' allows no count at all")
    if c.hi == 0 and not zero_ok:
        raise SpecError(f"'{name}:{a}' allows only an empty text")
    return c


# ---------------------------------------------------------------- units with positions


def _unit_span(text: str, a: int, b: int) -> tuple[int, int]:
    """The span of ``unit(text[a:b])`` inside ``text``."""
    s = text[a:b]
    s1 = s.strip()
    a1 = a + (s.find(s1) if s1 else 0)
    s2 = s1.strip(".")
    a2 = a1 + (s1.find(s2) if s2 else 0)
    return a2, a2 + len(s2)


def sentence_units(text: str) -> list[tuple[int, int]]:
    """Spans of the sentence units of ``text`` (each as COLLIE keeps it)."""
    return [_unit_span(text, a, b) for a, b in sentence_spans(text)]


def paragraph_units(text: str) -> list[tuple[int, int]]:
    return [_unit_span(text, a, b) for a, b in paragraph_spans(text)]


def _same(a: str, b: str) -> bool:
    return unit_key(a) == unit_key(b)


def _end(text: str, rule: str, message: str) -> Violation:
    return Violation(len(text), len(text), rule, message)


def single_word(name: str, w: str) -> str:
    """``w`` if the word splitter counts it as one word where it stands in a sentence."""
    w = w.strip()
    if not w:
        raise SpecError(f"'{name}': empty word")
    got = counted_words(f"Aa {w} bb")
    if len(got) != 3 or not _same(got[1], w) or len(sentences(f"Aa {w} bb")) != 1:
        raise SpecError(f"'{name}': {w!r} is not one word to the word splitter "
                        f"(it reads {' | '.join(got[1:-1]) or 'nothing'})")
    return w


# ---------------------------------------------------------------- the rules


class StructureRule(TextConstraint):
    """A rule about units.  ``scopes``: where it may stand (text, sentence, paragraph)."""

    scopes: tuple[str, ...] = ("text", "sentence", "paragraph")


class CountedSpans:
    """A rule that some spans of the text (``spans``) number ``count``: the one check of
    every count rule (units here, occurrences in constraints/counts.py)."""

    count: Count
    what = ""  # chars, words, sentences, paragraphs, occurrences of ...

    def spans(self, text: str) -> list[tuple[int, int]]:
        raise TypeError

    def describe(self) -> str:
        return self.count.describe(self.what)

    def check(self, text: str) -> list[Violation]:
        spans = self.spans(text)
        n = len(spans)
        if n in self.count:
            return []
        msg = f"has {n} {self.what[:-1] if n == 1 else self.what}, needs {self.describe()}"
        if self.count.hi is not None and n > self.count.hi:
            a, b = spans[self.count.hi]
            return [Violation(a, max(b, a), self.spec(), msg)]
        return [_end(text, self.spec(), msg)]


class _CountRule(CountedSpans, StructureRule):
    def __init__(self, count: Count):
        self.count = count

    def spec(self) -> str:
        return f"{self.name}:{self.count.spec()}"


class CharCount(_CountRule):
    name, what = "chars", "characters"

    def spans(self, text):
        return [(i, i + 1) for i in range(len(text))]


class WordCount(_CountRule):
    name, what = "words", "words"

    def spans(self, text):
        return [(a, b) for _w, a, b in counted_word_spans(text)]


class SentenceCount(_CountRule):
    name, what = "sentences", "sentences"
    scopes = ("text", "paragraph")

    def spans(self, text):
        return sentence_spans(text)


class ParagraphCount(_CountRule):
    name, what = "paragraphs", "paragraphs"
    scopes = ("text",)

    def spans(self, text):
        return paragraph_spans(text)


def _positions(name: str, arg: str | None, value) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in split_list(name, arg):
        m = re.fullmatch(r"\s*(-?\d+)\s*=\s*(.+?)\s*", item)
        if not m:
            raise SpecError(f"'{name}': expected POS=VALUE items (e.g. {name}:4=a,-1=b), got {item!r}")
        pos = int(m.group(1))
        if pos == 0:
            raise SpecError(f"'{name}': positions count from 1 (or -1 from the end); 0 is not a position")
        v = value(m.group(2))
        if pos in out and not _same(out[pos], v):
            raise ImpossibleConstraint(f"'{name}': position {pos} cannot be both {out[pos]!r} and {v!r}")
        out[pos] = v
    return out


def _pos_spec(positions: dict[int, str]) -> str:
    return ",".join(f"{p}={quote_item(v)}" for p, v in sorted(positions.items(), key=lambda kv: (kv[0] < 0, abs(kv[0]))))


def _ordinal(p: int) -> str:
    if p == -1:
        return "last"
    n = abs(p)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}" + (" from the end" if p < 0 else "")


class WordAt(StructureRule):
    """The word at each given position (1-based; negative from the end)."""

    def __init__(self, positions: dict[int, str]):
        self.positions = dict(positions)

    def spec(self) -> str:
        return "word-at:" + _pos_spec(self.positions)

    def describe(self) -> str:
        return ", ".join(f"{_ordinal(p)} word {w!r}" for p, w in sorted(self.positions.items()))

    def check(self, text: str) -> list[Violation]:
        words = counted_word_spans(text)
        out = []
        for p, w in sorted(self.positions.items()):
            i = p - 1 if p > 0 else len(words) + p
            if not 0 <= i < len(words):
                out.append(_end(text, self.spec(), f"has {len(words)} words, so no {_ordinal(p)} word (needs {w!r})"))
            elif not _same(words[i][0], w):
                out.append(Violation(words[i][1], words[i][2], self.spec(),
                                     f"the {_ordinal(p)} word is {words[i][0]!r}, needs {w!r}"))
        return out


class CharAt(StructureRule):
    """The character at each given position (1-based; negative from the end), any case."""

    def __init__(self, positions: dict[int, str]):
        self.positions = dict(positions)

    def spec(self) -> str:
        return "char-at:" + _pos_spec(self.positions)

    def describe(self) -> str:
        return ", ".join(f"{_ordinal(p)} character {c!r}" for p, c in sorted(self.positions.items()))

    def check(self, text: str) -> list[Violation]:
        out = []
        for p, c in sorted(self.positions.items()):
            i = p - 1 if p > 0 else len(text) + p
            if not 0 <= i < len(text):
                out.append(_end(text, self.spec(), f"has {len(text)} characters, so no {_ordinal(p)} (needs {c!r})"))
            elif text[i].lower() != c.lower():
                out.append(Violation(i, i + 1, self.spec(), f"the {_ordinal(p)} character is {text[i]!r}, needs {c!r}"))
        return out


def _char(name: str):
    def value(v: str) -> str:
        if len(v) != 1 or v.isspace():
            raise SpecError(f"'{name}': {v!r} is not a single character")
        return v
    return value


class _EdgeWord(StructureRule):
    index = 0

    def __init__(self, word: str):
        self.word = word

    def spec(self) -> str:
        return f"{self.name}:{self.word}"

    def check(self, text: str) -> list[Violation]:
        words = counted_word_spans(text)
        if not words:
            return [_end(text, self.spec(), f"has no words (needs {self.word!r})")]
        w, a, b = words[self.index]
        if _same(w, self.word):
            return []
        return [Violation(a, b, self.spec(), f"the {'first' if self.index == 0 else 'last'} word is {w!r}, "
                                             f"needs {self.word!r}")]


class StartsWithWord(_EdgeWord):
    name, index = "starts-with-word", 0

    def describe(self) -> str:
        return f"starts with the word {self.word!r}"


class EndsWithWord(_EdgeWord):
    name, index = "ends-with-word", -1

    def describe(self) -> str:
        return f"ends with the word {self.word!r}"


class OneWord(StructureRule):
    """The whole text is one word: letters (inner apostrophes allowed), nothing else."""

    scopes = ("text",)

    def spec(self) -> str:
        return "one-word"

    def describe(self) -> str:
        return "a single word"

    def check(self, text: str) -> list[Violation]:
        if WORD_RE.fullmatch(text):
            return []
        if not text:
            return [_end(text, self.spec(), "is empty, needs one word")]
        m = WORD_RE.match(text)
        if not m:
            return [Violation(0, len(text), self.spec(), f"does not start with a word: {_short(text, 12)!r}")]
        return [Violation(m.end(), len(text), self.spec(),
                          f"is more than one word: {_short(text[m.end():], 12)!r} follows {m.group()!r}")]


class _Scope(StructureRule):
    """A rule (or a conjunction of rules) that holds for every sentence / paragraph."""

    per = ""  # the unit: sentence or paragraph
    scopes = ("text",)

    def __init__(self, inner: Constraint):
        parts = inner.leaves()
        for p in parts:
            if not isinstance(p, StructureRule) or self.per not in p.scopes:
                allowed = ", ".join(sorted(n for n, k in _SCOPED.items() if self.per in k.scopes))
                raise SpecError(f"'{self.name}': {p.spec()!r} cannot apply per {self.per}; "
                                f"use {allowed} (joined with &)")
        self.inner = inner
        self.parts = parts

    def spec(self) -> str:
        return f"{self.name}:({self.inner.spec()})"

    def describe(self) -> str:
        return f"every {self.per}: {self.inner.describe()}"

    def units(self, text: str) -> list[tuple[int, int]]:
        raise TypeError

    def check(self, text: str) -> list[Violation]:
        out, rule = [], self.spec()  # one spec for every violation (it may be long)
        for i, (a, b) in enumerate(self.units(text), 1):
            for v in self.inner.check(text[a:b]):
                out.append(Violation(a + v.start, a + v.end, rule, f"{self.per} {i}: {v.message}"))
        return out


class EachSentence(_Scope):
    name, per = "each-sentence", "sentence"

    def units(self, text):
        return sentence_units(text)


class EachParagraph(_Scope):
    name, per = "each-paragraph", "paragraph"

    def units(self, text):
        return paragraph_units(text)


def _json_list(name: str, arg: str | None) -> list[str]:
    """A list argument: a JSON array of strings, or ``a,b,c`` (bare or quoted items)."""
    a = text_of(arg) or require_arg(name, arg)  # as written: a quoted item is one item
    if a.startswith("["):
        try:
            items = json.loads(a)
        except json.JSONDecodeError as e:
            raise SpecError(f"'{name}': the list is not valid JSON ({e.msg})") from None
        if isinstance(items, list):
            within(limits.ARG_ITEMS, len(items))
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise SpecError(f"'{name}': expected a non-empty JSON list of strings, got {a!r}")
        if any(not x.strip() for x in items):
            raise SpecError(f"'{name}': empty item in the list")
        return [x.strip() for x in items]
    return split_list(name, a)


def _list_spec(items) -> str:
    return json.dumps(list(items), ensure_ascii=False)


class SentenceEnds(StructureRule):
    """Sentence i ends with the word words[i] (further sentences are free)."""

    scopes = ("text",)

    def __init__(self, words):
        self.words = tuple(words)

    def spec(self) -> str:
        return "sentence-ends:" + _list_spec(self.words)

    def describe(self) -> str:
        return "sentences ending with " + ", ".join(repr(w) for w in self.words)

    def check(self, text: str) -> list[Violation]:
        units = sentence_units(text)
        out = []
        if len(units) < len(self.words):
            out.append(_end(text, self.spec(), f"has {len(units)} sentences, needs at least {len(self.words)} "
                                               f"(one per given last word)"))
        for i, ((a, b), w) in enumerate(zip(units, self.words), 1):
            words = counted_word_spans(text[a:b])
            last = words[-1][0] if words else ""
            if not _same(last, w):
                at = (a + words[-1][1], a + words[-1][2]) if words else (a, b)
                out.append(Violation(at[0], at[1], self.spec(), f"sentence {i} ends with {last!r}, needs {w!r}"))
        return out


def closing_text(sentence: str) -> str:
    """A given sentence as written at the end of a paragraph: with a final period unless
    it already ends with . ! or ? (closing quotes or brackets may follow)."""
    s = sentence.strip()
    return s if re.search(r"[.!?][\"'”’)\]]*$", s) else s + "."


class ParagraphEnds(StructureRule):
    """Exactly len(sentences) paragraphs; paragraph i's last sentence is sentences[i]."""

    scopes = ("text",)

    def __init__(self, given):
        self.sentences = tuple(given)

    def spec(self) -> str:
        return "paragraph-ends:" + _list_spec(self.sentences)

    def describe(self) -> str:
        n = len(self.sentences)
        return f"{n} paragraph{'s' if n != 1 else ''} ending with given sentences"

    def check(self, text: str) -> list[Violation]:
        paras = paragraph_units(text)
        out = []
        if len(paras) != len(self.sentences):
            out.append(_end(text, self.spec(), f"has {len(paras)} paragraphs, needs {len(self.sentences)}"))
        for i, ((a, b), s) in enumerate(zip(paras, self.sentences), 1):
            units = sentence_units(text[a:b])
            last = text[a + units[-1][0]: a + units[-1][1]] if units else ""
            if not _same(last, s):
                at = (a + units[-1][0], a + units[-1][1]) if units else (a, b)
                out.append(Violation(at[0], at[1], self.spec(),
                                     f"paragraph {i} ends with {_short(last)!r}, needs {_short(s)!r}"))
        return out


class ParagraphStarts(StructureRule):
    """Paragraph i (split at blank lines) starts with the given word, judged as IFEval's
    ParagraphFirstWordCheck judges it: the paragraph's first piece of text, quotes stripped
    from its front, up to the first . , ? ! ' or ", in any case."""

    scopes = ("text",)

    def __init__(self, starts: dict[int, str]):
        self.starts = dict(starts)

    def spec(self) -> str:
        return "paragraph-starts:" + _pos_spec(self.starts)

    def describe(self) -> str:
        return ", ".join(f"paragraph {i} starts with {w!r}" for i, w in sorted(self.starts.items()))

    @staticmethod
    def first_word(paragraph: str) -> str:
        words = paragraph.split()
        if not words:
            return ""
        word = words[0].strip().lstrip("'").lstrip('"')
        return re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()

    def check(self, text: str) -> list[Violation]:
        paras = paragraph_spans(text)
        out = []
        for i, w in sorted(self.starts.items()):
            if i > len(paras) or not text[paras[i - 1][0]:paras[i - 1][1]].strip():
                out.append(_end(text, self.spec(), f"has no paragraph {i} (it must start with {w!r})"))
                continue
            a, b = paras[i - 1]
            got = self.first_word(text[a:b])
            if got != w.lower():
                out.append(Violation(a, b, self.spec(), f"paragraph {i} starts with {got!r}, needs {w!r}"))
        return out


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------- registry

_SCOPED: dict[str, type] = {"chars": CharCount, "words": WordCount, "sentences": SentenceCount,
                            "word-at": WordAt, "char-at": CharAt, "starts-with-word": StartsWithWord,
                            "ends-with-word": EndsWithWord}


_COUNT_EXAMPLES = {"chars": "80..100", "words": "12", "sentences": "3", "paragraphs": "2"}


def _count_rule(kind: type, text: str) -> None:
    @register(kind.name, description=f"How many {kind.what} {text}: N, N..M, >=N, <=N, >N or <N.".replace(" :", ":"),
              example=f"{kind.name}:{_COUNT_EXAMPLES[kind.name]}", level="text")
    def factory(arg, _k=kind):
        if _k is ParagraphCount and arg and ";" in arg:
            # paragraphs:COUNT;sep="***": paragraphs split by a separator, a layout rule.
            from constraints.layout import separated_paragraphs

            rule = separated_paragraphs(arg)
            if rule is not None:
                return rule
        return _k(parse_count(_k.name, arg))


_count_rule(CharCount, "(spaces included)")
_count_rule(WordCount, "(as the word splitter counts them)")
_count_rule(SentenceCount, "")
_count_rule(ParagraphCount, "(separated by a blank line, or by a line of ;sep=\"***\")")


@register("word-at", description="The word at a position: POS=WORD, 1-based, negative from the end.",
          example="word-at:4=river,8=stone", level="text")
def _word_at(arg):
    return WordAt(_positions("word-at", arg, lambda v: single_word("word-at", v)))


@register("char-at", description="The character at a position of the text: POS=C, 1-based, negative from the end.",
          example="char-at:1=t,-2=s", level="text")
def _char_at(arg):
    return CharAt(_positions("char-at", arg, _char("char-at")))


@register("starts-with-word", description="The first word is this one (per unit inside each-sentence / each-paragraph).",
          example="starts-with-word:He", level="text")
def _starts_with_word(arg):
    return StartsWithWord(single_word("starts-with-word", require_arg("starts-with-word", arg)))


@register("ends-with-word", description="The last word is this one (per unit inside each-sentence / each-paragraph).",
          example="ends-with-word:night", level="text")
def _ends_with_word(arg):
    return EndsWithWord(single_word("ends-with-word", require_arg("ends-with-word", arg)))


def _paragraph_word(v: str) -> str:
    if not WORD_RE.fullmatch(v) or any(ch in v for ch in "'’"):
        raise SpecError(f"'paragraph-starts': {v!r} is not one word of letters")
    return v


@register("paragraph-starts", description="Paragraph I (split at blank lines) starts with this word: I=WORD.",
          example="paragraph-starts:2=Then", level="text")
def _paragraph_starts(arg):
    starts = _positions("paragraph-starts", arg, _paragraph_word)
    if any(i < 1 for i in starts):
        raise SpecError("'paragraph-starts': paragraphs count from 1")
    return ParagraphStarts(starts)


@register("one-word", description="The whole text is a single word, nothing else.",
          example="one-word", level="text", takes_arg=False)
def _one_word(arg):
    no_arg("one-word", arg)
    return OneWord()


@register("each-sentence", description="A count or position rule that holds for every sentence.",
          example="each-sentence:(words:8..12)", level="text", takes_spec=True)
def _each_sentence(inner):
    return EachSentence(inner)


@register("each-paragraph", description="A count or position rule that holds for every paragraph.",
          example="each-paragraph:(sentences:>=2)", level="text", takes_spec=True)
def _each_paragraph(inner):
    return EachParagraph(inner)


@register("sentence-ends", description='Sentence i ends with word i: a JSON list ["w1","w2"] or w1,w2.',
          example='sentence-ends:["night","day"]', level="text")
def _sentence_ends(arg):
    return SentenceEnds([single_word("sentence-ends", w) for w in _json_list("sentence-ends", arg)])


@register("paragraph-ends", description="Paragraph i ends with sentence i (a JSON list of sentences); "
                                        "as many paragraphs as sentences.",
          example='paragraph-ends:["It was over.","Then the rain came."]', level="text")
def _paragraph_ends(arg):
    return ParagraphEnds(_json_list("paragraph-ends", arg))


__all__ = ["Count", "parse_count", "CharCount", "WordCount", "SentenceCount", "ParagraphCount", "WordAt",
           "CharAt", "StartsWithWord", "EndsWithWord", "OneWord", "EachSentence", "EachParagraph",
           "SentenceEnds", "ParagraphEnds", "ParagraphStarts", "StructureRule", "closing_text", "sentence_units", "paragraph_units",
           "single_word", "ANY"]
