"""Word-level constraints as token masks: a token is allowed only if every word it
touches can still end up an allowed word.

Tokens are sub-words.  Each token's text splits into runs: a ``head`` of word characters
that continues the word in progress, then (if the token has a boundary) complete
``middle`` words, and a ``tail`` that starts the next word.  With ``p`` the word in
progress, a token is allowed iff

  - it has no boundary and ``p + text`` is a prefix of an allowed word, or
  - it has a boundary, ``p + head`` is empty or an allowed word, every middle word is
    allowed, and the tail is empty or a prefix of an allowed word.

The middle/tail part does not depend on ``p``: it is one static mask per word set.  The
part that does depends only on ``p`` and is found by walking the token trie (all heads)
while the prefix stays alive in the word set's sorted list; each ``p`` is computed once
and cached.  Nothing per step scans the vocabulary or the lexicon.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import torch

from constraints.base import And, Constraint, ImpossibleConstraint, WordConstraint
from constraints.lexicon import Lexicon, allowed_words, is_case_sensitive, lexicon_for, normalize
from constraints.units import is_word_char

from studio.masks.base import Masker
from studio.decode.vocab import VocabIndex


LOWER, CAPITALIZED, CAPS = 1, 2, 3  # letter-case shapes a word may take (0: none of them)
ONE_CAP = 4  # a single capital so far: "I", or the start of "It" or "IT"


def case_shape(text: str) -> int:
    """LOWER ("tiger", "'s"), CAPITALIZED ("Tiger"), CAPS ("TV", "I") or 0 ("iPhone")."""
    letters = [c for c in text if c.isalpha()]
    if all(c.islower() for c in letters):
        return LOWER
    if all(c.isupper() for c in letters):
        return CAPS
    return CAPITALIZED if letters[0].isupper() and all(c.islower() for c in letters[1:]) else 0


def _piece_shape(text: str) -> int:
    """A token piece's shape, telling a single capital (which may go on either way) apart."""
    shape = case_shape(text)
    return ONE_CAP if shape == CAPS and sum(c.isalpha() for c in text) == 1 else shape


