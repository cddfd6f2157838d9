"""Poetic forms: lines with syllable budgets, a rhyme scheme and optional metre.

This module defines forms and checks poems against them; decoding a form is the
engine's job (studio/), built on ``Form``, ``rhyme_candidates`` and the phonetics
lookups.

Form spec syntax (``parse_form``):

    haiku | couplet | quatrain | limerick | sonnet      built-ins (see BUILTINS)
    sonnet-iambic | couplet-iambic                      with iambic stress
    NAME+iambic                                         any form, iambic on every line
    [custom:]SYLLABLES[/SCHEME][/STRESS]                a custom form

    SYLLABLES  per-line counts joined by - or , ; NxK repeats N for K lines
               ("5-7-5", "8,8,5,5,8", "10x14")
    SCHEME     one character per line: a letter names a rhyme group (case-insensitive),
               - . or x marks an unrhymed line; spaces are ignored ("ABAB CDCD EFEF GG")
    STRESS     iambic | trochaic | per-line patterns of 0/1 joined by , (- = free line)

``:`` works in place of ``/`` after the counts ("7,7,7,7:AABB").

Pronunciation (``check_form(..., reading)``; constraints/phonetics.py): by default
each word is heard as the field hears it, by its primary (first) CMU pronunciation, as
FUDGE's couplet metric does.

- Syllables: the primary pronunciation's count ("fire" has two).
- Metre: a one-syllable word CMU stresses ("love", "of") takes either beat, one it
  marks unstressed in its first reading ("a", "the", "and": AH0) a weak beat;
  a longer word must match its primary stress pattern, where a secondary stress fits
  either beat.
- Rhymes: lines sharing a letter must rhyme perfectly, the same sounds from the last
  stressed vowel of their last words' primary pronunciations, and end in different words.

The lenient reading (``;lenient`` on ``form:``) hears any pronunciation, lets every
one-syllable word take either beat and counts secondary stress as strong.

A word outside CMU is reported, and its syllables are estimated from its spelling and
marked in the scansion (``LineReport.estimated``), so the rest of the line is still judged.

Size: at most ``MAX_LINES`` lines of at most ``MAX_SYLLABLES`` syllables (a crown of
sonnets has 210 lines; the longest lines in use run to twenty-odd syllables).  Past that
a spec is refused before anything is built: "5x100000000" would otherwise allocate a
hundred million lines.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from constraints import limits
from constraints.base import SpecError, SpecLimitError, Violation, shown, within
from constraints.units import iter_words
from constraints.lexicon import default_lexicon, normalize
from constraints.spelling import heard_rhymes
from constraints.phonetics import (
    STRICT, Reading, estimate_syllables, extra_only, letters_only, pronunciations, rhyme_part, sound,
)

UNRHYMED = "-"  # canonical mark; ". x X" are read as it
MAX_LINES = 1000
MAX_SYLLABLES = 100


class FormError(SpecError):
    """A form spec that cannot be understood, or a form no poem can satisfy."""


class FormLimitError(FormError, SpecLimitError):
    """A form spec past a server cap (its length): a FormError naming the cap's setting."""


def _pattern(kind: str, n: int) -> str:
    return (("01" if kind == "iambic" else "10") * n)[:n]


