"""Structure rules as token masks: counts of words, sentences, paragraphs and characters
that hold by construction, with given words and closing sentences written in their place.

The checker splits sentences with the trained Punkt and words with Treebank (constraints.units).  The
decoder keeps the text inside a small surface grammar on which both splitters are
predictable, so its own counts are theirs:

- a word is a run of ASCII letters and digits (not "cannot", "gonna", ... which Treebank
  splits), possibly followed by a contraction ('s 'm 'd 'll 're 've, n't), a word of its own;
- inside a sentence, words are separated by one space, or by ", " "; " ": ";
- a sentence ends with . ! or ? right after a word of two letters or more (the trained
  Punkt may keep "a." or "I." inside the sentence, as an initial); with a period only
  after a word the trained Punkt surely splits after (no abbreviation of its model, no
  number: structure_ends.py), with ! or ? after any of them;
- the next sentence starts after one space, or after a blank line (a new paragraph), with
  a capital letter; the text ends right after a sentence end.

Words and sentences given by the rules (a word at a position, a sentence's last word, a
paragraph's closing sentence) are written verbatim by allowing only the tokens that spell
them: those may hold any character, and their counts are taken with the splitters above.
A given word ending in a period ("Mr.") must be an abbreviation of the model, and the word
after it starts in lower case, so that the period does not end the sentence; a closing
sentence that is not the last must end where Punkt surely splits.

Per step the mask is a union of a few per-vocabulary token classes (letters, space +
letters, inner punctuation, sentence end, space, newline, blank line); for each class the
masker computes the counts after it and asks ``_Counts.rest`` whether the rules can still be
met in the tokens left.  Free words cost one token each, given words and sentences their
shortest spelling in tokens.  So every transition keeps the rest reachable, and exact
counts hold by construction.  Characters are planned too: near the end, a word may only be
started or continued if some dictionary word completes it to land exactly on the count.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import torch

from constraints.base import And, ImpossibleConstraint
from constraints.cache import BoundedCache
from constraints.lexicon import default_lexicon
from constraints.structure import ANY
from constraints.structure_plan import StructurePlan, plan_structure
from constraints.units import unit_key

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker
from studio.masks.chars import CharMasker
from studio.masks.oneword import OneWordMasker
from studio.masks.structure_counts import Counts, State
from studio.masks.structure_ends import sentence_ends
from studio.masks.structure_tokens import (
    APOS, CONTRACTIONS, END_CHARS, ENDP, INF, INNER, INNER_CHARS, LET, NL, NL2, SLET, SP, SPLIT_WORDS,
    CompletionLengths, Landing, common_words, lowest_bit, structure_tokens,
)
from studio.masks.words import WordMasker, WordSet

NATURAL_WORDS = 14  # a sentence's length when no rule and no budget says otherwise
STEER = 2.5  # logit bonus per word past a sentence's planned length
WINDOW = 48  # characters left under which words must land exactly on a char count


# ---------------------------------------------------------------- the masker

SENTENCE_START = ("start", "para", "gap", "end")  # phases where the next word opens a sentence
CLASH = "\x00"  # two rules want different words in one place


class StructureMasker(Masker):
    """All structure rules of one constraint as one masker (their counts interact).

    Phases of the surface grammar: start (nothing written), word (in a word), inner (after
    , ; :), space (after a space inside a sentence), end (after . ! ?), gap (after a sentence
    end and a space), nl (after a sentence end and one newline), para (after a blank line)."""

    plans_with_peers = True

    def __init__(self, plan: StructurePlan, vocab: VocabIndex, name: str):
        super().__init__(name, vocab)
        self.plan = plan
        self.toks = structure_tokens(vocab)
        self.ends = sentence_ends()
        self.counts = Counts(plan, self.toks)
        self.peers: list[Masker] = []
        self.words: WordSet | None = None
        self.capitals = True  # sentences open with a capital (bind: unless the peers ban them)
        self.chars = plan.text.chars if plan.text.chars != ANY else None
        self._table: tuple | None = None
        self._full: CompletionLengths | None = None
        self._cache: BoundedCache = BoundedCache(2048)
        self.reset("")

    def bind(self, peers) -> None:
        """The other maskers of the set: the text ends only where they may end it, their
        must-use words get their tokens, and words end where their word rules allow (a
        word they allow may take more tokens, which the budget keeps room for)."""
        self.peers = [m for m in peers if m is not self]
        self.words = next((m.words for m in self.peers if isinstance(m, WordMasker) and m.scope == "every"), None)
        # A sentence opens with a capital unless the other rules allow none ("lowercase"):
        # then in lower case, which Punkt splits after a period all the same.
        capital = self.toks.word_start[(LET, True)] | self.toks.word_start[(SLET, True)]
        for m in self.peers:
            static = m.static_mask()
            if static is not None:
                capital = capital & static
        self.capitals = bool(capital.any())
        self._table = self._full = None

    def _complete(self, p: str) -> torch.Tensor | None:
        """Letter tokens after which the word (``p`` so far) is one the word rules allow;
        None when there are no word rules (any word is complete)."""
        if self.words is None:
            return None
        return self.words.mask(p, final=True)

    # ------------------------------------------------------------ state

    def reset(self, context: str) -> None:
        self.s = State()
        self.phase = "start"
        self.p = ""  # the word in progress, lower case
        self.tok = ""  # ... as Punkt reads it before a period: since the last space or sign
        self.lower_next = False  # after a given word ending in a period: no capital next
        self.case = 0  # its letter-case shape (TokenWords)
        self.locked = False  # it is a given word: it may not go on
        self.fixed = ""  # the rest of a given word or sentence being written
        self.closing = False  # ... which is a paragraph's closing sentence
        self.c = 0  # characters written
        self.target = NATURAL_WORDS  # planned words of the open sentence
        self.cap = INF  # most words of the open sentence (its last word is written at the cap)
        self.steps = 0  # tokens left at the last step (for planning sentence lengths)
        self.planned = False
        self.last_now = False
        # A leading space: dropped by the engine after a prompt ending in a space, written
        # after a prompt ending in a word, not written after nothing (instruct) or a newline.
        self.lead = "drop" if context.endswith(" ") else ("space" if context and not context[-1].isspace() else "none")

    def snapshot(self):
        return (self.s, self.phase, self.p, self.tok, self.lower_next, self.case, self.locked, self.fixed,
                self.closing, self.c, self.target, self.cap, self.steps, self.planned, self.last_now)

    def restore(self, snap) -> None:
        (self.s, self.phase, self.p, self.tok, self.lower_next, self.case, self.locked, self.fixed,
         self.closing, self.c, self.target, self.cap, self.steps, self.planned, self.last_now) = snap

    def done_ok(self) -> bool:
        if self.fixed or self.phase != "end":
            return False
        r = self.counts.rest(self.s)
        return r is not None and r.tokens == 0 and (self.chars is None or self.c in self.chars)

    # ------------------------------------------------------------ given words

    def _last_word(self, s: State) -> str | None:
        """The word the open sentence (index s.st) must end with, if any."""
        plan, c = self.plan, self.counts
        want = []
        if s.st < len(plan.sentence_ends):
            want.append(plan.sentence_ends[s.st])
        want.append(plan.sentence.at.get(-1))
        # The text's / paragraph's last word, when this sentence is surely their last.
        if c.S.hi is not None and s.st + 1 == c.S.hi:
            want.append(plan.text.at.get(-1))
        if c.ps.hi is not None and s.pst + 1 == c.ps.hi and not c.closings:
            want.append(plan.paragraph.at.get(-1))
        want = [w for w in want if w is not None]
        if not want:
            return None
        return want[0] if all(unit_key(w) == unit_key(want[0]) for w in want) else CLASH

    def _next_word(self, s: State, sentence_start: bool) -> str | None:
        """The given word the next word must be, if any (``s``: the counts before it)."""
        plan = self.plan
        ws = 0 if sentence_start else s.ws
        want = [plan.text.at.get(s.wt + 1), plan.sentence.at.get(ws + 1)]
        if sentence_start and s.pst == 0:
            want.append(plan.paragraph.at.get(1))
            want.append(plan.paragraph_starts.get(s.g + 1))
        cap = self.counts.sw.hi if sentence_start else self.cap
        if cap is not None and ws + 1 == cap:
            want.append(self._last_word(s))
        want = [w for w in want if w is not None]
        if not want:
            return None
        return want[0] if all(unit_key(w) == unit_key(want[0]) for w in want) else CLASH

    def _ok_last(self, s: State, word: str) -> State:
        """``s`` with the last-word flags for ``word`` as the latest word."""
        w = self._last_word(s)
        return replace(s, last_ok=w is None or unit_key(w) == word,
                       text_last_ok=_edge_ok(self.plan.text.at, word),
                       para_last_ok=_edge_ok(self.plan.paragraph.at, word))

    def _with_word(self, s: State, sentence_start: bool, word: str) -> State:
        """The counts once a new word starts (``word``: lower case, '' if not known yet)."""
        started = replace(s, wt=s.wt + 1, ws=1 if sentence_start else s.ws + 1, pwc=s.pwc + 1, must_word=False)
        return self._ok_last(started, word)

    @staticmethod
    def _ended(s: State) -> State:
        return replace(s, st=s.st + 1, pst=s.pst + 1, ws=0, must_word=False, last_ok=True)

    @staticmethod
    def _new_paragraph(s: State) -> State:
        return replace(s, g=s.g + 1, pst=0, pwc=0, closing_done=False, para_last_ok=True)

    def _closing_due(self, s: State) -> bool:
        c = self.counts
        return bool(c.closings) and not s.closing_done and s.g < len(c.sizes) and s.pst == c.sizes[s.g] - 1

    def _closing_written(self, s: State) -> State:
        c, j = self.counts, s.g
        n = c.closing_words[j]
        done = replace(s, wt=s.wt + n, st=s.st + 1, pst=s.pst + 1, pwc=s.pwc + n, ws=0, must_word=False,
                       last_ok=True, closing_done=True)
        last = c.closing_last[j]
        return replace(done, text_last_ok=_edge_ok(self.plan.text.at, last),
                       para_last_ok=_edge_ok(self.plan.paragraph.at, last))

    def _cased(self, word: str, sentence_start: bool) -> str:
        if sentence_start:
            return word[:1].upper() + word[1:] if word[:1].islower() else word
        # After "Mr." a capital may start a sentence for Punkt; rules compare words in any case.
        return word[:1].lower() + word[1:] if self.lower_next else word

    # ------------------------------------------------------------ feasibility

    def _fits(self, s: State, budget: int, chars_after: int, extra: int = 0) -> bool:
        """Whether the rules can still be met from counts ``s`` in ``budget`` tokens (plus
        ``extra`` for a given word under way), with ``chars_after`` characters written."""
        r = self.counts.rest(s)
        if r is None or r.tokens + extra > budget:
            return False
        ch = self.chars
        if ch is not None:
            if ch.hi is not None and chars_after + r.chars > ch.hi:
                return False
            # Words may grow to reach the count, a token's worth of letters at a time (the
            # exact landing is planned near the end, where words must be dictionary words).
            short = ch.lo - chars_after - r.chars
            if short > 0 and math.ceil(short / self.toks.max_len) > budget - r.tokens - extra:
                return False
        return True

    def _peers_done(self) -> bool:
        return all(m.done_ok() for m in self.peers)

    def _may_go_on(self, s: State) -> bool:
        """After a sentence end: whether another sentence may follow."""
        c = self.counts
        if c.S.hi is not None and s.st >= c.S.hi:
            return False
        nxt = [replace(s, ws=1, wt=s.wt + 1, pwc=s.pwc + 1), replace(self._new_paragraph(s), ws=1, wt=s.wt + 1, pwc=1)]
        return any(c.rest(x) is not None for x in nxt)

    # ------------------------------------------------------------ masks

    def allowed(self, steps_left: int) -> torch.Tensor:
        if not self.planned:
            self._plan(steps_left)
        self.steps = steps_left
        T = self.toks
        budget = steps_left - 1 - self.peer_need()
        self.last_now = False  # set where only the sentence's given last word fits
        if self.fixed:
            after = self._closing_written(self.s) if self.closing else self.s
            r = self.counts.rest(after)
            return T.prefix_mask(self.fixed, budget + 1 - r.tokens) if r is not None else T.none
        s, ph = self.s, self.phase
        if ph == "word":
            m = self._boundary_mask(budget)
            if not self.locked:
                m = m | self._continue_mask(budget) | self._contraction_mask(budget)
            return m
        if ph == "inner":
            m = self._word_mask(s, budget, sentence_start=False, space=True)
            if self._word_mask(s, budget - 1, sentence_start=False, space=False, pre=1).any():
                m = m | T.masks[SP]
            return m
        if ph == "space":
            return self._word_mask(s, budget, sentence_start=False, space=False)
        if ph == "end":
            return self._after_end_mask(budget)
        if ph in ("gap", "para"):
            return self._sentence_mask(s, budget, space=False)
        if ph == "nl":
            return T.masks[NL] if self._fits(self._new_paragraph(s), budget - 1, self.c + 1) else T.none
        # start: a capital, unless a prompt ending in a word or a space is continued mid-
        # sentence; a leading space only there (after a word, or dropped by the engine)
        if self.lead == "none":
            return self._sentence_mask(s, budget, space=False)
        return self._sentence_mask(s, budget, space=False, capital=False) | \
            self._sentence_mask(s, budget, space=True, capital=False)

    def _plan(self, steps_left: int) -> None:
        """At the first step: sentences per paragraph, and whether the budget fits at all."""
        self.planned = True
        self.counts.plan_sizes(steps_left)
        r = self.counts.rest(self.s)
        if r is None:
            raise ImpossibleConstraint(f"'{self.name}': no text can meet these counts together")
        if r.tokens > steps_left:
            raise ImpossibleConstraint(f"'{self.name}' needs at least {r.tokens} tokens, more than the "
                                       f"{steps_left} allowed (raise max_new_tokens)")

    def check_budget(self, max_new_tokens: int) -> None:
        """Refuse, before decoding, a token budget too small for the counts."""
        saved = self.snapshot()
        try:
            self.reset("")
            self._plan(max_new_tokens)
        finally:
            self.restore(saved)

    def _continue_mask(self, budget: int) -> torch.Tensor:
        """Letters that go on with the word in progress."""
        T = self.toks
        if not self._fits(self.s, budget, self.c + 1):
            return T.none
        m = T.case[self.case] & ~self._split_continuations(self.p)
        done = self._complete(self.p)
        if done is not None and not self._fits(self.s, budget - 1, self.c + 1):
            m = m & done  # no room left for another piece of this word
        if self._landing_near():
            m = m & self._continue_landing()
        return m

    def _contraction_mask(self, budget: int) -> torch.Tensor:
        """'s 'm 'd 'll 're 've after a word, 't after one ending in n: a word of its own to
        the splitter, so it counts as one (and may not take a given word's place)."""
        T, s, p = self.toks, self.s, self.p
        if s.ws >= self.cap or self._landing_near() or self._next_word(s, False) is not None or len(p) < 1:
            return T.none
        out = T.none
        for c, tb in CONTRACTIONS.items():
            if (c == "'t") and (len(p) < 2 or not p.endswith("n")):
                continue
            # The splitter's first word ("this" of "this'll", "does" of "doesn't") is a word of
            # its own to COLLIE's units: the word rules must allow it too.
            base = p[:-1] if c == "'t" else p
            if self.words is not None and base not in self.words.set:
                continue
            if self._fits(self._with_word(s, False, unit_key(tb)), budget, self.c + len(c)):
                out = out | T.contraction[c]
        return out

    def _split_continuations(self, p: str) -> torch.Tensor:
        key = ("split", p)
        hit = self._cache.get(key)
        if hit is None:
            ids = [i for w in SPLIT_WORDS if w.startswith(p) and len(w) > len(p)
                   for rest in (w[len(p):], w[len(p):].upper()) for i in self.toks.by_text.get(rest, ())]
            hit = self._cache[key] = self.vocab.ids_mask(ids)
        return hit

    def _boundary_mask(self, budget: int) -> torch.Tensor:
        """After a word: its sentence's end, inner punctuation, a space, or space + next word."""
        T, s, p = self.toks, self.s, self.p
        out = T.none
        if p in SPLIT_WORDS:
            return out
        if self._word_mask(s, budget - 1, sentence_start=False, space=True, pre=1).any():
            inner = T.masks[INNER]
            if s.pwc == 1 and self.plan.paragraph_starts.get(s.g + 1) is not None:
                # A paragraph's given first word is read up to a comma or a sentence end
                # (as IFEval reads it): "Booster:" would be another word.
                inner = inner & self.vocab.ids_mask(T.by_text.get(",", []))
            out = out | inner
        if self._word_mask(s, budget - 1, sentence_start=False, space=False, pre=1).any():
            out = out | T.masks[SP]
        out = out | self._word_mask(s, budget, sentence_start=False, space=True)
        # The sentence ends here: long enough, right last word, and not an initial ("a.").
        if (len(p) >= 2 or self.locked) and s.last_ok and s.ws >= self.counts.sw.lo:
            after = self._ended(s)
            if self._fits(after, budget, self.c + 1) and self._end_chars_ok(after):
                r = self.counts.rest(after)
                last = r.tokens == 0 and not self._may_go_on(after)
                # The text's last sentence: only if every other rule may end the text too.
                if not last or self._peers_done():
                    out = out | (T.masks[ENDP] if self.ends.period_ends(self.tok) else T.bang)
        return out

    def _end_chars_ok(self, after: State) -> bool:
        """A sentence end keeps a char count reachable (exactly, if the text must end)."""
        if self.chars is None:
            return True
        c1, r = self.c + 1, self.counts.rest(after)
        if r.tokens == 0 and not self._may_go_on(after):
            return c1 in self.chars
        if r.tokens == 0 and c1 in self.chars:
            return True
        hi = self.chars.hi if self.chars.hi is not None else INF
        return c1 + max(r.chars, 4) <= hi  # more text: " Ab." at least

    def _word_mask(self, s: State, budget: int, sentence_start: bool, space: bool,
                   capital: bool = True, pre: int = 0) -> torch.Tensor:
        """Tokens that start the next word (``space``: with a space before it), after
        ``pre`` characters still to be written by tokens before it."""
        T = self.toks
        if not sentence_start and s.ws >= self.cap:
            return T.none
        capital = capital and self.capitals
        given = self._next_word(s, sentence_start)
        sep = " " if space else ""
        if given == CLASH:
            return T.none
        if given is not None:
            text = sep + self._cased(given, sentence_start and capital)
            after = self._with_word(s, sentence_start, unit_key(given))
            if not self._fits(after, budget, self.c + pre + len(text), extra=T.spell_cost(text) - 1):
                return T.none
            return T.prefix_mask(text, budget + 1 - self.counts.rest(after).tokens)
        after = self._with_word(s, sentence_start, "")
        if not self._fits(after, budget, self.c + pre + len(sep) + 1):
            return self._last_word_now(s, budget, sentence_start, sep, capital, pre)
        m = T.word_start[(SLET if space else LET, sentence_start and capital)]
        if self.lower_next and not sentence_start:
            m = m & T.uncapital_start[SLET if space else LET]
        if not space:
            m = m & T.case[0]
        done = self._complete("")
        if done is not None and not self._fits(after, budget - 1, self.c + pre + len(sep) + 1):
            m = m & done  # no room for a second piece of this word
        if self._landing_near():
            m = m & self._start_landing(after, pre)
        return m

    def _last_word_now(self, s: State, budget: int, sentence_start: bool, sep: str, capital: bool,
                       pre: int) -> torch.Tensor:
        """No room for a free word: the sentence's given last word, if it fits now."""
        T = self.toks
        probe = self._ended(s) if sentence_start and s.ws else s
        last = self._last_word(probe)
        if last in (None, CLASH) or (not sentence_start and s.last_ok):
            return T.none
        text = sep + self._cased(last, sentence_start and capital)
        after = self._with_word(s, sentence_start, unit_key(last))
        if not self._fits(after, budget, self.c + pre + len(text), extra=T.spell_cost(text) - 1):
            return T.none
        self.last_now = True
        return T.prefix_mask(text, budget + 1 - self.counts.rest(after).tokens)

    def _sentence_mask(self, s: State, budget: int, space: bool, capital: bool = True, pre: int = 0) -> torch.Tensor:
        """A new sentence: its first word, or the paragraph's given closing sentence."""
        if not self._closing_due(s):
            return self._word_mask(s, budget, sentence_start=True, space=space, capital=capital, pre=pre)
        text = (" " if space else "") + self.counts.closings[s.g]
        after = self._closing_written(s)
        r = self.counts.rest(after)
        if r is None or not self._fits(after, budget - self.toks.spell_cost(text) + 1, self.c + pre + len(text)):
            return self.toks.none
        return self.toks.prefix_mask(text, budget + 1 - r.tokens)

    def _after_end_mask(self, budget: int) -> torch.Tensor:
        """After a sentence end: the next sentence (same paragraph), a blank line, or the end."""
        T, s, c = self.toks, self.s, self.counts
        out = T.none
        if not s.closing_done and (c.ps.hi is None or s.pst < c.ps.hi):
            out = out | self._sentence_mask(s, budget, space=True)
            if self._sentence_mask(s, budget - 1, space=False, pre=1).any():
                out = out | T.masks[SP]
        may_break = (s.para_last_ok and s.pst >= c.ps.lo and s.pwc >= c.pw.lo
                     and (c.G.hi is None or s.g + 1 < c.G.hi) and (not c.closings or s.closing_done))
        plan = self.plan
        if may_break and (plan.paragraph.rules or plan.paragraph_ends or plan.paragraph_starts
                          or "paragraphs" in plan.text.rules):
            nxt = self._new_paragraph(s)
            if self._sentence_mask(nxt, budget - 1, space=False, pre=2).any():
                out = out | T.masks[NL2]
            if self._sentence_mask(nxt, budget - 2, space=False, pre=2).any():
                out = out | T.masks[NL]
        if self.done_ok():
            out = out | T.eos
        return out

    # ------------------------------------------------------------ landing on a char count

    def _landing_near(self) -> bool:
        return self.chars is not None and self.chars.hi is not None and self.chars.hi - self.c <= WINDOW

    def _word_rules(self) -> tuple[str, list]:
        """(a key, the other rules' character constraints): with their word set, what a
        word landing on a char count must obey."""
        rules = [c for m in self.peers if isinstance(m, CharMasker) for c in m.constraints]
        key = " & ".join([self.words.name if self.words is not None else "any"] + [c.spec() for c in rules])
        return key, rules

    def _allowed(self, pool, rules) -> frozenset:
        words = pool if self.words is None else pool & self.words.set
        return frozenset(w for w in words if all(c.word_ok(w) for c in rules))

    def _word_table(self):
        """(completion lengths of the common words allowed here; per token as a new word:
        their bits, the same without 'a one-letter word ends here', the least of each).
        New words land on common words (one token after a space), for a natural ending.
        Built once per vocabulary and set of rules."""
        if self._table is None:
            key, rules = self._word_rules()

            def build(vocab):
                table = CompletionLengths(self._allowed(common_words(self.toks), rules))
                bits = np.array([table.bits(q) if q else 0 for q in self.toks.letters], dtype=np.int64)
                one = np.array([len(q) == 1 for q in self.toks.letters])
                end_bits = np.where(one, bits & ~np.int64(1), bits)
                low = np.array([lowest_bit(int(x)) for x in bits], dtype=np.int64)
                low_end = np.array([lowest_bit(int(x)) for x in end_bits], dtype=np.int64)
                return (table, *(torch.from_numpy(a).to(vocab.device) for a in (bits, end_bits, low, low_end)))

            self._table = self.vocab.derived(("structure-landing", key), build)
        return self._table

    def _full_table(self) -> CompletionLengths:
        """Completion lengths over every dictionary word allowed here: a word begun before
        the count came near may be a rarer one."""
        if self._full is None:
            key, rules = self._word_rules()
            self._full = self.vocab.derived(("structure-landing-all", key), lambda v: CompletionLengths(
                self._allowed(frozenset(default_lexicon().words), rules)))
        return self._full

    def _landing(self, after: State, pre: int = 0) -> "Landing":
        """For counts ``after`` (a word under way, ``pre`` characters before it still to
        come): how many characters may follow the word, and which endings fit them."""
        c = self.counts
        land = Landing(self.chars.lo - self.c - pre, self.chars.hi - self.c - pre)
        if after.last_ok and after.ws >= c.sw.lo:  # the word may end its sentence
            r = c.rest(self._ended(after))
            if r is not None:
                if r.tokens == 0:
                    land.exact.append(1)  # a sentence end, and the text is complete
                    if self._may_go_on(self._ended(after)):
                        land.flex_end = 1 + 4  # or another sentence: " Ab." at least
                elif r.rigid and not r.can_grow:
                    land.exact.append(1 + r.chars)
                else:
                    land.flex_end = 1 + r.chars + r.ends
        if after.ws < self.cap:  # another word may follow in this sentence
            r = c.rest(self._with_word(after, False, ""))
            if r is not None:
                land.flex_more = 2 + r.chars + r.ends
        return land

    def _start_landing(self, after: State, pre: int = 0) -> torch.Tensor:
        _table, bits, end_bits, low, low_end = self._word_table()
        land = self._landing(after, pre)
        L = self.toks.lens
        return land.fits(bits, end_bits, low, low_end, L)

    def _continue_landing(self) -> torch.Tensor:
        """Letters after which an allowed word can still end the word in progress so that
        the char count is met."""
        T = self.toks
        table = self._full_table()
        key = ("cont", self.p)
        hit = self._cache.get(key)
        if hit is None:
            ids, bits = [], []
            stack = [("", T.root)]
            while stack:
                q, node = stack.pop()
                b = table.bits(self.p + q) if q else 0
                if b:
                    more = [i for i in node.pure if T.kind[i] == LET]
                    ids += more
                    bits += [b] * len(more)
                for ch, child in node.children.items():
                    if table.bits(self.p + q + ch):
                        stack.append((q + ch, child))
            dev = self.vocab.device
            low = [lowest_bit(b) for b in bits]
            hit = self._cache[key] = (torch.tensor(ids, dtype=torch.long, device=dev),
                                      torch.tensor(bits, dtype=torch.int64, device=dev),
                                      torch.tensor(low, dtype=torch.int64, device=dev))
        idx, bt, lowt = hit
        out = torch.zeros(self.vocab.size, dtype=torch.bool, device=self.vocab.device)
        if len(idx):
            # The word in progress already has a letter: with more, it is no initial.
            out[idx] = self._landing(self.s).fits(bt, bt, lowt, lowt, T.lens[idx])
        return out

    # ------------------------------------------------------------ steering

    def bias(self, steps_left: int) -> torch.Tensor | None:
        """Past the planned length of the sentence, favour its end, or its given last word
        where a token writes it whole (at the cap it is written anyway)."""
        if self.fixed or self.phase != "word" or self.s.ws < self.target:
            return None
        last = self._last_word(self.s)
        want = last if last not in (None, CLASH) and not self.s.last_ok else None
        key = ("bias", want, min(self.s.ws - self.target + 1, 4))
        hit = self._cache.get(key)
        if hit is None:
            T = self.toks
            if want is None:
                mask = T.masks[ENDP]
            else:
                mask = self.vocab.ids_mask([i for f in {want, want.capitalize()} for i in T.by_text.get(" " + f, ())])
            hit = self._cache[key] = mask.to(torch.float32) * (STEER * key[2])
        return hit

    def _plan_sentence(self) -> None:
        """A new sentence (self.s: the counts before it): its planned length (natural,
        within the rules, no more than its share of the tokens left) and its cap (the rule's
        most, or a few words past the plan when its last word is given, so that the word is
        written in time)."""
        c, s = self.counts, self.s
        lo, hi = c.sw.lo, c.sw.hi
        left = max(1, c.S.lo - s.st)
        rest = c.rest(self._ended(replace(s, ws=lo, wt=s.wt + lo, pwc=s.pwc + lo)))
        spare = self.steps - (rest.tokens if rest is not None else 0)
        target = min(NATURAL_WORDS, max(int(0.8 * spare / left), 1))
        self.target = max(min(target, hi) if hi is not None else target, lo)
        self.cap = hi if hi is not None else INF
        last = self._last_word(s)
        if last is not None and last != CLASH:
            cap = max(lo, self.target + 4)
            ended = self._ended(replace(s, ws=cap, wt=s.wt + cap, pwc=s.pwc + cap))
            if cap < self.cap and c.rest(ended) is not None:
                self.cap = cap

    # ------------------------------------------------------------ advance

    def advance(self, token_id: int) -> None:
        text = self.vocab.texts[token_id]
        ph = self.phase
        if ph == "start" and self.c == 0 and not self.fixed and self.lead == "drop" and text.startswith(" "):
            text = text[1:]  # the engine drops this space
        if not self.fixed and ph in SENTENCE_START and self._closing_due(self.s):
            self.fixed, self.closing = (" " if ph == "end" else "") + self.counts.closings[self.s.g], True
            self._plan_sentence()
        elif not self.fixed and self.toks.kind[token_id] == APOS and ph == "word":
            self.s = self._with_word(self.s, False, unit_key(CONTRACTIONS[text]))
            self.p, self.locked = unit_key(CONTRACTIONS[text]), True
            self.tok += text
            self.c += len(text)
            return
        elif not self.fixed and self._starts_given(text, token_id):
            pass  # the given word is under way in self.fixed
        elif not self.fixed:
            self._free(text, token_id)
            return
        self._fixed(text)

    def _starts_given(self, text: str, token_id: int) -> bool:
        """If the token starts the next word and that word is given: set it up."""
        ph, kind = self.phase, self.toks.kind[token_id]
        if ph == "word" and kind in (LET, INNER, ENDP):
            return False  # goes on with the word, or ends it without starting another
        if ph == "nl" or (ph == "inner" and kind == SP):
            return False
        sentence_start = ph in SENTENCE_START
        given = self._next_word(self.s, sentence_start)
        if given is None and self.last_now:
            given = self._last_word(self._ended(self.s) if sentence_start and self.s.ws else self.s)
        if given is None or given == CLASH:
            return False
        sep = " " if ph in ("word", "inner", "end") or (ph == "start" and text.startswith(" ")) else ""
        word = sep + self._cased(given, sentence_start and (ph != "start" or self.lead == "none"))
        if not word.startswith(text):
            return False
        if sentence_start:
            self._plan_sentence()
        self.s = self._with_word(self.s, sentence_start, unit_key(given))
        self.fixed, self.closing = word, False
        self.p, self.locked, self.case = unit_key(given), True, 0
        self.tok, self.lower_next = word.lstrip(" "), False
        return True

    def _fixed(self, text: str) -> None:
        self.fixed = self.fixed[len(text):]
        self.c += len(text)
        if self.fixed:
            return
        if self.closing:
            self.s = self._closing_written(self.s)
            self.phase, self.p, self.locked, self.closing = "end", "", False, False
            self.tok, self.lower_next = "", False
        else:
            self.phase = "word"
            self.lower_next = self.ends.keeps_sentence_open(self.tok)

    def _free(self, text: str, token_id: int) -> None:
        """A token of the surface grammar, character by character."""
        T = self.toks
        if T.kind[token_id] in (LET, SLET):
            self.case = T.next_case(self.case if self.phase == "word" else 0, token_id)
        for ch in text:
            ph = self.phase
            if ch.isascii() and ch.isalnum():
                if ph == "word":
                    self.p += ch.lower()
                    self.tok += ch
                    self.s = self._ok_last(self.s, self.p)
                else:
                    sentence_start = ph in ("start", "para", "gap")
                    if sentence_start:
                        self._plan_sentence()
                    self.s = self._with_word(self.s, sentence_start, ch.lower())
                    self.p, self.locked, self.phase = ch.lower(), False, "word"
                    self.tok, self.lower_next = ch, False
                continue
            self.p, self.locked, self.tok = "", False, ""
            if ch != " ":
                self.lower_next = False
            if ch == " ":
                if ph in ("word", "inner"):
                    self.phase = "space"
                    self.s = replace(self.s, must_word=True)
                elif ph == "end":
                    self.phase = "gap"
            elif ch in INNER_CHARS:
                self.phase = "inner"
                self.s = replace(self.s, must_word=True)
            elif ch in END_CHARS:
                self.s = self._ended(self.s)
                self.phase = "end"
            elif ch == "\n":
                if ph == "nl":
                    self.s = self._new_paragraph(self.s)
                    self.phase = "para"
                else:
                    self.phase = "nl"
        self.c += len(text)


def _edge_ok(at: dict, word: str) -> bool:
    w = at.get(-1)
    return w is None or unit_key(w) == word


def build_structure(cs, vocab: VocabIndex, lexicon=None) -> list[Masker]:
    """One masker for all structure rules of the constraint (their counts interact)."""
    constraint = cs[0] if len(cs) == 1 else And(*cs)
    plan = plan_structure(constraint)
    name = constraint.spec()
    if plan.one_word:
        return [OneWordMasker(plan, vocab, name)]
    _refuse_unsplittable(plan, name)
    m = StructureMasker(plan, vocab, name)
    m.counts.plan_sizes(None)
    if m.counts.rest(State()) is None:
        raise ImpossibleConstraint(_why_not(m.counts, name))
    return [m]


def _closing_end_token(closing: str) -> str | None:
    """The token a closing sentence's final period follows (None: it ends with ! or ?, or
    its period stands after a quote or bracket, where Punkt always splits)."""
    m = re.search(r"([.!?])[\"'”’)\]]*$", closing)
    if m is None or m.group(1) != "." or closing[:m.start()][-1:] in "\"'”’)]":
        return None
    words = closing[:m.start()].split()
    return words[-1].lstrip("\"'“‘([") if words else None


def _refuse_unsplittable(plan: StructurePlan, name: str) -> None:
    """Given text the mask cannot keep to the trained Punkt's sentences: a given word whose
    final period might end its sentence, a closing sentence (not the text's last) whose
    final period might not."""
    ends = sentence_ends()
    given = [*plan.text.at.values(), *plan.sentence.at.values(), *plan.paragraph.at.values(),
             *plan.sentence_ends]
    for w in given:
        if not ends.given_word_ok(w):
            raise ImpossibleConstraint(f"'{name}': the given word {w!r} ends in a period that the sentence "
                                       "splitter may read as a sentence end (it is not one of its "
                                       "abbreviations)")
    for c in plan.closings[:-1]:
        tok = _closing_end_token(c)
        if tok is not None and not ends.period_ends(tok):
            raise ImpossibleConstraint(f"'{name}': the given sentence {c!r} ends with a period after "
                                       f"{tok!r}, which the sentence splitter does not always read as a "
                                       "sentence end, so the next paragraph could join it")


def _why_not(c: Counts, name: str) -> str:
    """Why no text meets the counts (the common case named, else the rules)."""
    if c.sw.exact is not None and c.W.exact is not None and c.W.exact % c.sw.exact:
        return (f"'{name}': sentences of exactly {c.sw.exact} words cannot make exactly {c.W.exact} "
                f"words")
    return f"'{name}': no text can meet these counts together"
