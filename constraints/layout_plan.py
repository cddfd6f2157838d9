"""The layout rules of a conjunction merged into one layout for the decoder.

A layout is literal segments at fixed places with free slots between them, where the
model writes under every other rule:

    [wrap open][starts-with-text][title: OPEN slot CLOSE "\\n\\n"]
    body: one free slot, or a list of items (bullets, numbered, lines, sections,
          separated paragraphs): item prefix, slot, item suffix, joined by a separator
    [postscript: "\\n\\nP.S. " slot][ends-with-text][wrap close]

``plan_layout(constraint)`` builds it, or refuses (``ImpossibleConstraint``, with the
reason) before any decoding: two bodies, rules whose places clash, a literal another rule
bans.  ``LayoutPlan.segments(n)`` flattens it for ``n`` list items into
``[literal, slot, literal, ..., slot, literal]`` (literals may be empty), which
studio/masks/layout.py writes: literals forced, slots free, closed in time.

This module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constraints.base import Constraint, ImpossibleConstraint
from constraints.counts import OccurrenceCount
from constraints.layout import (
    Bullets,
    EachLine,
    EndsWithText,
    LayoutRule,
    Lines,
    Numbered,
    Postscript,
    Sections,
    SeparatedParagraphs,
    StartsWithText,
    Title,
    Wrap,
)
from constraints.structure import ANY, Count, StructureRule
from constraints.structure_plan import _banned_by
from constraints.units import iter_words

TITLE_TOKENS = 24  # the most tokens of a title
ITEM_TOKENS = 64  # ... of one line item


@dataclass(frozen=True)
class Slot:
    """Free text the model writes: on one line or not, never blank."""

    line: bool  # no line break inside
    max_tokens: int | None = None
    guard: str = ""  # characters no line of it may start with (they would make a bullet)
    banned: tuple[str, ...] = ()  # strings it may not hold (they would split or count)
    loose: bool = False  # the literal after it may begin with one more line break


@dataclass
class ListPlan:
    """A body of ``count`` items: prefix(i), a slot, suffix; ``sep`` between items."""

    count: Count
    prefix: object  # i (1-based) -> the literal before item i
    suffix: str
    sep: str
    slot: Slot
    own_line: bool  # the items start lines: the list stands on lines of its own


@dataclass
class LayoutPlan:
    before: list = field(default_factory=list)  # literals (str) and slots (Slot)
    body: ListPlan | Slot | None = None
    after: list = field(default_factory=list)

    @property
    def items(self) -> Count:
        return self.body.count if isinstance(self.body, ListPlan) else Count(1, 1)

    def segments(self, n: int) -> list:
        """The layout for ``n`` list items, flat: literals at even places, slots at odd
        places, adjacent literals joined."""
        parts = list(self.before)
        body = self.body
        if isinstance(body, ListPlan):
            if body.own_line and _text_before(parts):
                parts.append("\n")
            for i in range(1, n + 1):
                if i > 1:
                    parts.append(body.sep)
                parts += [body.prefix(i), body.slot, body.suffix]
        else:
            parts.append(body)
        for p in self.after:
            if isinstance(p, str) and p:
                p = _joined(parts, p, isinstance(body, ListPlan) and body.slot.line)
            parts.append(p)
        flat: list = [""]
        for p in parts:
            if isinstance(p, Slot):
                if not isinstance(flat[-1], str):
                    flat.append("")
                flat.append(p)
            elif isinstance(flat[-1], str):
                flat[-1] += p
            else:
                flat.append(p)
        if not isinstance(flat[-1], str):
            flat.append("")
        return flat

    def literals(self) -> list[str]:
        """Every literal the layout writes (with two items, so separators are among them)."""
        return [s for s in self.segments(min(max(self.items.lo, 2), self.items.hi or 2)) if isinstance(s, str) and s]


def _text_before(parts) -> bool:
    written = [p for p in parts if isinstance(p, Slot) or p]
    return bool(written) and not (isinstance(written[-1], str) and written[-1].endswith("\n"))


def _joined(parts, literal: str, after_lines: bool) -> str:
    """A literal right after free text: on a line of its own after a list of lines, after a
    space when it starts with a word (so the free text's last word stays whole)."""
    last = next((p for p in reversed(parts) if isinstance(p, Slot) or p), None)
    if not isinstance(last, Slot):
        return literal
    if after_lines and not literal.startswith("\n"):
        return "\n" + literal
    return " " + literal if literal[:1].isalnum() else literal


def literal_words(constraint: Constraint | None) -> set[str]:
    """The words the layout of ``constraint`` writes itself ("P.S.", a repeated request):
    the writer's own, which word rules take as written (plan_layout refuses a literal
    whose words break them).  Empty for no layout, or one no text can have."""
    try:
        plan = plan_layout(constraint)
    except ImpossibleConstraint:
        return set()  # refused in full by the feasibility check
    if plan is None:
        return set()
    return {m.group() for lit in plan.literals() for m in iter_words(lit)}


def plan_layout(constraint: Constraint | None) -> LayoutPlan | None:
    """The layout rules of ``constraint`` (its top-level conjuncts) as one layout, or None
    if it has none.  Raises ImpossibleConstraint, with the reason, for layouts no text can
    have."""
    if constraint is None:
        return None
    leaves = constraint.leaves()
    rules = list(dict.fromkeys(c for c in leaves if isinstance(c, LayoutRule)))
    if not rules:
        return None
    names = " & ".join(f"'{r.spec()}'" for r in rules)
    structure = [c for c in leaves if isinstance(c, StructureRule)]
    if structure:
        raise ImpossibleConstraint(f"{names} and '{structure[0].spec()}': layout rules cannot be combined with "
                                   "sentence, word or paragraph counts in this version")
    of = {kind: [r for r in rules if isinstance(r, kind)]
          for kind in (StartsWithText, EndsWithText, Wrap, Title, Postscript, Lines, Bullets, Numbered, Sections,
                       SeparatedParagraphs, EachLine)}
    for kind, rs in of.items():
        if len(rs) > 1:
            raise ImpossibleConstraint(f"'{rs[0].spec()}' and '{rs[1].spec()}' cannot both hold")
    one = {k: (v[0] if v else None) for k, v in of.items()}
    bodies = [one[k] for k in (Lines, Bullets, Numbered, Sections, SeparatedParagraphs) if one[k]]
    if len(bodies) > 1:
        raise ImpossibleConstraint(f"'{bodies[0].spec()}' and '{bodies[1].spec()}': the response can be laid out "
                                   "one way only")
    wrap, start, end, title = one[Wrap], one[StartsWithText], one[EndsWithText], one[Title]
    if wrap and (start or end) and not set(wrap.opening + wrap.closing) <= {'"'}:
        edge = start or end
        raise ImpossibleConstraint(f"'{edge.spec()}' and '{wrap.spec()}': the wrapping stands at the very edge of "
                                   "the response (only double quotes are looked through)")
    each = one[EachLine]
    if each and (set(rules) - {each, one[Lines]}):
        other = next(r for r in rules if r not in (each, one[Lines]))
        raise ImpossibleConstraint(f"'{each.spec()}' and '{other.spec()}': every line must obey it, and "
                                   f"'{other.spec()}' writes lines of its own")
    lines = one[Lines]
    if lines and (title or one[Postscript]):
        other = title or one[Postscript]
        raise ImpossibleConstraint(f"'{lines.spec()}' and '{other.spec()}': '{other.spec()}' writes lines of its "
                                   "own, which the line count would take in")
    bullets, numbered = one[Bullets], one[Numbered]
    guard = ("*-" if bullets else "") + ("0123456789" if numbered else "")
    banned = tuple(x for x in ((one[Sections].marker if one[Sections] else None),
                               (one[SeparatedParagraphs].sep if one[SeparatedParagraphs] else None)) if x)
    block = Slot(line=False, guard=guard, banned=banned)
    plan = LayoutPlan()
    if wrap:
        plan.before.append(wrap.opening)
    if start:
        plan.before.append(start.text)
    if start and title:
        plan.before.append("\n\n")  # the title follows the opening paragraph (Title.check)
    if title:
        # Neither mark inside the title: "<<A<<B>>" is one title to a checker, two to a reader.
        inside = Slot(line=True, max_tokens=TITLE_TOKENS, banned=banned + (title.opening, title.closing))
        plan.before += [title.opening, inside, title.closing + "\n\n"]
    plan.body = _body(one, block, each)
    if one[Postscript]:
        plan.after += ["\n\n" + one[Postscript].marker + " ", block]
    if end:
        plan.after.append(end.text)
    if wrap:
        plan.after.append(wrap.closing)
    for lit in plan.literals():
        bad = _banned_by(constraint, lit)
        if bad:
            raise ImpossibleConstraint(f"the layout of {names} writes {lit.strip()!r}, which breaks '{bad}'")
    # The literals alone may already hold more occurrences than a count allows (a repeated
    # request that names the word it limits).
    written = "\n".join(s for s in plan.segments(max(plan.items.lo, 1)) if isinstance(s, str))
    for leaf in leaves:
        if isinstance(leaf, OccurrenceCount) and leaf.count.hi is not None:
            n = len(leaf.spans(written))
            if n > leaf.count.hi:
                raise ImpossibleConstraint(f"the layout of {names} already writes {n} of what '{leaf.spec()}' "
                                           f"counts, which allows at most {leaf.count.hi}")
    return plan


def _body(one: dict, block: Slot, each: EachLine | None):
    # Bullets and numbered lines may stand a blank line apart (IFEval counts them alike).
    line = Slot(line=True, max_tokens=ITEM_TOKENS, loose=True)
    if one[Bullets]:
        return ListPlan(one[Bullets].count, lambda i: "* ", "", "\n", line, own_line=True)
    if one[Numbered]:
        return ListPlan(one[Numbered].count, lambda i: f"{i}. ", "", "\n", line, own_line=True)
    if one[Sections]:
        s = one[Sections]
        return ListPlan(s.count, lambda i, m=s.marker: f"{m} {i}\n", "", "\n\n", block, own_line=True)
    if one[SeparatedParagraphs]:
        p = one[SeparatedParagraphs]
        return ListPlan(p.count, lambda i: "", "", f"\n{p.sep}\n", block, own_line=False)
    if one[Lines] or each:
        prefix, suffix = "", ""
        for r in (each.parts if each else ()):
            if isinstance(r, StartsWithText):
                prefix += r.text
            elif isinstance(r, EndsWithText):
                suffix = r.text + suffix
            else:
                prefix, suffix = prefix + r.opening, r.closing + suffix
        count = one[Lines].count if one[Lines] else ANY
        return ListPlan(count, lambda i, p=prefix: p, suffix, "\n", Slot(line=True, max_tokens=ITEM_TOKENS),
                        own_line=False)
    return block


__all__ = ["Slot", "ListPlan", "LayoutPlan", "plan_layout"]