@dataclass(frozen=True)
class Form:
    name: str
    syllables: tuple[int, ...]
    rhyme: str = ""  # one character per line; "" = no rhymes at all
    stress: tuple[str | None, ...] | None = None  # per line; None = free

    def __post_init__(self):
        # Normalise so equal forms compare equal however they were written.
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("syllables", tuple(int(n) for n in self.syllables))
        scheme = re.sub(r"\s", "", self.rhyme or "") or UNRHYMED * len(self.syllables)
        set_("rhyme", "".join(UNRHYMED if c in ".xX-" else c.upper() for c in scheme))
        if self.stress is not None:
            st = tuple(None if p in (None, "", "-") else str(p).replace("2", "1") for p in self.stress)
            set_("stress", st if any(p is not None for p in st) else None)

    @property
    def n_lines(self) -> int:
        return len(self.syllables)

    def rhyme_letter(self, i: int) -> str | None:
        """The rhyme letter of line ``i`` (0-based), None if unrhymed."""
        c = self.rhyme[i] if i < len(self.rhyme) else UNRHYMED
        return None if c == UNRHYMED else c

    def rhyme_groups(self) -> dict[str, list[int]]:
        """Letter -> the 0-based lines that share it, in order."""
        groups: dict[str, list[int]] = {}
        for i in range(self.n_lines):
            letter = self.rhyme_letter(i)
            if letter:
                groups.setdefault(letter, []).append(i)
        return groups

    def stress_for(self, i: int) -> str | None:
        return self.stress[i] if self.stress and i < len(self.stress) else None

    def with_stress(self, kind: str) -> "Form":
        """The same form with every line iambic (01...) or trochaic (10...)."""
        if kind not in ("iambic", "trochaic"):
            raise FormError(f"stress kind must be iambic or trochaic, not {shown(kind)}")
        name = f"{self.name}-{kind}" if f"{self.name}-{kind}" in BUILTINS else f"{self.name}+{kind}"
        return replace(self, name=name, stress=tuple(_pattern(kind, n) for n in self.syllables))

    def iambic(self) -> "Form":
        return self.with_stress("iambic")

    def spec(self) -> str:
        """A string ``parse_form`` turns back into this form."""
        try:
            if parse_form(self.name) == self:
                return self.name
        except SpecError:
            pass
        return _custom_spec(self)

    def validate(self) -> "Form":
        """Raise FormError naming the first reason no poem can have this form."""
        if not self.syllables:
            raise FormError("a form needs at least one line")
        if self.n_lines > MAX_LINES:
            raise FormError(f"a form has at most {MAX_LINES} lines (this one has {self.n_lines})")
        if len(self.rhyme) != self.n_lines:
            raise FormError(
                f"rhyme scheme '{self.rhyme}' has {len(self.rhyme)} letters for {self.n_lines} lines"
            )
        bad = [c for c in self.rhyme if c != UNRHYMED and not c.isalpha()]
        if bad:
            raise FormError(f"rhyme scheme '{self.rhyme}': {shown(bad[0])} is not a letter (- . or x mark unrhymed lines)")
        for i, n in enumerate(self.syllables, 1):
            if n < 0:
                raise FormError(f"line {i}: syllable count must not be negative (got {n})")
            if n > MAX_SYLLABLES:
                raise FormError(f"line {i}: at most {MAX_SYLLABLES} syllables a line (got {n})")
            if n == 0:
                letter = self.rhyme_letter(i - 1)
                if letter:
                    raise FormError(f"line {i} has 0 syllables, so it cannot carry rhyme letter {letter}")
                raise FormError(f"line {i} has 0 syllables; every line needs at least one")
        if self.stress is not None:
            if len(self.stress) != self.n_lines:
                raise FormError(f"{len(self.stress)} stress patterns for {self.n_lines} lines")
            for i, (p, n) in enumerate(zip(self.stress, self.syllables), 1):
                if p is None:
                    continue
                if set(p) - set("01"):
                    raise FormError(f"line {i}: stress pattern {shown(p)} must be 0s and 1s")
                if len(p) != n:
                    raise FormError(f"line {i}: stress pattern {shown(p)} has {len(p)} syllables, the line has {n}")
        for letter, lines in self.rhyme_groups().items():
            budgets = sorted(self.syllables[i] for i in lines)
            if len(lines) > 1 and not _rhyme_feasible(tuple(budgets)):
                within = (f"{budgets[0]} syllable(s) each" if len(set(budgets)) == 1
                          else f"{_short(budgets)} syllables")
                raise FormError(
                    f"rhyme {letter} (lines {_short([i + 1 for i in lines])}): no {len(lines)} "
                    f"different words in the dictionary rhyme together within {within}"
                )
        return self


