"""Occurrence counters for the decoder: each count rule (constraints/counts.py) as a small
automaton read a character at a time, so a token's effect from any state is known before
it is written (an occurrence split across tokens is counted where it completes).

An automaton has a ``start`` state, ``kind(ch)``: a stand-in character that every state
reads as it reads ``ch`` (tokens with the same stand-ins behave alike from every state,
so their effect is worked out once), and ``step(state, ch) -> (state, hits, nice)``: the
occurrences that ``ch`` completes, and how many of them are ones worth forcing (a
placeholder with something inside it, not ``[]``).  ``pending(state)``: occurrences the
end of the text would complete (a counted word still in progress).  ``alphabet``: one
character of each kind the automaton tells apart, enough to find the shortest way to the
next occurrence.  These are the decoder's own definitions; the rules' ``check`` finds the
occurrences with regular expressions and the word tokenizer, sharing only
constraints/units.py's idea of a letter.

A token's bytes may stop inside a character (shown as U+FFFD): it is read as a letter that
matches nothing counted, so it breaks a literal or a counted word in progress.
"""

from __future__ import annotations

from constraints.counts import (
    CapsWords, Highlights, LetterCount, OccurrenceCount, Placeholders, TextCount, WordCount,
)
from constraints.lexicon import normalize
from constraints.units import is_letter

PARTIAL = "\ufffd"


def _letter(ch: str) -> bool:
    return ch == PARTIAL or is_letter(ch)


def _other(avoid: str) -> str:
    """A letter not in ``avoid`` (the alphabet's 'any other letter')."""
    return next(c for c in "qxzjkvbwa" if c not in avoid.lower())


class LiteralCounter:
    """count-text / count-letter: non-overlapping matches, left to right (KMP).

    Every match counts, as ``check`` counts them; a match of a literal that starts with a
    letter is worth forcing only where it starts a word (" sneaker", not "tis|sneaker",
    which word rules would refuse).  State: (matched length, whether the match in progress
    starts a word, whether the last character was a letter)."""

    start = (0, True, False)

    def __init__(self, literal: str, case: bool):
        self.case = case
        self.lit = literal if case else literal.lower()
        fail, k = [0] * len(self.lit), 0
        for i in range(1, len(self.lit)):
            while k and self.lit[i] != self.lit[k]:
                k = fail[k - 1]
            if self.lit[i] == self.lit[k]:
                k += 1
            fail[i] = k
        self.fail = fail
        self.wordish = len(self.lit) > 1 and _letter(self.lit[0])  # a letter count is forced anywhere
        self.alphabet = tuple(dict.fromkeys(self.lit + _other(self.lit) + " "))

    def kind(self, ch: str) -> str:
        c = ch if self.case else ch.lower()
        if c in self.lit:
            return c
        return _other(self.lit) if _letter(ch) else "\x00"

    def step(self, state, ch: str):
        s, clean, prev_letter = state
        c = ch if self.case else ch.lower()
        lit = self.lit
        while s and lit[s] != c:
            k = self.fail[s - 1]
            clean = not _letter(lit[s - k - 1])  # the shorter match starts after lit[s-k-1]
            s = k
        letter = _letter(ch)
        if lit[s] == c:
            if s == 0:
                clean = not prev_letter
            s += 1
            if s == len(lit):
                # Matches do not overlap: start afresh after one.
                return (0, True, letter), 1, int(clean or not self.wordish)
        # One state per situation: without a match in progress "clean" says nothing; within
        # one, the last character is the literal's, so "letter" is known (fewer states to table).
        return ((s, clean, _letter(lit[s - 1])) if s else (0, True, letter)), 0, 0

    def pending(self, s) -> int:
        return 0


OUT = "out"
DEAD = -1


class WordCounter:
    """count-word: the word as a whole word.  State: OUT (between words), or (matched,
    apostrophe): how much of the word in progress matches (DEAD: it cannot be the word),
    and whether it ends with an apostrophe that joins only if a letter follows."""

    start = OUT

    def __init__(self, word: str):
        self.w = normalize(word)
        self.alphabet = tuple(dict.fromkeys(self.w + "' " + _other(self.w)))

    def _match(self, m: int, piece: str) -> int:
        if m == DEAD or not self.w.startswith(piece, m):
            return DEAD
        return m + len(piece)

    def kind(self, ch: str) -> str:
        c = normalize(ch)
        if c in self.w or c == "'":
            return c
        return PARTIAL if _letter(ch) else " "

    def step(self, s, ch: str):
        c = normalize(ch)
        if _letter(ch):
            if s == OUT:
                return (self._match(0, c), False), 0, 0
            m, apos = s
            return (self._match(m, "'" + c if apos else c), False), 0, 0
        if c == "'" and s != OUT and not s[1]:
            return (s[0], True), 0, 0
        # Anything else ends the word in progress (before a dangling apostrophe).
        hit = int(s != OUT and s[0] == len(self.w))
        return OUT, hit, hit

    def pending(self, s) -> int:
        return int(s != OUT and s[0] == len(self.w))


