"""``form:NAME`` as a constraint, and the word-level plan that decodes it.

``FormConstraint(form, given, end, partial, reading)`` is a whole-text rule: the text is
a poem of that form, continuing the ``given`` lines (already written, complete lines
that count against the form's lines, syllables and rhymes) and the ``partial`` line (the
writer's unfinished last line, which the text continues: "Autumn wind" is three of a
haiku's first five syllables).  ``check`` delegates to ``forms.check_form`` on the
writer's text plus the new text, and reports only what the new text breaks.  The
writer's text is never refused for its words: a word outside CMU is estimated from its
spelling and noted, and a given line ending in one leaves its rhyme unknown (the new
lines are not asked to match it; ``notes`` says so).

``FormPlan`` answers the decoder's word-level questions without torch: which words may
stand mid-line or end a line from the current position, and where a word leaves the
line.  The position is a *set* of syllable counts (under ``;lenient`` a word with two
pronunciations, "fire", moves the line to either), so the plan agrees with
``check_form``, which accepts a line when a choice of pronunciations hits the budget.
The words come from a ``WordTable`` of the writer's lexicon (constraints/lexicon.py:
common words by default) heard with the form's reading.

Spec syntax: ``form:NAME`` with NAME as in ``forms.parse_form`` and options after ``;``:
``end=.?!`` (the poem's last line ends with one of these marks), ``lenient`` (any
pronunciation of a word, the older reading) and ``letters`` (acronyms read as letters
count as words).
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from constraints.cache import BoundedCache
from constraints.base import SpecError, TextConstraint, Violation, register, require_arg, shown
from constraints.units import iter_words
from constraints.line_ends import line_enders
from constraints.forms import Form, FormError, FormReport, check_form, parse_form
from constraints.lexicon import DEFAULT_FLOOR, Lexicon, normalize, writer_lexicon
from constraints.phonetics import STRICT, Reading, estimate_syllables, letters_only, sound
from constraints.spelling import read_unknown

CLOSING = ",.;:!?"  # marks that may close a line (before its newline, or the poem's end)


def split_given(given) -> tuple[str, ...]:
    """Given lines from a string (newline-separated) or a list of them; blank lines drop."""
    if given is None:
        return ()
    items = [given] if isinstance(given, str) else given
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise FormError(f"given lines must be text or a list of lines (got {type(given).__name__})")
    return tuple(ln.strip() for item in items for ln in item.split("\n") if ln.strip())


def split_draft(text: str | None) -> tuple[tuple[str, ...], str]:
    """A writer's draft as (complete lines, unfinished last line): text after the last
    newline is a line still being written ("Autumn wind" -> ((), "Autumn wind"))."""
    text = text or ""
    head, _, tail = text.rpartition("\n")
    return split_given(head), tail.strip()


def _syllable_options(line: str, reading: Reading) -> set[int]:
    """Possible syllable totals of ``line`` (words outside CMU estimated from spelling)."""
    totals = {0}
    for m in iter_words(line):
        counts = sound(m.group(), reading).syllables or {estimate_syllables(m.group())}
        totals = {t + c for t in totals for c in counts}
    return totals


class FormConstraint(TextConstraint):
    """The text is a poem of ``form`` (after the ``given`` lines and continuing the
    ``partial`` line); ``end``: marks one of which must close the last line (the FUDGE
    couplet task wants ``.?!``); ``reading``: how words are heard (phonetics.Reading);
    ``enjamb``: the decoder may end a line on any word, "the" and "of" included (by default
    it closes lines only where a phrase can end: constraints.line_ends)."""

    def __init__(self, form: Form | str, given=(), end: str = "", partial: str = "",
                 reading: Reading = STRICT, enjamb: bool = False):
        if not isinstance(form, (Form, str)):
            raise FormError(f"a form must be a form name or spec (got {type(form).__name__})")
        if not isinstance(end or "", str):
            raise FormError(f"form end marks must be text, e.g. .?! (got {type(end).__name__})")
        self.form = parse_form(form) if isinstance(form, str) else form.validate()
        self.given = split_given(given)
        self.partial = (partial or "").strip()
        self.end = end or ""
        self.reading = reading
        self.enjamb = bool(enjamb)
        self._notes: list[str] = []
        bad = [c for c in self.end if c not in CLOSING]
        if bad:
            raise FormError(f"form end marks must be among {CLOSING!r}, not {bad[0]!r}")
        if "\n" in self.partial:
            raise FormError("the unfinished line is one line: it cannot hold a line break")
        if self.partial and len(self.given) < self.form.n_lines:
            budget = self.form.syllables[len(self.given)]
            have = min(_syllable_options(self.partial, reading))
            if have >= budget:
                # Nothing left to add to it: the writer's line is complete.
                self._notes.append(f"the last line already has {have} syllables (of {budget}): "
                                   "the poem goes on from the next line")
                self.given, self.partial = self.given + (self.partial,), ""
        if len(self.given) >= self.form.n_lines:
            raise FormError(f"{len(self.given)} given line(s) leave nothing to write: "
                            f"{self.form.name} has {self.form.n_lines} lines")
        self.given_rhymes = self._given_rhymes()

    @classmethod
    def from_arg(cls, arg: str, given=(), partial: str = "") -> "FormConstraint":
        """From the argument of ``form:`` ("couplet-iambic;end=.?!;lenient")."""
        a = parse_form_arg(arg)
        return cls(a.name, given, a.end, partial, a.reading, a.enjamb)

    # ------------------------------------------------------------------ given lines

    @property
    def given_text(self) -> str:
        return "".join(line + "\n" for line in self.given)

    @property
    def written(self) -> str:
        """The writer's text the new text continues: the given lines, then the partial one."""
        return self.given_text + self.partial

    def _given_rhymes(self) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
        """Letter -> (rhyme keys all its given lines share, their rhyme words).  A given
        line ending in a word of unknown sound is left out (noted); given lines that are
        known and do not rhyme are refused."""
        out: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for i, line in enumerate(self.given):
            words = [m.group() for m in iter_words(line)]
            if not words:
                raise FormError(f"given line {i + 1} has no words: {shown(line)}")
            letter = self.form.rhyme_letter(i)
            if letter is None:
                continue
            word = normalize(words[-1])
            keys = sound(word, self.reading).rhymes
            read = None if keys else read_unknown(word, self.reading)
            if read is not None:
                # An old or unknown spelling ("raine"): rhymed with as a reader hears it.
                keys = read.rhymes
                self._notes.append(f"given line {i + 1} ends in {shown(word)}, which is not in the CMU "
                                   "dictionary: its rhyme is heard as "
                                   + (f"{shown(read.as_word)}'s" if read.as_word else
                                      f"{' / '.join(sorted(keys))}, like the words spelt the same at the end"))
            if not keys:
                what = "is only read as letters in CMU" if letters_only(word) else "is not in the CMU dictionary"
                self._notes.append(f"given line {i + 1} ends in {shown(word)}, which {what}: its rhyme is "
                                   f"unknown, so the lines rhyming {letter} with it need not match it")
                continue
            live, used = out.get(letter, (None, ()))
            shared = keys if live is None else live & keys
            if not shared:
                raise FormError(f"given lines of rhyme {letter} do not rhyme: "
                                f"{', '.join(repr(w) for w in used + (word,))}"
                                + ("" if self.reading.lenient else " (;lenient hears any pronunciation)"))
            if word in used:
                raise FormError(f"given line {i + 1} repeats the rhyme word {shown(word)}")
            out[letter] = (shared, used + (word,))
        return out

    def notes(self) -> list[str]:
        """What the writer's text breaks or leaves unknown (syllables, stress, words outside
        CMU): reported, never refused; the new text is held to the form regardless."""
        out = list(self._notes)
        if self.given:
            report = check_form(self.form, self.given_text, self.reading)
            for ln in report.lines:
                out += [f"given {v.message}" for v in ln.violations
                        if "syllables" in v.message or "stress" in v.message]
                if ln.estimated:
                    out.append(f"given line {ln.number}: {', '.join(map(repr, ln.estimated))} not in "
                               "the CMU dictionary; syllables estimated from spelling")
        if self.partial:
            unknown = [m.group() for m in iter_words(self.partial) if not sound(m.group(), self.reading).phones]
            if unknown:
                out.append(f"the unfinished line: {', '.join(map(repr, unknown))} not in the CMU "
                           "dictionary; syllables estimated from spelling")
        return out

    # ------------------------------------------------------------------ constraint

    def options(self) -> str:
        return (f";end={self.end}" if self.end else "") + self.reading.options(";") + \
            (";enjamb" if self.enjamb else "")

    def spec(self) -> str:
        return "form:" + self.form.spec() + self.options()

    def describe(self) -> str:
        extra = f", after {len(self.given)} given line(s)" if self.given else ""
        if self.partial:
            extra += f", continuing {self.partial!r}"
        return f"a {self.form.name} ({'-'.join(map(str, self.form.syllables))} syllables, " \
               f"rhymes {self.form.rhyme}){extra}"

    def __eq__(self, other) -> bool:
        return isinstance(other, FormConstraint) and \
            (self.spec(), self.given, self.partial) == (other.spec(), other.given, other.partial)

    def __hash__(self) -> int:
        return hash((self.spec(), self.given, self.partial))

    def report(self, text: str) -> FormReport:
        """check_form's per-line report of the writer's text followed by ``text``."""
        return check_form(self.form, self.written + text, self.reading)

    def check(self, text: str) -> list[Violation]:
        rep = self.report(text)
        off = len(self.written)
        out: list[Violation] = []
        first_new = len(self.given)  # the partial line, when there is one, is partly new
        for n, ln in enumerate(rep.lines):
            for v in ln.violations:
                if n >= first_new:
                    if v.end <= off and self.partial:
                        continue  # a word of the writer's unfinished line: noted, not refused
                    out.append(Violation(max(0, v.start - off), max(0, v.end - off), v.rule, v.message))
                elif ln.rhyme_span and v.start == ln.rhyme_span[0] and "rhyme" in v.message:
                    # A given line left out of the rhyme the new lines chose: theirs to answer for.
                    # (Its word being outside CMU is the writer's, noted and never refused.)
                    out.append(Violation(0, 0, v.rule, f"given line {n + 1}: {v.message}"))
        out += [Violation(max(0, v.start - off), max(0, v.end - off), v.rule, v.message)
                for v in rep.poem_violations]
        tail = text.rstrip()
        if self.end and (not tail or tail[-1] not in self.end):
            out.append(Violation(len(tail), len(tail), self.spec(),
                                 f"the last line must end with one of {' '.join(self.end)}"))
        return sorted(out, key=lambda v: (v.start, v.end))


