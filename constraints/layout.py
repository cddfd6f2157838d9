"""Layout rules: literal text at fixed places of the response, and line rules.

- ``starts-with-text:"TEXT"`` / ``ends-with-text:"TEXT"``: the whole response (stripped)
  starts / ends with the text, in any case (IFEval's "repeat the request" and "end with
  this exact phrase"; like IFEval's checker, double quotes around the response are ignored);
- ``wrap:"\\""`` / ``wrap:"<<",">>"``: the whole response between an opening and a
  closing literal (one literal: the same on both sides);
- ``title`` / ``title:"[","]"``: the first line is a title in ``<<double angle brackets>>``
  (or the given brackets), then a blank line, then the text;
- ``postscript:"P.S."``: the text ends with a paragraph starting with that marker;
- ``lines:COUNT``: that many lines, none blank;  ``each-line:(RULE)``: RULE (the literal
  rules above) holds on every line;
- ``bullets:COUNT``: markdown bullet lines, counted as IFEval counts them (``* item`` or
  ``- item``);  ``numbered:COUNT``: lines ``1. ...``, ``2. ...`` in order;
- ``sections:"MARKER",COUNT``: sections headed ``MARKER 1``, ``MARKER 2``, ... (split as
  IFEval splits them);
- ``paragraphs:COUNT;sep="***"``: paragraphs split by the separator, none empty (IFEval's
  ``***`` paragraphs; ``sep="******"`` for two responses).

Every ``check`` is written from IFEval's own checker (lm-eval ``tasks/ifeval``), counts as
COUNT (``N``, ``N..M``, ``>=N`` ...).  ``constraints.layout_plan`` turns the rules of a
conjunction into the one layout (literal segments and free slots) the decoder writes.
Literal arguments are read with ``split_list``, the spec language's item splitter.

This module never imports torch.
"""

from __future__ import annotations

import re

from constraints.base import (
    Constraint,
    SpecError,
    TextConstraint,
    Violation,
    register,
    require_arg,
    quote_item,
    shown,
    split_list,
)
from constraints.structure import Count, _end, parse_count

def literal_arg(items) -> str:
    """Literal items as a spec argument (each bare where that reads back the same)."""
    return ",".join(quote_item(s) for s in items)


def _literals(name: str, arg: str | None, least: int, most: int) -> list[str]:
    items = split_list(name, arg)
    if not least <= len(items) <= most:
        want = f"{least}" if least == most else f"{least} or {most}"
        raise SpecError(f"'{name}': expected {want} literal{'s' if most > 1 else ''} (quote one that holds a "
                        f"comma: {name}:\"a, b\"), got {len(items)}")
    for s in items:
        if not s.strip():
            raise SpecError(f"'{name}': an empty literal")
    return items


def _whole(text: str, rule: str, message: str) -> list[Violation]:
    return [Violation(0, len(text), rule, message)]


class LayoutRule(TextConstraint):
    """A rule about where literal text and lines stand in the whole response."""


# ---------------------------------------------------------------- literal edges


class StartsWithText(LayoutRule):
    def __init__(self, text: str):
        self.text = text

    def spec(self) -> str:
        return "starts-with-text:" + literal_arg([self.text])

    def describe(self) -> str:
        return f"starts with {shown(self.text)}"

    def check(self, text: str) -> list[Violation]:
        t, want = text.strip().lower(), self.text.strip().lower()
        if t.startswith(want) or t.lstrip('"').startswith(want):
            return []
        return [Violation(0, min(len(text), len(want)), self.spec(), f"does not start with {shown(self.text)}")]


class EndsWithText(LayoutRule):
    def __init__(self, text: str):
        self.text = text

    def spec(self) -> str:
        return "ends-with-text:" + literal_arg([self.text])

    def describe(self) -> str:
        return f"ends with {shown(self.text)}"

    def check(self, text: str) -> list[Violation]:
        # IFEval's EndChecker: stripped, outer double quotes stripped, any case.
        if text.strip().strip('"').lower().endswith(self.text.strip().lower()):
            return []
        return [_end(text, self.spec(), f"does not end with {shown(self.text)}")]


class Wrap(LayoutRule):
    def __init__(self, opening: str, closing: str):
        self.opening, self.closing = opening, closing

    def spec(self) -> str:
        items = [self.opening] if self.opening == self.closing else [self.opening, self.closing]
        return "wrap:" + literal_arg(items)

    def describe(self) -> str:
        return f"wrapped in {shown(self.opening)} … {shown(self.closing)}"

    def check(self, text: str) -> list[Violation]:
        t = text.strip()
        o, c = self.opening, self.closing
        if len(t) >= len(o) + len(c) + 1 and t.startswith(o) and t.endswith(c) \
                and t[len(o):len(t) - len(c)].strip():
            return []
        return _whole(text, self.spec(), f"is not wrapped in {shown(o)} … {shown(c)}")


