"""The constraint spec language shared by the UI, the CLI and the API.

    spec    := term ('|' term)*            or: every word obeys one of them
    term    := factor ('&' factor)*        and
    factor  := '!' factor | '(' spec ')' | atom
    atom    := NAME [':' ARG]              ARG runs to the next & | ) or end, outside
                                           quoted literals; or a JSON list ([...], one value)
    literal := '"' JSON string text '"'    any character: "," "\"" "(" "\n" ...

Examples: ``lipogram:e``, ``syllables:1 & starts-with:s``, ``!(starts-with:s | rhymes:day)``.
Several ``-c`` options on the command line are joined with ``&``.

Limits: at most ``MAX_DEPTH`` levels of nesting (``(``, ``!``, ``next:``) and ``MAX_RULES``
rules in one spec, and the server's caps (constraints/limits.py) on a spec's length
(``SPEC_CHARS``), one argument's length (``ARG_CHARS``) and the items of one list argument
(``ARG_ITEMS``).  Real specs stay far below all of them; past one, a pasted or generated
spec is refused in one line (naming the cap's setting) instead of overflowing the stack or
making every check crawl.
Quoted literals may be mixed with bare parts in one argument (``ban:",",";"``,
``count-text:"[",>=2``); the rules read them with constraints.base's split_list /
require_arg, and write them back quoted where a bare part would be read differently.
"""

from __future__ import annotations

import json
import re

from constraints import limits
from constraints.base import And, Constraint, Not, Or, SpecError, literal_end, lookup, shown, within

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
MAX_DEPTH = 32
MAX_RULES = 64


class _Parser:
    def __init__(self, text: str):
        self.s, self.i = text, 0
        self.depth = 0  # open '(' / '!' / scope wrappers around the current factor
        self.rules = 0

    def error(self, what: str) -> SpecError:
        return SpecError(f"bad spec {shown(self.s)}: {what} at position {self.i + 1}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> Constraint:
        if not self.s.strip():
            raise SpecError("empty constraint spec")
        c = self.expr()
        if self.peek():
            raise self.error(f"unexpected {shown(self.peek())}")
        return c

    def expr(self) -> Constraint:
        parts = [self.term()]
        while self.peek() == "|":
            self.i += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Or(*parts)

    def term(self) -> Constraint:
        parts = [self.factor()]
        while self.peek() == "&":
            self.i += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else And(*parts)

    def factor(self) -> Constraint:
        ch = self.peek()
        if ch == "!":
            self.i += 1
            return Not(self.nested(self.factor))
        if ch == "(":
            self.i += 1
            c = self.nested(self.expr)
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.i += 1
            return c
        if not ch:
            raise self.error("a constraint is missing")
        return self.atom()

    def nested(self, parse) -> Constraint:
        """``parse()`` one level deeper, refused past MAX_DEPTH."""
        if self.depth >= MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def atom(self) -> Constraint:
        m = _NAME.match(self.s, self.i)
        if not m:
            raise self.error(f"expected a constraint name, found {shown(self.s[self.i])}")
        self.rules += 1
        if self.rules > MAX_RULES:
            raise self.error(f"more than {MAX_RULES} rules in one spec")
        name = m.group().lower()
        self.i = m.end()
        entry = lookup(name)
        if self.i < len(self.s) and self.s[self.i] == ":":
            self.i += 1
            if entry.takes_spec:
                return entry.factory(self.nested(self.factor))
            arg = self.arg()
        else:
            if entry.takes_spec:
                raise SpecError(f"'{name}' needs a constraint after it, e.g. {entry.example}")
            arg = None
        try:
            return entry.factory(arg)
        except SpecError as e:  # the same kind (a cap stays a LimitError), with where it was
            raise type(e)(f"{e} (in {shown(self.s.strip())})") from None

    def arg(self) -> str:
        arg = self._arg()
        within(limits.ARG_CHARS, len(arg))
        return arg

    def _arg(self) -> str:
        self.ws()
        if self.i < len(self.s) and self.s[self.i] == "[":
            # A list of free text (sentences may hold & | ( ) and quotes): one JSON value.
            try:
                _value, end = json.JSONDecoder().raw_decode(self.s, self.i)
            except json.JSONDecodeError as e:
                raise SpecError(f"bad spec '{self.s}': the list at position {self.i + 1} is not valid "
                                f"JSON ({e.msg} at position {e.pos + 1})") from None
            arg, self.i = self.s[self.i:end], end
            return arg
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in "&|)":
            if self.s[self.i] == '"':  # a literal: & | ) and commas inside it are its text
                try:
                    self.i = literal_end(self.s, self.i)
                except SpecError as e:
                    raise self.error(str(e)) from None
            else:
                self.i += 1
        return self.s[start : self.i].strip()


def parse_spec(text: str) -> Constraint:
    """One spec string -> a Constraint.  Raises SpecError naming the problem."""
    if not isinstance(text, str):
        raise SpecError(f"a constraint spec must be text (got {type(text).__name__})")
    within(limits.SPEC_CHARS, len(text))  # before any parsing: the cost grows with the length
    return _Parser(text).parse()


def parse_specs(texts) -> Constraint | None:
    """Several specs (e.g. repeated -c options), joined with And; None if there are none."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise SpecError(f"constraint specs must be a list of spec strings (got {type(texts).__name__})")
    # Several specs are one set: their length together is capped as one spec's.
    within(limits.SPEC_CHARS, sum(len(t) for t in texts if isinstance(t, str)))
    cs = [parse_spec(t) for t in texts if t is not None]
    if not cs:
        return None
    return cs[0] if len(cs) == 1 else And(*cs)


def to_spec(constraint: Constraint | None) -> str:
    """The spec string a writer can paste into `perec -c` (round-trips through parse_spec)."""
    return "" if constraint is None else constraint.spec()