def _short(nums: list[int]) -> str:
    return ", ".join(map(str, nums)) if len(nums) <= 6 else f"{nums[0]}, {nums[1]}, ..., {nums[-1]}"


BUILTINS: dict[str, Form] = {
    "haiku": Form("haiku", (5, 7, 5), "---"),
    "couplet": Form("couplet", (10, 10), "AA"),
    # Four lines of tetrameter, cross-rhymed: the ballad-like quatrain most readers expect.
    "quatrain": Form("quatrain", (8, 8, 8, 8), "ABAB"),
    "limerick": Form("limerick", (8, 8, 5, 5, 8), "AABBA"),
    "sonnet": Form("sonnet", (10,) * 14, "ABAB CDCD EFEF GG"),
}
BUILTINS["sonnet-iambic"] = replace(BUILTINS["sonnet"], name="sonnet-iambic",
                                    stress=(_pattern("iambic", 10),) * 14)
# The FUDGE couplet task: the 14th line of a sonnet, iambic, rhyming with the 13th.
BUILTINS["couplet-iambic"] = replace(BUILTINS["couplet"], name="couplet-iambic",
                                     stress=(_pattern("iambic", 10),) * 2)


def _custom_spec(form: Form) -> str:
    runs: list[list[int]] = []  # [count, repeats]: 10x14 reads better than fourteen 10s
    for n in form.syllables:
        if runs and runs[-1][0] == n:
            runs[-1][1] += 1
        else:
            runs.append([n, 1])
    parts = ["-".join(f"{n}x{k}" if k >= 3 else "-".join([str(n)] * k) for n, k in runs)]
    if set(form.rhyme) != {UNRHYMED} or form.stress:
        parts.append(form.rhyme)
    if form.stress:
        kind = next((k for k in ("iambic", "trochaic")
                     if form.stress == tuple(_pattern(k, n) for n in form.syllables)), None)
        parts.append(kind or ",".join(p or "-" for p in form.stress))
    return "custom:" + "/".join(parts)


def _counts(text: str) -> tuple[int, ...]:
    out: list[int] = []
    # "-" after a count separates; a leading "-" is a minus sign, read as a (bad) negative.
    for part in re.split(r"(?<=[^-,\s])\s*-|,", text):
        part = part.strip()
        m = re.fullmatch(r"(-?\d+)(?:\s*[x×*]\s*(\d+))?", part)
        if not m:
            raise FormError(f"syllable counts: {shown(part)} is not a number (write e.g. 5-7-5 or 10x14)")
        if max(len(m.group(1)), len(m.group(2) or "")) > 9:
            raise FormError(f"syllable counts: {shown(part)} is far too large")
        n, k = int(m.group(1)), int(m.group(2) or 1)
        if len(out) + k > MAX_LINES:  # before building the lines, not after
            raise FormError(f"a form has at most {MAX_LINES} lines (this one asks for more)")
        out.extend([n] * k)
    return tuple(out)


def _stress_part(text: str, counts: tuple[int, ...]) -> tuple[str | None, ...]:
    t = text.strip().lower()
    if t in ("iambic", "trochaic"):
        return tuple(_pattern(t, n) for n in counts)
    return tuple(p.strip() for p in t.split(","))