def split_runs(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into maximal runs of word characters and of the rest: (is_word, run)."""
    runs: list[tuple[bool, str]] = []
    for ch in text:
        w = is_word_char(ch)
        if runs and runs[-1][0] == w:
            runs[-1] = (w, runs[-1][1] + ch)
        else:
            runs.append((w, ch))
    return runs


@dataclass
class _Node:
    children: dict = field(default_factory=dict)
    pure: list = field(default_factory=list)  # tokens whose whole text is this string
    bounded: list = field(default_factory=list)  # tokens whose head is this, then a boundary


class TokenWords:
    """Per-vocabulary decomposition of every token into head / middle words / tail."""

    def __init__(self, vocab: VocabIndex):
        self.vocab = vocab
        n = vocab.size
        self.has_boundary = [False] * n
        self.head = [""] * n
        self.tail = [""] * n
        self.middles: list[tuple[str, ...]] = [()] * n
        self.head_shape = np.zeros(n, np.int8)  # case of the head's letters (pure: the text's)
        self.tail_shape = np.zeros(n, np.int8)  # case of the tail's letters (pure: the text's)
        self.root = _Node()
        for i, (text, special) in enumerate(zip(vocab.texts, vocab.special)):
            if special or not text:
                continue
            runs = split_runs(text)
            bounded = any(not w for w, _ in runs)
            words = [normalize(r) for w, r in runs if w]
            self.has_boundary[i] = bounded
            if not bounded:
                self.head[i] = normalize(text)
                self.head_shape[i] = self.tail_shape[i] = _piece_shape(text)
                self._node(self.head[i]).pure.append(i)
                continue
            head = normalize(runs[0][1]) if runs[0][0] else ""
            tail = normalize(runs[-1][1]) if runs[-1][0] else ""
            inner = words[(1 if head else 0): len(words) - (1 if tail else 0)]
            self.head[i], self.tail[i], self.middles[i] = head, tail, tuple(inner)
            self._node(head).bounded.append(i)
            self.head_shape[i] = _piece_shape(runs[0][1]) if head else 0
            self.tail_shape[i] = _piece_shape(runs[-1][1]) if tail else 0
        dev = vocab.device
        self.boundary_mask = torch.tensor(self.has_boundary, dtype=torch.bool, device=dev)
        # Tokens that begin with a boundary: the only ones that may follow text the writer
        # left mid-word (constraints judge the words the model writes, not the writer's).
        starts = [b and not h for b, h in zip(self.has_boundary, self.head)]
        self.break_mask = torch.tensor(starts, dtype=torch.bool, device=dev) | vocab.ids_mask(vocab.eos_ids)
        # Incomplete UTF-8 bytes build no word of the lexicon: never part of word-level text.
        self.clean_mask = vocab.mask("no-partial-utf8", lambda _i, t: "\ufffd" not in t)
        self.boundary_np = np.array(self.has_boundary, dtype=bool)
        self.clean_np = self.clean_mask.cpu().numpy()
        # Word-level rules judge lower-cased words, so without these a small model drifts
        # into "setoN" or "lonelY".  A word is lower case, Capitalized or ALL CAPS: its first
        # token may take any of these shapes, a later one continues in lower case (or in
        # capitals after capitals).  Keyed by the shape of the word so far (0: no word).
        head, tail = self.head_shape, self.tail_shape
        has_head = np.array([bool(h) for h in self.head])
        tail_ok = ~self.boundary_np | np.array([not t for t in self.tail]) | (tail > 0)
        cont = lambda ok: ((~has_head | ok) & tail_ok)  # noqa: E731
        lower, caps = head == LOWER, (head == CAPS) | (head == ONE_CAP)
        self.case_masks = {0: cont(head > 0), LOWER: cont(lower), CAPITALIZED: cont(lower),
                           ONE_CAP: cont(lower | caps), CAPS: cont(caps)}

    def next_case(self, case: int, token_id: int) -> int:
        """The shape of the word in progress after ``token_id``."""
        if self.has_boundary[token_id]:
            return int(self.tail_shape[token_id])
        head = int(self.head_shape[token_id])
        if not case or not self.head[token_id]:
            return head or case
        if case == ONE_CAP:
            return CAPITALIZED if head == LOWER else CAPS
        return case

    def _node(self, s: str) -> _Node:
        node = self.root
        for ch in s:
            node = node.children.setdefault(ch, _Node())
        return node


def token_words(vocab: VocabIndex) -> TokenWords:
    return vocab.derived("token-words", TokenWords)


class WordSet:
    """A set of allowed (lower-case) words with prefix queries and cached masks per prefix."""

    def __init__(self, words, vocab: VocabIndex, name: str):
        self.words = tuple(sorted(words))
        self.set = frozenset(self.words)
        self.vocab = vocab
        self.name = name
        self.tw = token_words(vocab)
        self._prefix_cache: dict[str, bool] = {}
        self._masks: dict[tuple[str, bool, int | None], torch.Tensor] = {}
        self._static: np.ndarray | None = None
        self._static_final: np.ndarray | None = None

    def is_prefix(self, s: str) -> bool:
        hit = self._prefix_cache.get(s)
        if hit is None:
            i = bisect.bisect_left(self.words, s)
            hit = self._prefix_cache[s] = i < len(self.words) and self.words[i].startswith(s)
        return hit

    def _statics(self) -> tuple[np.ndarray, np.ndarray]:
        """Boundary tokens whose middle words and tail are fine; and those whose tail is
        empty or already a whole word (the text could end right after them)."""
        if self._static is None:
            tw, ok, final = self.tw, [], []
            for i, b in enumerate(tw.has_boundary):
                good = b and all(m in self.set for m in tw.middles[i]) and (
                    not tw.tail[i] or self.is_prefix(tw.tail[i]))
                ok.append(good)
                final.append(good and (not tw.tail[i] or tw.tail[i] in self.set))
            self._static = np.array(ok, dtype=bool)
            self._static_final = np.array(final, dtype=bool)
        return self._static, self._static_final

    def mask(self, p: str, final: bool = False, case: int | None = None) -> torch.Tensor:
        """Tokens allowed after the word in progress ``p``, whose letter case so far is
        ``case`` (TokenWords.next_case; None: any case).  ``final``: the text must be able to end after
        this token (the last step of the budget)."""
        key = (p, final, case)
        m = self._masks.get(key)
        if m is not None:
            return m
        static, static_final = self._statics()
        ids: list[int] = []
        # Walk the token trie along strings s with p + s still a prefix of a word.
        stack = [("", self.tw.root)]
        while stack:
            s, node = stack.pop()
            word = p + s
            if not word or word in self.set:
                ids.extend(node.bounded)
            if s:
                if final:
                    if word in self.set:
                        ids.extend(node.pure)
                else:
                    ids.extend(node.pure)
            for ch, child in node.children.items():
                if self.is_prefix(word + ch):
                    stack.append((s + ch, child))
        # Composed on the host in numpy, then moved once: a few vocabulary-sized torch ops
        # per new prefix cost milliseconds each when torch's threads compete for cores.
        dyn = np.zeros(self.vocab.size, dtype=bool)
        dyn[ids] = True
        # A bounded token also needs its middle words and tail to be fine.
        m = ((dyn & (static_final if final else static)) | (dyn & ~self.tw.boundary_np)) & self.tw.clean_np
        if case is not None:
            m &= self.tw.case_masks[case]
        # p must itself be a word (or empty) before a boundary with an empty head; the
        # trie walk added those tokens only in that case.
        if p == "" or p in self.set:
            m[list(self.vocab.eos_ids)] = True
        t = torch.from_numpy(m).to(self.vocab.device)
        self._masks[key] = t
        return t

    def advance(self, p: str, token_id: int) -> str:
        """The word in progress after ``token_id``."""
        tw = self.tw
        return tw.tail[token_id] if tw.has_boundary[token_id] else p + tw.head[token_id]


def word_in_progress(context: str) -> str:
    i = len(context)
    while i > 0 and is_word_char(context[i - 1]):
        i -= 1
    return normalize(context[i:])


class _WordState(Masker):
    """Tracks the word in progress.  Text the writer left mid-word is theirs: the model
    may not continue that word (its first token must start with a boundary), so every
    word-level rule judges only words the model wrote, as ``check`` on the output does."""

    def __init__(self, name: str, vocab: VocabIndex):
        super().__init__(name, vocab)
        self.tw = token_words(vocab)
        self.p = ""
        self.must_break = False

    def reset(self, context: str) -> None:
        self.p = ""
        self.must_break = bool(word_in_progress(context))

    def _break(self, m: torch.Tensor) -> torch.Tensor:
        return m & self.tw.break_mask if self.must_break else m

    def advance(self, token_id: int) -> None:
        tw = self.tw
        self.must_break = False
        self.p = tw.tail[token_id] if tw.has_boundary[token_id] else self.p + tw.head[token_id]

    def snapshot(self):
        return (self.p, self.must_break)

    def restore(self, snap) -> None:
        self.p, self.must_break = snap


class WordMasker(_WordState):
    """Every word (or only the next word) belongs to a word set: the words of the writer's
    ``lexicon`` (common words unless a common: rule says otherwise) that obey the rule."""

    def __init__(self, constraint: Constraint, vocab: VocabIndex, scope: str = "every",
                 lexicon: Lexicon | None = None):
        super().__init__(constraint.spec(), vocab)
        words = allowed_words(constraint, lexicon)
        if not words:
            raise ImpossibleConstraint(f"no word in the dictionary satisfies '{constraint.spec()}'")
        key = lexicon.key if lexicon is not None else None
        self.words = _word_set(words, vocab, (constraint.spec(), key))
        self.scope = scope
        self.active = True
        self.case = 0  # the letter-case shape of the word in progress

    def reset(self, context: str) -> None:
        super().reset(context)
        self.active = True
        self.case = 0

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        if not self.active:
            return None
        return self._break(self.words.mask(self.p, final=steps_left <= 1, case=self.case))

    def advance(self, token_id: int) -> None:
        if not self.active:
            return
        tw = self.tw
        if self.scope == "next" and tw.has_boundary[token_id] and (self.p or tw.head[token_id]):
            self.active = False  # the next word is done; the rest is free
        self.case = tw.next_case(self.case, token_id)
        super().advance(token_id)

    def done_ok(self) -> bool:
        return not self.active or not self.p or self.p in self.words.set

    def snapshot(self):
        return (super().snapshot(), self.active, self.case)

    def restore(self, snap) -> None:
        base, self.active, self.case = snap
        super().restore(base)


def _word_set(words, vocab: VocabIndex, name) -> WordSet:
    return vocab.derived(("word-set", name), lambda v: WordSet(words, v, str(name[0])))


def _scope(c: Constraint) -> str:
    return getattr(c, "scope", "every")


def build_words(cs: list[WordConstraint], vocab: VocabIndex, lexicon: Lexicon | None = None) -> list[Masker]:
    """The word rules of every word share one masker (their word sets intersect);
    title-case and each scoped rule (next:, line-end:) get their own."""
    maskers: list[Masker] = []
    every = [c for c in cs if _scope(c) == "every"]
    title = [c for c in every if c.spec() == "title-case"]
    every = [c for c in every if c not in title]
    for c in cs:
        if c not in title and is_case_sensitive(c):
            raise ImpossibleConstraint(
                f"'{c.spec()}': a rule about letter case can only stand on its own "
                "(title-case), not under or / not / a scope"
            )
    if title:
        maskers.append(TitleCaseMasker(vocab))
    if every:
        maskers.append(WordMasker(every[0] if len(every) == 1 else And(*every), vocab, lexicon=lexicon))
    for c in cs:
        if _scope(c) == "next":
            maskers.append(WordMasker(c.inner, vocab, scope="next", lexicon=lexicon))
        elif _scope(c) == "line-end":
            maskers.append(LineEndMasker(c.inner, vocab, lexicon))
    return maskers


class TitleCaseMasker(_WordState):
    """Every word starts with a capital: a token may start a word (at its beginning when
    no word is in progress, or after a boundary inside it) only with a capital letter."""

    def __init__(self, vocab: VocabIndex):
        super().__init__("title-case", vocab)

        def starts_ok(text: str, at_word_start: bool) -> bool:
            at_start = at_word_start
            for ch in text:
                if ch.isalpha():
                    if at_start and not ch.isupper():
                        return False
                    at_start = False
                elif ch not in "'’":  # a leading apostrophe is not part of the word
                    at_start = True
            return True

        self._start = vocab.mask("title-start", lambda _i, t: starts_ok(t, True))
        self._mid = vocab.mask("title-mid", lambda _i, t: starts_ok(t, False))

    def allowed(self, steps_left: int) -> torch.Tensor:
        started = any(c.isalpha() for c in self.p)  # a leading apostrophe starts nothing
        return self._break(self._mid if started else self._start)


class LineEndMasker(_WordState):
    """Only line-final words (the last word before a newline, or before the end of the
    text) obey the rule.

    State: the word in progress ``p`` and the last word completed on this line.  For a
    token with a newline, the word that newline ends is either fixed by the token itself
    (a boundary, then a word, before the newline) or ``p + head`` (or the last word, when
    both are empty): the first kind is judged once, the second per state, grouped by head."""

    def __init__(self, constraint: Constraint, vocab: VocabIndex, lexicon: Lexicon | None = None):
        super().__init__("line-end:" + constraint.spec(), vocab)
        self.constraint = constraint
        # Line-final words come from the writer's lexicon too, like every word set.
        self.lexicon = lexicon if lexicon is not None else lexicon_for(constraint)
        self.last = ""
        fixed_bad: list[int] = []
        self.by_head: dict[str, list[int]] = {}
        for i, text in enumerate(vocab.texts):
            if vocab.special[i] or "\n" not in text:
                continue
            before = text.split("\n", 1)[0]
            head = ""
            while len(head) < len(before) and is_word_char(before[len(head)]):
                head += before[len(head)]
            later = word_in_progress(_strip_right(before[len(head):]))
            if later:  # a word of its own ends the line
                if not self._ok(later):
                    fixed_bad.append(i)
            else:
                self.by_head.setdefault(normalize(head), []).append(i)
        self.fixed_bad = vocab.ids_mask(fixed_bad)
        self._cache: dict[tuple[str, str], torch.Tensor] = {}

    def _ok(self, word: str) -> bool:
        return not word or (word in self.lexicon and self.constraint.word_ok(word))

    def reset(self, context: str) -> None:
        super().reset(context)
        self.last = ""

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        key = (self.p, self.last)
        m = self._cache.get(key)
        if m is None:
            bad = [i for head, ids in self.by_head.items()
                   if not self._ok(self.p + head or self.last) for i in ids]
            m = ~(self.fixed_bad | self.vocab.ids_mask(bad))
            if not self.done_ok():
                m = m & ~self.vocab.ids_mask(self.vocab.eos_ids)
            self._cache[key] = m
        return self._break(m)

    def advance(self, token_id: int) -> None:
        self.must_break = False
        for ch in self.vocab.texts[token_id]:  # one token's few characters
            if is_word_char(ch):
                self.p += ch.lower()
            else:
                if self.p:
                    self.last, self.p = normalize(self.p), ""
                if ch == "\n":
                    self.last = ""

    def done_ok(self) -> bool:
        return self._ok(self.p or self.last)

    def safe(self) -> bool:
        return self.done_ok()

    def snapshot(self):
        return (self.p, self.must_break, self.last)

    def restore(self, snap) -> None:
        self.p, self.must_break, self.last = snap


def _strip_right(s: str) -> str:
    """Drop trailing non-word characters (punctuation and spaces before a newline)."""
    i = len(s)
    while i > 0 and not is_word_char(s[i - 1]):
        i -= 1
    return s[:i]