class CapsCounter:
    """caps-words: runs of letters with a capital and no small letter.  An apostrophe
    ends a run, as the word tokenizer cuts "I'm" into "I" and "'m"."""

    start = OUT
    alphabet = ("A", "a", " ")

    def kind(self, ch: str) -> str:
        if not _letter(ch):
            return " "
        return "A" if ch == PARTIAL or ch.isupper() else "a" if ch.islower() else "\u05d0"

    def step(self, s, ch: str):
        if _letter(ch):
            # A partial character may be a capital: counted as one (never fewer caps words
            # than the text has, for an upper bound; forcing writes ASCII).
            up = ch == PARTIAL or ch.isupper()
            low = ch.islower()
            if s == OUT:
                return ("up" if up else "low" if low else "none"), 0, 0
            if s == "low" or low:
                return "low", 0, 0
            return ("up" if up or s == "up" else "none"), 0, 0
        hit = int(s == "up")
        return OUT, hit, hit

    def pending(self, s) -> int:
        return int(s == "up")


def _level(ch: str) -> int:
    """What one character puts inside a placeholder or highlight: 0 nothing (a space),
    1 something, 2 a word's letter or digit (only such insides are worth forcing)."""
    return 0 if ch.isspace() else 2 if ch.isalnum() or ch == PARTIAL else 1


def _inside_kind(ch: str, marks: str) -> str:
    return ch if ch in marks else " .a"[_level(ch)]  # a stand-in of the same level


class PlaceholderCounter:
    """placeholders: ``\\[.*?\\]``: from a ``[`` to the first ``]`` on the same line.
    State: OUT, or the level of what is inside so far."""

    start = OUT
    alphabet = ("[", "]", "a", ".", " ", "\n")

    def kind(self, ch: str) -> str:
        return _inside_kind(ch, "[]\n")

    def step(self, s, ch: str):
        if s == OUT:
            return (0 if ch == "[" else OUT), 0, 0
        if ch == "]":
            return OUT, 1, int(s == 2)
        if ch == "\n":
            return OUT, 0, 0  # no match from this [ (nor from any [ after it on the line)
        return max(s, _level(ch)), 0, 0

    def pending(self, s) -> int:
        return 0


class HighlightCounter:
    """highlights: IFEval's two patterns, read together: ``\\*[^\\n*]*\\*`` (the first
    part of the state) and ``\\*\\*[^\\n*]*\\*\\*`` (the second), each match counted when
    not blank inside (and worth forcing when a letter or digit is inside)."""

    start = (OUT, OUT)
    alphabet = ("*", "a", ".", " ", "\n")

    def kind(self, ch: str) -> str:
        return _inside_kind(ch, "*\n")

    @staticmethod
    def _single(a, ch):
        # OUT, or the level inside since the opening star.
        if a == OUT:
            return (0 if ch == "*" else OUT), 0, 0
        if ch == "*":
            return OUT, int(a >= 1), int(a == 2)
        if ch == "\n":
            return OUT, 0, 0
        return max(a, _level(ch)), 0, 0

    @staticmethod
    def _double(b, ch):
        # OUT; "1": one opening star; ("in", level); ("close", level): one closing star.
        if b == OUT:
            return ("1" if ch == "*" else OUT), 0, 0
        if b == "1":
            return (("in", 0) if ch == "*" else OUT), 0, 0
        kind, level = b
        if kind == "in":
            if ch == "*":
                return ("close", level), 0, 0
            if ch == "\n":
                return OUT, 0, 0
            return ("in", max(level, _level(ch))), 0, 0
        if ch == "*":
            return OUT, int(level >= 1), int(level == 2)
        # "**" "*" then not a star: the match tried one star later has this as content.
        if level == 0 and ch != "\n":
            return ("in", _level(ch)), 0, 0
        return OUT, 0, 0

    def step(self, s, ch: str):
        a, ha, na = self._single(s[0], ch)
        b, hb, nb = self._double(s[1], ch)
        return (a, b), ha + hb, na + nb

    def pending(self, s) -> int:
        return 0


def counter_for(rule: OccurrenceCount):
    """The automaton counting ``rule``'s occurrences."""
    if isinstance(rule, TextCount):
        return LiteralCounter(rule.literal, rule.case)
    if isinstance(rule, LetterCount):
        return LiteralCounter(rule.letter, False)
    if isinstance(rule, WordCount):
        return WordCounter(rule.word)
    if isinstance(rule, CapsWords):
        return CapsCounter()
    if isinstance(rule, Placeholders):
        return PlaceholderCounter()
    if isinstance(rule, Highlights):
        return HighlightCounter()
    raise TypeError(f"no occurrence counter for {rule.spec()!r}")