class FormArg(NamedTuple):
    name: str
    end: str = ""
    reading: Reading = STRICT
    enjamb: bool = False


def parse_form_arg(arg: str) -> FormArg:
    """'NAME[;end=MARKS][;lenient][;letters][;enjamb]' -> FormArg(name, marks, reading, enjamb)."""
    if not isinstance(arg, str):
        raise FormError(f"a form spec must be text (got {type(arg).__name__})")
    name, *opts = [p.strip() for p in arg.split(";")]
    end, flags = "", set()
    for opt in opts:
        key, eq, val = opt.partition("=")
        key = key.strip().lower()
        if key == "end" and val.strip():
            end = val.strip()
        elif key in ("lenient", "letters", "enjamb") and not eq:
            flags.add(key)
        else:
            raise SpecError(f"form: unknown option {shown(opt)} (options: end=MARKS e.g. end=.?!, "
                            "lenient, letters, enjamb)")
    return FormArg(name, end, Reading(lenient="lenient" in flags, letters="letters" in flags),
                   "enjamb" in flags)


@register("form",
          description="The text is a poem of this form: haiku, couplet, quatrain, limerick, sonnet, "
                      "NAME+iambic, or custom SYLLABLES[/SCHEME][/STRESS]. Words are heard by their "
                      "primary pronunciation and rhymes are perfect (as the field judges poems); "
                      "options: ;end=.?! closes the last line, ;lenient hears any pronunciation, "
                      ";letters counts acronyms read as letters, ;enjamb lets a line end on any word "
                      "(by default lines close where a phrase can: never on 'the', 'of' or a fragment).",
          example="form:haiku", level="text")
