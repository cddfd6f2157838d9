"""The structure rules of a conjunction merged into one plan for the decoder.

``plan_structure(constraint)`` gathers the structure rules among the top-level conjuncts
(the text's counts and word positions, every sentence's, every paragraph's, given sentence
ends and paragraph closings) into a ``StructurePlan``, and refuses, before any decoding,
targets no text can meet, saying why (``ImpossibleConstraint``): counts that exclude each
other, a word placed beyond the count, more given last words than sentences, a closing
sentence the splitter cuts in two, given words another rule bans, too few characters for
the words that must appear.

This module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constraints.base import CharConstraint, Constraint, ImpossibleConstraint, WordConstraint
from constraints.structure import (
    ANY,
    CharAt,
    Count,
    EachParagraph,
    EachSentence,
    EndsWithWord,
    OneWord,
    ParagraphEnds,
    ParagraphStarts,
    SentenceEnds,
    StartsWithWord,
    StructureRule,
    WordAt,
    _CountRule,
    _ordinal,
    _same,
    _short,
    closing_text,
)
from constraints.units import WORD_RE, counted_words, iter_words, sentences, unit


@dataclass
class UnitPlan:
    """What one kind of unit (the text, every sentence, every paragraph) must satisfy."""

    chars: Count = ANY
    words: Count = ANY
    sentences: Count = ANY
    paragraphs: Count = ANY
    at: dict[int, str] = field(default_factory=dict)  # word positions; 1 first, -1 last
    char_at: dict[int, str] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)  # what -> specs, for messages

    def first(self) -> str | None:
        return self.at.get(1)

    def last(self) -> str | None:
        return self.at.get(-1)

    def named(self, what: str) -> str:
        return " & ".join(f"'{s}'" for s in self.rules.get(what, [])) or "the rules"


@dataclass
class StructurePlan:
    """The structure rules of a conjunction, merged, for the decoder to plan with."""

    text: UnitPlan = field(default_factory=UnitPlan)
    sentence: UnitPlan = field(default_factory=UnitPlan)
    paragraph: UnitPlan = field(default_factory=UnitPlan)
    sentence_ends: tuple[str, ...] = ()
    paragraph_ends: tuple[str, ...] = ()  # as given
    paragraph_starts: dict[int, str] = field(default_factory=dict)  # paragraph (1-based) -> its first word
    one_word: bool = False
    specs: tuple[str, ...] = ()

    @property
    def closings(self) -> tuple[str, ...]:
        """The given paragraph-closing sentences as they will be written."""
        return tuple(closing_text(s) for s in self.paragraph_ends)

    @property
    def sentence_rules(self) -> bool:
        """Whether any rule counts or addresses sentences or paragraphs."""
        s, p, t = self.sentence, self.paragraph, self.text
        return bool(s.rules or p.rules or self.sentence_ends or self.paragraph_ends or self.paragraph_starts
                    or t.sentences != ANY or t.paragraphs != ANY)


def _add(unit_plan: UnitPlan, rule: Constraint, origin: str) -> None:
    def note(what):
        unit_plan.rules.setdefault(what, []).append(origin)

    if isinstance(rule, _CountRule):
        attr = {"chars": "chars", "words": "words", "sentences": "sentences", "paragraphs": "paragraphs"}[rule.name]
        merged = getattr(unit_plan, attr).meet(rule.count)
        note(attr)
        if merged.empty:
            raise ImpossibleConstraint(f"{unit_plan.named(attr)}: no number of {rule.what} satisfies them all")
        setattr(unit_plan, attr, merged)
        return
    if isinstance(rule, (WordAt, StartsWithWord, EndsWithWord)):
        positions = rule.positions if isinstance(rule, WordAt) else {1 if rule.index == 0 else -1: rule.word}
        note("at")
        for p, w in positions.items():
            old = unit_plan.at.get(p)
            if old is not None and not _same(old, w):
                raise ImpossibleConstraint(f"{unit_plan.named('at')}: the {_ordinal(p)} word cannot be both "
                                           f"{old!r} and {w!r}")
            unit_plan.at[p] = w
        return
    if isinstance(rule, CharAt):
        note("char_at")
        for p, c in rule.positions.items():
            old = unit_plan.char_at.get(p)
            if old is not None and old.lower() != c.lower():
                raise ImpossibleConstraint(f"{unit_plan.named('char_at')}: the {_ordinal(p)} character cannot "
                                           f"be both {old!r} and {c!r}")
            unit_plan.char_at[p] = c
        return
    raise TypeError(rule)


def _settle_positions(u: UnitPlan, where: str) -> None:
    """Word positions against the word count: beyond it is impossible; with an exact count a
    negative position becomes a positive one."""
    n = u.words
    for p, w in sorted(u.at.items()):
        if n.hi is not None and abs(p) > n.hi:
            raise ImpossibleConstraint(f"{u.named('at')} needs a {_ordinal(p)} word {w!r} {where}, but "
                                       f"{u.named('words')} allows at most {n.hi} words")
    if n.exact is not None:
        for p in [p for p in u.at if p < 0]:
            q = n.exact + 1 + p
            w = u.at.pop(p)
            if q in u.at and not _same(u.at[q], w):
                raise ImpossibleConstraint(f"{u.named('at')}: with {n.exact} words {where}, the "
                                           f"{_ordinal(p)} word is the {_ordinal(q)}, which cannot be both "
                                           f"{u.at[q]!r} and {w!r}")
            u.at[q] = w
    need = max([p for p in u.at if p > 0] + [1 if u.at else 0])
    if -1 in u.at and 1 in u.at and n.hi == 1 and not _same(u.at[1], u.at[-1]):
        raise ImpossibleConstraint(f"{u.named('at')}: a one-word {where} cannot start with {u.at[1]!r} "
                                   f"and end with {u.at[-1]!r}")
    if need > 0 and u.words.lo < need:
        u.words = Count(need, u.words.hi)
    if -1 in u.at and u.words.lo < 1:
        u.words = Count(1, u.words.hi)


def _banned_by(constraint: Constraint, text: str) -> str | None:
    """The spec of a character or word rule of ``constraint`` that ``text`` breaks."""
    for leaf in constraint.leaves():
        if isinstance(leaf, CharConstraint) and leaf.check(text):
            return leaf.spec()
        if isinstance(leaf, WordConstraint) and getattr(leaf, "scope", "every") == "every":
            if any(not leaf.word_ok(m.group()) for m in iter_words(text)):
                return leaf.spec()
    return None


def plan_structure(constraint: Constraint | None) -> StructurePlan | None:
    """The structure rules of ``constraint`` (its top-level conjuncts) merged into one plan,
    or None if it has none.  Raises ImpossibleConstraint, with the reason, for targets no
    text can meet."""
    if constraint is None:
        return None
    leaves = constraint.leaves()
    rules = [c for c in leaves if isinstance(c, StructureRule)]
    if not rules:
        return None
    plan = StructurePlan(specs=tuple(r.spec() for r in rules))
    for r in rules:
        if isinstance(r, EachSentence):
            for p in r.parts:
                _add(plan.sentence, p, r.spec())
        elif isinstance(r, EachParagraph):
            for p in r.parts:
                _add(plan.paragraph, p, r.spec())
        elif isinstance(r, OneWord):
            plan.one_word = True
        elif isinstance(r, SentenceEnds):
            if plan.sentence_ends and plan.sentence_ends != r.words:
                raise ImpossibleConstraint(f"two different 'sentence-ends' lists: {plan.sentence_ends} and {r.words}")
            plan.sentence_ends = r.words
        elif isinstance(r, ParagraphStarts):
            for i, w in r.starts.items():
                old = plan.paragraph_starts.get(i)
                if old is not None and not _same(old, w):
                    raise ImpossibleConstraint(f"paragraph {i} cannot start with both {old!r} and {w!r}")
                plan.paragraph_starts[i] = w
        elif isinstance(r, ParagraphEnds):
            if plan.paragraph_ends and plan.paragraph_ends != r.sentences:
                raise ImpossibleConstraint("two different 'paragraph-ends' lists")
            plan.paragraph_ends = r.sentences
        else:
            _add(plan.text, r, r.spec())
    _validate(plan, constraint)
    return plan


def _validate(plan: StructurePlan, constraint: Constraint) -> None:
    t, s, p = plan.text, plan.sentence, plan.paragraph
    _settle_positions(t, "in the text")
    _settle_positions(s, "in a sentence")
    _settle_positions(p, "in a paragraph")
    for u, keys in ((s, ("chars", "char_at")), (p, ("chars", "char_at"))):
        for k in keys:
            if k in u.rules:
                raise ImpossibleConstraint(f"{u.named(k)}: the decoder places characters in the whole text "
                                           "only; a per-sentence or per-paragraph character rule can be "
                                           "checked but not decoded")
    inner = [q for q in p.at if q not in (1, -1)]
    if inner:
        raise ImpossibleConstraint(f"{p.named('at')}: per paragraph the decoder places the first and the "
                                   "last word only")
    ends, closings = plan.sentence_ends, plan.closings
    from constraints.sequence import Include

    includes = list(dict.fromkeys(w for c in constraint.leaves() if isinstance(c, Include) for w in c.words))
    if plan.one_word:
        _validate_one_word(plan, includes)
        return
    # Paragraphs.
    if closings:
        n = len(closings)
        if n not in t.paragraphs:
            raise ImpossibleConstraint(f"'paragraph-ends' gives {n} paragraphs but {t.named('paragraphs')} "
                                       f"needs {t.paragraphs.describe('paragraphs')}")
        t.paragraphs = Count(n, n)
        for c, given in zip(closings, plan.paragraph_ends):
            got = sentences(c)
            if len(got) != 1:
                raise ImpossibleConstraint(f"'paragraph-ends': {_short(given)!r} is {len(got)} sentences to the "
                                           f"sentence splitter (it splits after {_short(got[0].strip(), 30)!r}), "
                                           "so no paragraph can end with it")
            nw = len(counted_words(unit(c)))
            if nw not in s.words:
                raise ImpossibleConstraint(f"'paragraph-ends': {_short(given)!r} has {nw} words but "
                                           f"{s.named('words')} needs {s.words.describe('words')}")
    if plan.paragraph_starts:
        far = max(plan.paragraph_starts)
        if t.paragraphs.hi is not None and far > t.paragraphs.hi:
            raise ImpossibleConstraint(f"'paragraph-starts' gives paragraph {far} a first word but "
                                       f"{t.named('paragraphs')} allows at most {t.paragraphs.hi}")
        first = p.at.get(1)
        for i, w in plan.paragraph_starts.items():
            if first is not None and not _same(first, w):
                raise ImpossibleConstraint(f"paragraph {i} must start with {w!r} ('paragraph-starts') and with "
                                           f"{first!r} ({p.named('at')})")
        t.paragraphs = Count(max(t.paragraphs.lo, far), t.paragraphs.hi)
    if t.paragraphs.lo < 1:
        t.paragraphs = Count(1, t.paragraphs.hi)
    if p.sentences.lo < 1:
        p.sentences = Count(1, p.sentences.hi)
    # Sentences.
    if ends:
        if t.sentences.hi is not None and len(ends) > t.sentences.hi:
            raise ImpossibleConstraint(f"'sentence-ends' names {len(ends)} sentences but {t.named('sentences')} "
                                       f"allows at most {t.sentences.hi}")
        t.sentences = Count(max(t.sentences.lo, len(ends)), t.sentences.hi)
        last = s.at.get(-1)
        for i, w in enumerate(ends, 1):
            if last is not None and not _same(last, w):
                raise ImpossibleConstraint(f"sentence {i} must end with {w!r} ('sentence-ends') and with "
                                           f"{last!r} ({s.named('at')})")
    low_s = max(t.sentences.lo, t.paragraphs.lo * p.sentences.lo, 1)
    high_s = None
    if t.paragraphs.hi is not None and p.sentences.hi is not None:
        high_s = t.paragraphs.hi * p.sentences.hi
    if t.sentences.hi is not None:
        high_s = t.sentences.hi if high_s is None else min(high_s, t.sentences.hi)
    if high_s is not None and high_s < low_s:
        raise ImpossibleConstraint(f"{t.named('paragraphs')} & {p.named('sentences')} & {t.named('sentences')}: "
                                   f"the text needs at least {low_s} sentences but can hold at most {high_s}")
    t.sentences = Count(low_s, high_s)
    # Words.
    low_w = max(t.words.lo, low_s * max(s.words.lo, 1))
    if t.words.hi is not None and t.words.hi < low_s * max(s.words.lo, 1):
        raise ImpossibleConstraint(f"{t.named('words')} allows at most {t.words.hi} words but the text needs "
                                   f"{low_s} sentence{'s' if low_s != 1 else ''} of at least {max(s.words.lo, 1)} "
                                   f"word{'s' if max(s.words.lo, 1) != 1 else ''}")
    if high_s is not None and s.words.hi is not None and t.words.lo > high_s * s.words.hi:
        raise ImpossibleConstraint(f"{t.named('words')} needs {t.words.lo} words but at most {high_s} sentences "
                                   f"of at most {s.words.hi} words can hold only {high_s * s.words.hi}")
    if len(includes) > (t.words.hi if t.words.hi is not None else len(includes)):
        raise ImpossibleConstraint(f"the text must use {len(includes)} given words but {t.named('words')} "
                                   f"allows only {t.words.hi}")
    # Characters.
    least = _least_chars(plan, low_s, low_w, [list(t.at.values()), list(ends), includes])
    if t.chars.hi is not None and least[0] > t.chars.hi:
        raise ImpossibleConstraint(f"{t.named('chars')} allows at most {t.chars.hi} characters but the text "
                                   f"needs at least {least[0]} ({least[1]})")
    if t.char_at:
        raise ImpossibleConstraint(f"{t.named('char_at')}: characters at positions are decoded for "
                                   "a single word (with one-word); in longer texts they can only be checked")
    # Given words and sentences against the other rules.
    given = list(t.at.values()) + list(s.at.values()) + list(p.at.values()) + list(ends)
    for what, items in (("word", given + list(plan.paragraph_starts.values())),
                        ("sentence", list(closings))):
        for item in items:
            bad = _banned_by(constraint, item)
            if bad:
                raise ImpossibleConstraint(f"the given {what} {_short(item)!r} breaks '{bad}'")


def _least_chars(plan: StructurePlan, n_sent: int, n_words: int, groups: list[list[str]]) -> tuple[int, str]:
    """The fewest characters a text of the plan can have, and what they are for.  ``groups``:
    lists of given words (positions, sentence ends, must-use words); a word may belong to
    several, so only the longest group counts, which keeps this a lower bound."""
    closings = plan.closings
    free_sent = max(0, n_sent - len(closings))
    in_closings = sum(len(counted_words(unit(c))) for c in closings)
    free_words = max(n_words - in_closings, free_sent * max(plan.sentence.words.lo, 1))
    fixed = max(groups, key=lambda g: sum(len(w) for w in g), default=[])
    letters = sum(len(w) for w in fixed) + max(0, free_words - len(fixed))
    spaces = max(0, free_words - free_sent) + max(0, n_sent - 1)
    total = letters + spaces + free_sent + sum(len(c) for c in closings)
    parts = [", ".join(repr(w) for w in fixed[:3]) + ("…" if len(fixed) > 3 else "")] if fixed else []
    parts.append(f"{free_words} word{'s' if free_words != 1 else ''}")
    if free_sent:
        parts.append(f"{free_sent} sentence end{'s' if free_sent != 1 else ''}")
    if closings:
        parts.append(f"{len(closings)} given sentence{'s' if len(closings) != 1 else ''}")
    return total, ", ".join(parts)


def _validate_one_word(plan: StructurePlan, includes: list[str]) -> None:
    t = plan.text
    if plan.sentence_ends or plan.paragraph_ends or plan.sentence.rules or plan.paragraph.rules:
        raise ImpossibleConstraint("'one-word' cannot be combined with sentence or paragraph rules")
    for what, cnt in (("words", t.words), ("sentences", t.sentences), ("paragraphs", t.paragraphs)):
        if cnt.lo > 1:
            raise ImpossibleConstraint(f"'one-word' and {t.named(what)}: a single word is one of {what} only")
    if len(set(includes)) > 1:
        raise ImpossibleConstraint(f"'one-word' cannot use {len(set(includes))} different given words")
    for pos, w in t.at.items():
        if includes and not _same(w, includes[0]):
            raise ImpossibleConstraint(f"'one-word': the word is {w!r} ({t.named('at')}) and must be "
                                       f"{includes[0]!r} (include)")
    fixed = list(t.at.values()) + includes
    for w in fixed:
        if not WORD_RE.fullmatch(w):
            raise ImpossibleConstraint(f"'one-word': {w!r} is not a single word of letters")
        if len(w) not in t.chars:
            raise ImpossibleConstraint(f"'one-word': the word {w!r} has {len(w)} characters but "
                                       f"{t.named('chars')} needs {t.chars.describe('characters')}")
    far = max([abs(p) for p in t.char_at] + [0])
    if t.chars.hi is not None and far > t.chars.hi:
        raise ImpossibleConstraint(f"{t.named('char_at')} needs a character at position {far} but "
                                   f"{t.named('chars')} allows at most {t.chars.hi}")
    for p_, c in t.char_at.items():
        if not c.isalpha():
            raise ImpossibleConstraint(f"{t.named('char_at')}: a single word has only letters, not {c!r}")
    if t.chars.exact is not None:
        n = t.chars.exact
        seen: dict[int, str] = {}
        for p_, c in t.char_at.items():
            i = p_ - 1 if p_ > 0 else n + p_
            if i in seen and seen[i].lower() != c.lower():
                raise ImpossibleConstraint(f"{t.named('char_at')}: in a {n}-letter word, position {i + 1} cannot "
                                           f"be both {seen[i]!r} and {c!r}")
            seen[i] = c
    if t.words.hi == 0:
        raise ImpossibleConstraint("'one-word' needs one word")
    t.words = Count(1, 1)
    t.sentences = Count(0, 1)
    t.paragraphs = Count(1, 1)


__all__ = ["UnitPlan", "StructurePlan", "plan_structure"]