def parse_form(text: str | Form, iambic: bool = False) -> Form:
    """A form name or custom spec -> a validated Form.  Raises FormError naming the problem.
    ``iambic=True`` sets iambic stress on every line (as the "+iambic" suffix does)."""
    if iambic:
        return parse_form(text).iambic().validate()
    if isinstance(text, Form):
        return text.validate()
    if not isinstance(text, str):
        raise FormError(f"a form spec must be text (got {type(text).__name__})")
    within(limits.SPEC_CHARS, len(text), FormLimitError)  # a form is a spec: the same cap
    t = text.strip()
    if not t:
        raise FormError("empty form spec")
    suffix = None
    for kind in ("iambic", "trochaic"):
        if t.lower().endswith("+" + kind):
            t, suffix = t[: -len(kind) - 1].strip(), kind
    low = t.lower()
    if low in BUILTINS:
        form = BUILTINS[low]
    elif low.startswith("custom:") or re.match(r"\s*-?\d", t):
        body = t.split(":", 1)[1] if low.startswith("custom:") else t
        parts = re.split(r"[/:]", body)
        if len(parts) > 3:
            raise FormError(f"custom form {shown(text)}: expected SYLLABLES[/SCHEME][/STRESS]")
        counts = _counts(parts[0])
        scheme = parts[1] if len(parts) > 1 else ""
        stress = _stress_part(parts[2], counts) if len(parts) > 2 else None
        form = Form("", counts, scheme, stress)
        form = replace(form, name=_custom_spec(form))
    else:
        close = difflib.get_close_matches(low, list(BUILTINS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FormError(
            f"unknown form {shown(text.strip())}{hint}; forms are {', '.join(BUILTINS)}, "
            "or a custom one like 5-7-5/ABA"
        )
    if suffix:
        form = form.with_stress(suffix)
    return form.validate()


# ---------------------------------------------------------------- rhyme index


@lru_cache(maxsize=1)
def _rhyme_table() -> dict[str, dict[str, int]]:
    """Rhyme key -> {word: fewest syllables of a pronunciation with that key}, over every
    pronunciation of every CMU word: whether a form can be met at all (``validate``)."""
    table: dict[str, dict[str, int]] = {}
    for w in default_lexicon().words:
        for p in pronunciations(w):
            key = rhyme_part(p)
            n = sum(1 for ph in p.split() if ph[-1].isdigit())
            row = table.setdefault(key, {})
            row[w] = min(n, row.get(w, n))
    return table


@lru_cache(maxsize=None)
def _rhyme_feasible(budgets: tuple[int, ...]) -> bool:
    """Whether some rhyme key has distinct words for lines with these (sorted) budgets.
    Hall's condition for nested choices: the i-th smallest budget needs i+1 words."""
    for row in _rhyme_table().values():
        if len(row) < len(budgets):
            continue
        sizes = sorted(row.values())
        if all(sum(1 for s in sizes if s <= b) >= i + 1 for i, b in enumerate(budgets)):
            return True
    return False


@lru_cache(maxsize=4096)
def _candidates(key: str, max_syllables: int) -> tuple[str, ...]:
    row = _rhyme_table().get(key, {})
    return tuple(sorted(w for w, n in row.items() if n <= max_syllables))


def rhyme_candidates(key: str, max_syllables: int) -> list[str]:
    """Lexicon words with rhyme key ``key`` in a pronunciation of at most
    ``max_syllables`` syllables, sorted (cached)."""
    return list(_candidates(key, max_syllables))


# ---------------------------------------------------------------- checking


@dataclass
class LineReport:
    number: int  # 1-based
    text: str
    start: int  # offsets in the checked text
    end: int
    target: int | None  # None: a line beyond the form
    syllables: int  # the possible count closest to the target
    syllable_options: list[int]
    rhyme: str | None  # the form's letter for this line
    rhyme_word: str | None
    rhyme_key: str | None
    rhyme_span: tuple[int, int] | None = None  # offsets of the rhyme word
    stress_target: str | None = None
    stress: str | None = None  # the best-fitting stress found (free syllables shown as fitted)
    estimated: list[str] = field(default_factory=list)  # words outside CMU, counted by spelling
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "violations"}
        d["ok"] = self.ok
        d["violations"] = [v.to_dict() for v in self.violations]
        return d


@dataclass
class FormReport:
    form: Form
    text: str
    lines: list[LineReport]
    poem_violations: list[Violation]  # not tied to one line (missing lines)

    @property
    def violations(self) -> list[Violation]:
        vs = [v for ln in self.lines for v in ln.violations] + self.poem_violations
        return sorted(vs, key=lambda v: (v.start, v.end))

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {
            "form": self.form.spec(),
            "ok": self.ok,
            "lines": [ln.to_dict() for ln in self.lines],
            "violations": [v.to_dict() for v in self.violations],
        }

    def table(self) -> str:
        """Per line: syllables found/needed, rhyme letter and key, ok; then each violation."""
        kw = max([3] + [len(ln.rhyme_key or "") for ln in self.lines])
        rows = [f"{self.form.spec()}: " + ("ok" if self.ok else f"{len(self.violations)} violation(s)"),
                f"{'#':>3}  {'syll':>5}  {'rhyme':<5}  {'key':<{kw}}  ok  line"]
        for ln in self.lines:
            want = "?" if ln.target is None else str(ln.target)
            est = "~" if ln.estimated else ""  # a count estimated from spelling
            rows.append(
                f"{ln.number:>3}  {f'{est}{ln.syllables}/{want}':>5}  {ln.rhyme or '-':<5}  "
                f"{ln.rhyme_key or '':<{kw}}  {'ok' if ln.ok else 'NO':<2}  {ln.text}"
            )
            if ln.estimated:
                rows.append(f"{'':>3}  ~ estimated from spelling (not in CMU): {', '.join(ln.estimated)}")
        for v in self.violations:
            rows.append(f"  - {v.where(self.text)}: {v.message}")
        return "\n".join(rows)

    __str__ = table


def _fit_stress(options: list[frozenset[str]], target: str) -> tuple[int, str] | None:
    """Fewest mismatches of any pronunciation choice against ``target`` (a 2 in a word's
    metrical pattern fits either beat), with the pattern it shows; None if no choice has
    the right length."""
    states: dict[int, tuple[int, str]] = {0: (0, "")}
    for pats in options:
        nxt: dict[int, tuple[int, str]] = {}
        for pos, (cost, shown) in states.items():
            for p in pats:
                end = pos + len(p)
                if end > len(target):
                    continue
                seg = target[pos:end]
                c = sum(1 for a, b in zip(p, seg) if a != "2" and a != b)
                cand = (cost + c, shown + "".join(b if a == "2" else a for a, b in zip(p, seg)))
                if end not in nxt or cand < nxt[end]:
                    nxt[end] = cand
        states = nxt
    return states.get(len(target))


def _split_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) for each non-blank line; blank lines are stanza breaks."""
    out, offset = [], 0
    for line in text.split("\n"):
        if line.strip():
            out.append((offset, line.rstrip()))
        offset += len(line) + 1
    return out


def _unknown(word: str) -> str:
    if letters_only(word):
        return f"{word!r} is only read letter by letter in CMU (an acronym or a letter), not a word here"
    if extra_only(word):
        return f"{word!r} is not in the CMU dictionary (;lenient hears our extra entry for it)"
    return f"{word!r} is not in the CMU dictionary"


def _line_report(form: Form, i: int, start: int, line: str, rule: str, reading: Reading) -> LineReport:
    words = list(iter_words(line))
    target = form.syllables[i] if i < form.n_lines else None
    vs: list[Violation] = []
    totals = {0}
    metre_options: list[frozenset[str]] = []
    estimated: list[str] = []
    for m in words:
        heard = sound(m.group(), reading)
        counts = heard.syllables
        if not counts:
            vs.append(Violation(start + m.start(), start + m.end(), rule, _unknown(m.group())))
            n = estimate_syllables(m.group())
            counts = frozenset({n})
            estimated.append(m.group())
            metre_options.append(frozenset({"2" * n}))  # sound unknown: judged on the rest
        else:
            metre_options.append(heard.metres)
        totals = {t + c for t in totals for c in counts}
    options = sorted(totals)
    aim = target if target is not None else options[0]
    found = min(options, key=lambda t: (abs(t - aim), t))
    end = start + len(line)
    if target is not None and target not in totals:
        shown = " or ".join(map(str, options)) if len(options) <= 3 else str(found)
        vs.append(Violation(start, end, rule, f"line {i + 1} has {shown} syllables, needs {target}"))
    last = words[-1].group() if words else None
    stress_target = form.stress_for(i) if target is not None else None
    shown_stress = None
    if stress_target and target in totals:
        fit = _fit_stress(metre_options, stress_target)
        if fit is not None:
            shown_stress = fit[1]
            if fit[0]:
                vs.append(Violation(start, end, rule,
                                    f"line {i + 1} stress {fit[1]} does not fit {stress_target}"))
    return LineReport(
        number=i + 1, text=line, start=start, end=end, target=target, syllables=found,
        syllable_options=options, rhyme=form.rhyme_letter(i) if target is not None else None,
        rhyme_word=last, rhyme_key=None,
        rhyme_span=(start + words[-1].start(), start + words[-1].end()) if words else None,
        stress_target=stress_target, stress=shown_stress, estimated=estimated,
        violations=vs,
    )


def _check_rhymes(form: Form, reports: list[LineReport], rule: str, reading: Reading) -> None:
    for letter, idx in form.rhyme_groups().items():
        present = [reports[i] for i in idx if i < len(reports)]
        # A word CMU lacks ("raine") is heard as a reader hears it (constraints/spelling.py).
        keyed = [(r, heard_rhymes(normalize(r.rhyme_word), reading) if r.rhyme_word else frozenset())
                 for r in present]
        # The group's rhyme: the key most of its lines share (ties: the earliest line's).
        tally: dict[str, int] = {}
        for _, keys in keyed:
            for k in sorted(keys):
                tally[k] = tally.get(k, 0) + 1
        key = max(tally, key=lambda k: (tally[k], k in keyed[0][1]), default=None) if tally else None
        first: dict[str, LineReport] = {}
        anchor = next((r for r, keys in keyed if key in keys), None)
        for r, keys in keyed:
            # Shown key: the group's if the line has it, else a stressed one of its own.
            r.rhyme_key = key if key in keys else min(keys, key=lambda k: (not re.search(r"[12]", k), k), default=None)
            word = normalize(r.rhyme_word) if r.rhyme_word else None
            if word is None:
                r.violations.append(Violation(r.start, r.end, rule, f"line {r.number} has no rhyme word"))
                continue
            if key not in keys and keys:
                other = f" (line {anchor.number}: {anchor.rhyme_word!r})" if anchor else ""
                r.violations.append(Violation(*r.rhyme_span, rule,
                                              f"{r.rhyme_word!r} does not rhyme {letter}{other}"))
            elif word in first:
                r.violations.append(Violation(*r.rhyme_span, rule,
                                              f"{r.rhyme_word!r} repeats the rhyme word of line {first[word].number}"))
            first.setdefault(word, r)


def check_form(form: Form | str, text: str, reading: Reading = STRICT) -> FormReport:
    """Check ``text`` (one line per line; blank lines ignored) against ``form``, hearing
    words as ``reading`` says (default: primary pronunciations, as the field does)."""
    form = parse_form(form) if isinstance(form, str) else form.validate()
    rule = f"form:{form.spec()}" + reading.options(";")
    lines = _split_lines(text)
    reports = [_line_report(form, i, start, line, rule, reading) for i, (start, line) in enumerate(lines)]
    for r in reports[form.n_lines:]:
        r.violations.append(Violation(r.start, r.end, rule,
                                      f"line {r.number} is beyond the {form.n_lines} lines of {form.name}"))
    _check_rhymes(form, reports, rule, reading)
    poem: list[Violation] = []
    if len(lines) < form.n_lines:
        poem.append(Violation(len(text), len(text), rule,
                              f"the poem has {len(lines)} line(s); {form.name} needs {form.n_lines}"))
    return FormReport(form, text, reports, poem)


__all__ = ["Form", "FormError", "BUILTINS", "parse_form", "check_form", "FormReport", "LineReport",
           "rhyme_candidates", "UNRHYMED"]