def _form(arg):
    return FormConstraint.from_arg(require_arg("form", arg))


# ---------------------------------------------------------------------- word table


def fits(pattern: str, stress: str | None, at: int) -> bool:
    """Whether a word with this metrical pattern (0 weak, 1 strong, 2 either beat:
    phonetics.metres) fits the line's stress pattern from syllable ``at``."""
    if stress is None:
        return True
    seg = stress[at:at + len(pattern)]
    return len(seg) == len(pattern) and all(p == "2" or p == b for p, b in zip(pattern, seg))


def assignable(cands: list[set]) -> bool:
    """Whether each set can give a different element (a matching; Hall's condition)."""
    if all(len(c) >= len(cands) for c in cands):
        return True  # each line still has a choice whatever the others took
    owner: dict = {}

    def place(j: int, seen: set) -> bool:
        for w in cands[j]:
            if w not in seen:
                seen.add(w)
                if w not in owner or place(owner[w], seen):
                    owner[w] = j
                    return True
        return False

    return all(place(j, set()) for j in range(len(cands)))


class WordTable:
    """The lexicon as index arrays: which words have each metrical pattern (hence
    syllable count) and each rhyme key, as ``reading`` hears them.  Word sets are numpy
    boolean arrays over the sorted words, so unions and intersections never loop over the
    lexicon in Python."""

    def __init__(self, words, reading: Reading = STRICT, key=None):
        self.words = tuple(words)  # sorted
        self.reading = reading
        self.key = key if key is not None else (len(self.words), reading)  # names it for caches
        self.index = {w: i for i, w in enumerate(self.words)}
        self.patterns: list[frozenset[str]] = []
        self.keys: list[frozenset[str]] = []
        by_pat: dict[str, list[int]] = {}
        by_key: dict[str, list[int]] = {}
        for i, w in enumerate(self.words):
            s = sound(w, reading)
            self.patterns.append(s.metres)
            self.keys.append(s.rhymes)
            for p in s.metres:
                by_pat.setdefault(p, []).append(i)
            for k in s.rhymes:
                by_key.setdefault(k, []).append(i)
        self.by_pattern = {p: np.array(ix, dtype=np.int64) for p, ix in by_pat.items()}
        self.by_key = {k: np.array(ix, dtype=np.int64) for k, ix in by_key.items()}
        # All keys' members end to end, for per-key counts in one np.add.reduceat.
        self.key_names = list(self.by_key)
        sizes = np.array([len(self.by_key[k]) for k in self.key_names], dtype=np.int64)
        self.key_order = np.concatenate([self.by_key[k] for k in self.key_names])
        self.key_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.key_sizes = sizes
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.words)

    def range(self, prefix: str) -> tuple[int, int]:
        """Indices [lo, hi) of the words starting with ``prefix``."""
        lo = bisect.bisect_left(self.words, prefix)
        return lo, bisect.bisect_left(self.words, prefix + "\U0010ffff", lo)

    def _of(self, ix_lists) -> np.ndarray:
        out = np.zeros(len(self.words), bool)
        for ix in ix_lists:
            out[ix] = True
        return out

    def _cached(self, key, make):
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = make()
        return hit

    def words_at(self, stress: str | None, start: int, k: int) -> np.ndarray:
        """Words of ``k`` syllables that fit ``stress`` from syllable ``start``."""
        key = ("at", stress, start if stress else 0, k)
        return self._cached(key, lambda: self._of(
            ix for p, ix in self.by_pattern.items() if len(p) == k and fits(p, stress, start)))

    def mid_from(self, stress: str | None, u: int, limit: int) -> np.ndarray:
        """Words that fit from syllable ``u`` and end by syllable ``limit``."""
        key = ("mid", stress, u if stress else 0, limit - u)
        return self._cached(key, lambda: self._of(
            ix for p, ix in self.by_pattern.items() if len(p) <= limit - u and fits(p, stress, u)))

    def fit_end(self, budget: int, stress: str | None, pool=None) -> np.ndarray:
        """Words of ``pool`` (name, mask; None: all) that can end a line of ``budget``
        syllables (monosyllables fill the rest)."""
        def make():
            arr = self._of(ix for p, ix in self.by_pattern.items()
                           if len(p) <= budget and fits(p, stress, budget - len(p)))
            return arr if pool is None else arr & pool[1]

        return self._cached(("end", budget, stress, pool and pool[0]), make)

    def _available(self, key: str, later: tuple, excluded, pool=None) -> list[set] | None:
        """Per later line, the unexcluded words of ``key`` that can end it."""
        members = self.by_key.get(key)
        if members is None:
            return None
        ex = set(excluded)
        return [set(members[self.fit_end(b, s, pool)[members]].tolist()) - ex for b, s in later]

    def feasible(self, key: str, later: tuple, excluded, pool=None) -> bool:
        """Whether rhyme ``key`` still has distinct words, none ``excluded``, for every
        later line (budget, stress) of its letter."""
        if not later:
            return True
        avail = self._available(key, later, excluded, pool)
        if avail is None:
            return False
        # A line with as many choices as there are lines is always served last.
        return assignable([a for a in avail if len(a) < len(later)])

    def open_valid(self, later: tuple, pool=None) -> np.ndarray | None:
        """Words that may end the first line of a letter: some rhyme key of theirs has
        distinct other words for the ``later`` lines.  Cached per ``later``."""
        if not later:
            return None

        def make():
            counts = np.stack([np.add.reduceat(self.fit_end(b, s, pool)[self.key_order].astype(np.int64),
                                               self.key_starts) for b, s in later])
            low = counts.min(axis=0)
            strong = low >= len(later) + 1  # any one word can go and enough remain
            out = np.zeros(len(self.words), bool)
            out[self.key_order[np.repeat(strong, self.key_sizes)]] = True
            for ki in np.flatnonzero(~strong & (low >= 1) & (self.key_sizes > len(later))):
                key = self.key_names[ki]
                for w in self.by_key[key].tolist():
                    if not out[w] and self.feasible(key, later, (w,), pool):
                        out[w] = True
            return out

        return self._cached(("open", later, pool and pool[0]), make)

    def live_valid(self, live: frozenset, used: frozenset, later: tuple, pool=None) -> np.ndarray:
        """Words that may end a later line of a letter: a live key, not used, and the
        lines after still satisfiable."""
        out = np.zeros(len(self.words), bool)
        for key in live:
            avail = self._available(key, later, used, pool)
            if avail is None:
                continue
            members = self.by_key[key]
            if all(len(a) >= len(later) + 1 for a in avail):  # any one word can go
                out[members] = True
                continue
            for w in members.tolist():
                if w not in used and self.feasible(key, later, tuple(used) + (w,), pool):
                    out[w] = True
        if used:
            out[list(used)] = False
        return out