class Title(LayoutRule):
    def __init__(self, opening: str = "<<", closing: str = ">>"):
        self.opening, self.closing = opening, closing

    def spec(self) -> str:
        if (self.opening, self.closing) == ("<<", ">>"):
            return "title"
        return "title:" + literal_arg([self.opening, self.closing])

    def describe(self) -> str:
        return f"a title line in {self.opening}…{self.closing}"

    def check(self, text: str) -> list[Violation]:
        # The title heads the text, or follows its opening paragraph (a request the answer
        # must repeat first, starts-with-text).
        body = text.strip().lstrip('"')
        why = self._headed(body)
        if not why:
            return []
        _opening, sep, rest = body.partition("\n\n")
        if sep and not self._headed(rest.lstrip("\n")):
            return []
        return _whole(text, self.spec(), why)

    def _headed(self, text: str) -> str:
        """Why ``text`` does not start with this title line and a blank line ("": it does)."""
        lines = text.split("\n")
        first = lines[0].strip()
        o, c = self.opening, self.closing
        if not (first.startswith(o) and first.endswith(c) and len(first) > len(o) + len(c)
                and first[len(o):len(first) - len(c)].strip()):
            return f"the first line is not a title in {o}…{c}"
        if len(lines) < 3 or lines[1].strip() or not "\n".join(lines[2:]).strip():
            return "the title is not followed by a blank line and the text"
        return ""


class Postscript(LayoutRule):
    def __init__(self, marker: str):
        self.marker = marker

    def spec(self) -> str:
        return "postscript:" + literal_arg([self.marker])

    def describe(self) -> str:
        return f"ends with a postscript starting {shown(self.marker)}"

    def check(self, text: str) -> list[Violation]:
        last = text.strip().strip('"').split("\n\n")[-1].strip()
        if len(text.strip().split("\n\n")) > 1 and last.lower().startswith(self.marker.lower()) \
                and last[len(self.marker):].strip():
            return []
        return [_end(text, self.spec(), f"does not end with a paragraph starting {shown(self.marker)}")]