_TABLES: BoundedCache[WordTable] = BoundedCache(4)


def word_table(lexicon: Lexicon | None = None, reading: Reading = STRICT) -> WordTable:
    """The table of ``lexicon`` (default: the writer's lexicon, common words) heard with
    ``reading``; built once per (lexicon, reading) and kept (a few held at a time)."""
    lex = lexicon or writer_lexicon(DEFAULT_FLOOR, reading.letters)
    key = (lex.key, reading)
    return _TABLES.get_or_make(key, lambda: WordTable(lex.words, reading, key))


# ---------------------------------------------------------------------- the plan


_WIDER = "common:0 admits rare words, ;lenient any pronunciation"


class Planned(NamedTuple):
    """A line's rhyme condition with its end word chosen before the line is written
    (studio/decode/search.py plans it): only ``word`` may end the line."""
    rhyme: tuple | None
    word: int


class Line:
    """One line of the form: budget, stress pattern (or None), rhyme letter, and the
    (budget, stress) of the later lines sharing its letter."""

    def __init__(self, form: Form, i: int):
        self.budget = form.syllables[i]
        self.stress = form.stress_for(i)
        self.letter = form.rhyme_letter(i)
        self.last = i == form.n_lines - 1
        group = form.rhyme_groups().get(self.letter, []) if self.letter else []
        self.later = tuple((form.syllables[j], form.stress_for(j)) for j in group if j > i)