# ---------------------------------------------------------------- lines and lists


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line of the text between its first and last non-space."""
    a = len(text) - len(text.lstrip())
    b = len(text.rstrip())
    out, start = [], a
    while True:
        i = text.find("\n", start, b)
        if i == -1:
            out.append((start, b))
            return out
        out.append((start, i))
        start = i + 1


class _Counted(LayoutRule):
    name, what = "", ""

    def __init__(self, count: Count):
        self.count = count

    def spec(self) -> str:
        return f"{self.name}:{self.count.spec()}"

    def describe(self) -> str:
        return self.count.describe(self.what)

    def found(self, text: str) -> int:
        raise TypeError

    def check(self, text: str) -> list[Violation]:
        n = self.found(text)
        if n in self.count:
            return []
        return [_end(text, self.spec(), f"has {n} {self.what}, needs {self.describe()}")]


class Lines(_Counted):
    name, what = "lines", "lines"

    def check(self, text: str) -> list[Violation]:
        spans = _lines(text)
        blank = [(a, b) for a, b in spans if not text[a:b].strip()]
        if blank and text.strip():
            a, b = blank[0]
            return [Violation(a, b, self.spec(), "has a blank line")]
        return super().check(text)

    def found(self, text: str) -> int:
        return len(_lines(text)) if text.strip() else 0


class Bullets(_Counted):
    name, what = "bullets", "bullet lines"

    def found(self, text: str) -> int:
        # IFEval's BulletListChecker, pattern for pattern.
        return len(re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE)) + \
            len(re.findall(r"^\s*-.*$", text, flags=re.MULTILINE))


NUMBERED_RE = re.compile(r"^[ \t]*(\d+)\.[ \t]", flags=re.MULTILINE)


class Numbered(_Counted):
    name, what = "numbered", "numbered lines"

    def check(self, text: str) -> list[Violation]:
        got = [int(m.group(1)) for m in NUMBERED_RE.finditer(text)]
        if got != list(range(1, len(got) + 1)):
            return _whole(text, self.spec(), f"the lines are numbered {got[:8]}, not 1, 2, 3, ...")
        return super().check(text)

    def found(self, text: str) -> int:
        return len(NUMBERED_RE.findall(text))


class Sections(_Counted):
    name, what = "sections", "sections"

    def __init__(self, marker: str, count: Count):
        super().__init__(count)
        self.marker = marker

    def spec(self) -> str:
        return f"sections:{literal_arg([self.marker])},{self.count.spec()}"

    def describe(self) -> str:
        return f"{self.count.describe('sections')} headed {self.marker} 1, {self.marker} 2, ..."

    def found(self, text: str) -> int:
        # IFEval's SectionChecker (the marker as a pattern there; literally here).
        return len(re.split(r"\s?" + re.escape(self.marker) + r"\s?\d+\s?", text)) - 1


class SeparatedParagraphs(_Counted):
    name, what = "paragraphs", "paragraphs"

    def __init__(self, count: Count, sep: str):
        super().__init__(count)
        self.sep = sep

    def spec(self) -> str:
        return f"paragraphs:{self.count.spec()};sep={literal_arg([self.sep])}"

    def describe(self) -> str:
        return f"{self.count.describe('paragraphs')} separated by {shown(self.sep)}"

    def check(self, text: str) -> list[Violation]:
        # IFEval's ParagraphChecker: an empty piece is allowed first or last only.
        pieces = re.split(r"\s?" + re.escape(self.sep) + r"\s?", text)
        for i, p in enumerate(pieces):
            if not p.strip() and 0 < i < len(pieces) - 1:
                return _whole(text, self.spec(), f"paragraph {i + 1} is empty")
        return super().check(text)

    def found(self, text: str) -> int:
        pieces = re.split(r"\s?" + re.escape(self.sep) + r"\s?", text)
        return sum(1 for p in pieces if p.strip())


PER_LINE = (StartsWithText, EndsWithText, Wrap)


class EachLine(LayoutRule):
    """Literal rules that hold on every line."""

    def __init__(self, inner: Constraint):
        parts = inner.leaves()
        for p in parts:
            if not isinstance(p, PER_LINE):
                raise SpecError(f"'each-line': {p.spec()!r} cannot apply per line; use starts-with-text, "
                                "ends-with-text or wrap (joined with &)")
        self.inner, self.parts = inner, parts

    def spec(self) -> str:
        return f"each-line:({self.inner.spec()})"

    def describe(self) -> str:
        return f"every line: {self.inner.describe()}"

    def check(self, text: str) -> list[Violation]:
        out, rule = [], self.spec()
        for i, (a, b) in enumerate(_lines(text), 1):
            for v in self.inner.check(text[a:b]):
                out.append(Violation(a + v.start, a + v.end, rule, f"line {i}: {v.message}"))
        return out


# ---------------------------------------------------------------- registry


def _one(name: str, arg: str | None) -> str:
    return _literals(name, arg, 1, 1)[0]


@register("starts-with-text", description="The whole response starts with this text (any case).",
          example='starts-with-text:"Dear reader,"', level="text")
def _starts_with_text(arg):
    return StartsWithText(_one("starts-with-text", arg))


@register("ends-with-text", description="The whole response ends with this text, nothing after it (any case).",
          example='ends-with-text:"Is there anything else?"', level="text")
def _ends_with_text(arg):
    return EndsWithText(_one("ends-with-text", arg))


@register("wrap", description="The whole response between an opening and a closing literal (one: both sides).",
          example='wrap:"<<",">>"', level="text")
def _wrap(arg):
    items = _literals("wrap", arg, 1, 2)
    return Wrap(items[0], items[-1])


@register("title", description="The first line is a title in <<double angle brackets>> (or the given two), "
                               "then a blank line.",
          example="title", level="text")
def _title(arg):
    if arg in (None, ""):
        return Title()
    o, c = _literals("title", arg, 2, 2)
    return Title(o, c)


@register("postscript", description="The text ends with a paragraph starting with this marker.",
          example='postscript:"P.S."', level="text")
def _postscript(arg):
    return Postscript(_one("postscript", arg))


@register("lines", description="How many lines (none blank): N, N..M, >=N, <=N.", example="lines:4", level="text")
def _lines_rule(arg):
    return Lines(parse_count("lines", arg))


@register("bullets", description="Exactly so many markdown bullet lines '* item', and no other bullet.",
          example="bullets:3", level="text")
def _bullets(arg):
    return Bullets(parse_count("bullets", arg))


@register("numbered", description="Numbered lines '1. ...', '2. ...': how many.", example="numbered:3", level="text")
def _numbered(arg):
    return Numbered(parse_count("numbered", arg))


@register("sections", description="Sections headed MARKER 1, MARKER 2, ...: the marker and how many.",
          example='sections:"SECTION",3', level="text")
def _sections(arg):
    a = require_arg("sections", arg)
    m = re.fullmatch(r"(.*),\s*([^,]+)", a, flags=re.S)
    if not m:
        raise SpecError(f"'sections': expected a marker and a count (e.g. sections:\"SECTION\",3), got {shown(a)}")
    marker = _one("sections", m.group(1))
    if not marker.strip() or any(ch.isdigit() for ch in marker[-1:]):
        raise SpecError(f"'sections': the marker {shown(marker)} must not end in a digit")
    return Sections(marker, parse_count("sections", m.group(2)))


def separated_paragraphs(arg: str) -> SeparatedParagraphs | None:
    """``COUNT;sep=LITERAL`` as paragraphs split by a separator (None: no ``;sep=``)."""
    m = re.fullmatch(r"\s*([^;]*?)\s*;\s*sep\s*=\s*(.*)", arg or "", flags=re.S)
    if not m:
        return None
    return SeparatedParagraphs(parse_count("paragraphs", m.group(1)), _one("paragraphs", m.group(2)))


@register("each-line", description="Literal rules (starts-with-text, ends-with-text, wrap) on every line.",
          example='each-line:(starts-with-text:"> ")', level="text", takes_spec=True)
def _each_line(inner):
    return EachLine(inner)


__all__ = ["LayoutRule", "StartsWithText", "EndsWithText", "Wrap", "Title", "Postscript", "Lines", "Bullets",
           "Numbered", "Sections", "SeparatedParagraphs", "EachLine", "literal_arg", "separated_paragraphs"]