class FormPlan:
    """Word-level decoding plan of one FormConstraint over the lexicon (cached lookups).

    Rhyme state: per letter, (live keys, used word indices); live None = no line of the
    letter yet.  A line's final word must keep the rest of its letter satisfiable: some
    live key still has distinct unused words for every later line (Hall's condition).

    ``pool`` (name, boolean mask over the table): the words that may end a line, e.g. the
    common words a model's vocabulary holds whole.  Unless the form says ``;enjamb``, line
    ends are also held to the words a phrase can close on (constraints.line_ends).  Pools
    are tried narrowest first: the pool's closing words, all closing words, the pool, then
    the whole lexicon (``self.pool`` is then None), the first in which the form (and any
    given rhyme) can be met."""

    def __init__(self, fc: FormConstraint, table: WordTable | None = None, pool=None):
        self.fc = fc
        self.t = table or word_table(None, fc.reading)
        self.lines = [Line(fc.form, i) for i in range(fc.form.n_lines)]
        self.first = len(fc.given)
        self.rhymes0 = tuple(sorted(
            # A given rhyme word outside the table (a rare one) cannot come back anyway.
            (letter, live, frozenset(self.t.index[w] for w in used if w in self.t.index))
            for letter, (live, used) in fc.given_rhymes.items()))
        self._valid: dict = {}  # per (line, rhyme condition): few, kept whole
        self._kmin: dict = {}
        # Per position set and per word: a long session sees many, so these are bounded.
        self._sets: BoundedCache[tuple] = BoundedCache(512)
        self._adv: BoundedCache[tuple] = BoundedCache(1 << 16)
        tries = self._pools(pool)
        for n, self.pool in enumerate(tries):
            self._valid.clear()
            self._kmin.clear()
            try:
                self._check_feasible()
                break
            except FormError:
                if n == len(tries) - 1:
                    raise

    def _pools(self, pool) -> list:
        ends = None if self.fc.enjamb else ("line-ends", line_enders(self.t.words, self.t.key))
        out = []
        if pool is not None and ends is not None:
            out.append((f"{pool[0]}&line-ends", pool[1] & ends[1]))
        out += [p for p in (ends, pool) if p is not None]
        return out + [None]

    # ------------------------------------------------------------------ state helpers

    def opening(self) -> tuple[int, frozenset]:
        """Where the new text starts: (line, syllable positions).  Without an unfinished
        line: the first new line, at 0.
        The writer's words count by their sound (words outside the table by their
        syllables, estimated outside CMU); off the metre they still count, by syllables
        alone, so the line goes on from where the writer left it.  Positions that leave no
        room for another word are dropped: the unfinished line takes at least one more."""
        i = self.first
        if not self.fc.partial:
            return i, frozenset({0})
        ln = self.lines[i]
        U = frozenset({0})
        for m in iter_words(self.fc.partial):
            w = self.t.index.get(normalize(m.group()))
            if w is not None:
                pats = self.t.patterns[w]
                fit = frozenset(u + len(p) for u in U for p in pats if fits(p, ln.stress, u))
                U = fit or frozenset(u + len(p) for u in U for p in pats)
            else:
                heard = sound(m.group(), self.fc.reading).syllables or {estimate_syllables(m.group())}
                U = frozenset(u + c for u in U for c in heard)
        limit = ln.budget - (self.kmin(i, self.cond(i, self.rhymes0)) or 1)
        room = frozenset(u for u in U if u <= limit)
        return i, room or frozenset({min(U)})

    def cond(self, i: int, rhymes: tuple) -> tuple | None:
        """The rhyme condition of line ``i``: None (unrhymed) or (live, used)."""
        letter = self.lines[i].letter
        if letter is None:
            return None
        for lt, live, used in rhymes:
            if lt == letter:
                return live, used
        return None, frozenset()

    def _check_feasible(self) -> None:
        rhymes = self.rhymes0
        for i in range(self.first, len(self.lines)):
            ln = self.lines[i]
            if self.kmin(i, self.cond(i, rhymes)) is not None:
                continue
            if ln.letter and self.cond(i, rhymes)[0] is not None:
                words = [w for lt, _, used in rhymes if lt == ln.letter for w in sorted(used)]
                said = ", ".join(repr(self.t.words[w]) for w in words)
                raise FormError(f"line {i + 1} (rhyme {ln.letter}): no other word rhymes with {said} "
                                f"within {ln.budget} syllables{' in this metre' if ln.stress else ''} "
                                f"among the words the decoder may use ({_WIDER})")
            what = f"rhyme {ln.letter}: no {len(ln.later) + 1} different words rhyme" if ln.letter \
                else "no word ends it"
            raise FormError(f"line {i + 1}: {what} within {ln.budget} syllables"
                            f"{' in the metre ' + ln.stress if ln.stress else ''} ({_WIDER})")

    # ------------------------------------------------------------------ word sets

    def rhyme_valid(self, i: int, cond) -> np.ndarray | None:
        """Words that may end line ``i`` as far as the rhyme goes (None: any)."""
        if isinstance(cond, Planned):
            base = self.rhyme_valid(i, cond.rhyme)
            out = np.zeros(len(self.t.words), bool)
            out[cond.word] = base is None or bool(base[cond.word])
            return out
        if cond is None:
            return None
        key = (i, cond)
        hit = self._valid.get(key)
        if hit is None and key not in self._valid:
            live, used = cond
            later = self.lines[i].later
            hit = self.t.open_valid(later, self.pool) if live is None else \
                self.t.live_valid(live, used, later, self.pool)
            self._valid[key] = hit
        return hit

    def final_at(self, i: int, cond, k: int) -> np.ndarray:
        """Words of ``k`` syllables that may end line ``i`` (stress and rhyme)."""
        ln = self.lines[i]
        arr = self.t.words_at(ln.stress, ln.budget - k, k)
        if self.pool is not None:
            arr = arr & self.pool[1]
        rv = self.rhyme_valid(i, cond)
        return arr if rv is None else arr & rv

    def kmin(self, i: int, cond) -> int | None:
        """Fewest syllables of a word that may end line ``i``: mid-line words leave this
        much room, so the line can always be finished (monosyllables fill any gap)."""
        key = (i, cond)
        if key not in self._kmin:
            self._kmin[key] = next((k for k in range(1, self.lines[i].budget + 1)
                                    if self.final_at(i, cond, k).any()), None)
        return self._kmin[key]

    def sets(self, i: int, cond, U: frozenset) -> tuple[np.ndarray, np.ndarray]:
        """(mid-line words, line-final words) from positions ``U`` of line ``i``."""
        key = (i, cond, U)
        hit = self._sets.get(key)
        if hit is None:
            ln, n = self.lines[i], len(self.t.words)
            limit = ln.budget - (self.kmin(i, cond) or ln.budget + 1)
            mid, final = np.zeros(n, bool), np.zeros(n, bool)
            for u in U:
                if u < limit:
                    mid |= self.t.mid_from(ln.stress, u, limit)
                if u < ln.budget:
                    final |= self.final_at(i, cond, ln.budget - u)
            hit = self._sets[key] = (mid, final)
        return hit

    def advance(self, i: int, cond, U: frozenset, w: int) -> tuple[frozenset, bool]:
        """After word ``w`` from positions ``U``: (positions if the line goes on, whether
        the line may end here)."""
        key = (i, cond, U, w)
        hit = self._adv.get(key)
        if hit is None:
            ln = self.lines[i]
            kmin = self.kmin(i, cond) or ln.budget + 1
            rv = self.rhyme_valid(i, cond)
            pool = None if self.pool is None else self.pool[1]
            mid, final = set(), False
            for u in U:
                for p in self.t.patterns[w]:
                    e = u + len(p)
                    if e > ln.budget or not fits(p, ln.stress, u):
                        continue
                    if e == ln.budget:
                        final = final or ((rv is None or bool(rv[w])) and (pool is None or bool(pool[w])))
                    elif e <= ln.budget - kmin:
                        mid.add(e)
            hit = (frozenset(mid), final)
            self._adv[key] = hit
        return hit

    def end_mask(self, i: int, rhymes: tuple) -> np.ndarray:
        """The words that may end line ``i`` from its start (any syllable count that leaves
        room before it): the candidates an end-word plan chooses from."""
        cond = self.cond(i, rhymes)
        out = np.zeros(len(self.t.words), bool)
        for k in range(1, self.lines[i].budget + 1):
            out |= self.final_at(i, cond, k)
        return out

    def end_words(self, i: int, rhymes: tuple) -> np.ndarray:
        """Indices of ``end_mask``'s words."""
        return np.flatnonzero(self.end_mask(i, rhymes))

    def end_line(self, i: int, rhymes: tuple, w: int) -> tuple:
        """The rhyme state after line ``i`` ends with word ``w``."""
        letter = self.lines[i].letter
        if letter is None:
            return rhymes
        live, used = self.cond(i, rhymes)
        later = self.lines[i].later
        used2 = used | {w}
        keys = self.t.keys[w] if live is None else self.t.keys[w] & live
        live2 = frozenset(k for k in keys if self.t.feasible(k, later, used2, self.pool))
        rest = tuple(r for r in rhymes if r[0] != letter)
        return tuple(sorted(rest + ((letter, live2, frozenset(used2)),)))


__all__ = ["FormConstraint", "FormPlan", "Line", "Planned", "WordTable", "word_table", "split_given", "parse_form_arg",
           "assignable", "fits", "CLOSING"]
