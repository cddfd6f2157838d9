"""The counts of a structure plan: the state a structure mask keeps (words, sentences,
paragraphs so far) and the shortest completion from any state, in tokens and characters;
every mask decision asks whether the rules can still be met from the state after it."""

from __future__ import annotations

from dataclasses import dataclass

from constraints.base import ImpossibleConstraint
from constraints.cache import BoundedCache
from constraints.structure import Count
from constraints.structure_plan import StructurePlan
from constraints.units import counted_words, unit, unit_key

from studio.masks.structure_tokens import INF, StructureTokens

@dataclass(frozen=True)
class State:
    """The counts the rules look at (a word counts from its first letter)."""

    wt: int = 0  # words in the text
    st: int = 0  # sentences ended
    g: int = 0  # paragraph breaks written (index of the current paragraph)
    pst: int = 0  # sentences ended in the current paragraph
    pwc: int = 0  # words in the current paragraph
    ws: int = 0  # words in the open sentence (0: none open)
    must_word: bool = False  # the grammar needs another word in this sentence (after , or space)
    last_ok: bool = True  # the open sentence may end here as far as its last word goes
    text_last_ok: bool = True  # the text may end here as far as its last word goes
    para_last_ok: bool = True  # the paragraph may end here as far as its last word goes
    closing_done: bool = False  # this paragraph's given closing sentence is written


@dataclass(frozen=True)
class Rest:
    tokens: int  # fewest tokens to a text the rules accept
    chars: int  # fewest characters
    rigid: bool  # that shortest completion has no free word (its length is fixed)
    can_grow: bool  # a free word could still be added somewhere
    ends: int = 0  # free sentence ends in it (each after a word of two letters or more)


class Counts:
    """The plan's numbers and the shortest completion from any State."""

    def __init__(self, plan: StructurePlan, toks: StructureTokens):
        self.plan = plan
        t, s, p = plan.text, plan.sentence, plan.paragraph
        self.W, self.S, self.G = t.words, t.sentences, t.paragraphs
        self.sw = Count(max(s.words.lo, 1), s.words.hi)
        self.ps = Count(max(p.sentences.lo, 1), p.sentences.hi)
        self.pw = p.words
        # A given last word of the text (or of every paragraph) goes at the end of a sentence
        # known in advance: with no upper bound, the text (paragraph) has the fewest sentences.
        if -1 in t.at and self.S.hi is None:
            self.S = Count(self.S.lo, self.S.lo)
        if -1 in p.at and self.ps.hi is None and not plan.paragraph_ends:
            self.ps = Count(self.ps.lo, self.ps.lo)
        # A paragraph word cap also caps its sentences.
        if self.pw.hi is not None:
            most = self.pw.hi // self.sw.lo
            self.ps = Count(self.ps.lo, most if self.ps.hi is None else min(self.ps.hi, most))
        self.toks = toks
        self.closings = plan.closings
        self.closing_words = [len(counted_words(unit(c))) for c in self.closings]
        self.closing_last = [unit_key((counted_words(unit(c)) or [""])[-1]) for c in self.closings]
        self.sizes: list[int] = []  # sentences per paragraph, with given closings
        self._memo: BoundedCache = BoundedCache(8192)

    # ------------------------------------------------------------ given words

    def word_cost(self, w: str) -> int:
        """Tokens to write a given word after a space (its costliest case form)."""
        forms = {w, w[:1].upper() + w[1:]}
        return max(self.toks.spell_cost(" " + f) for f in forms)

    def extra(self, w: str | None) -> int:
        return 0 if w is None else self.word_cost(w) - 1

    def closing_cost(self, j: int, same_paragraph: bool) -> int:
        c = self.closings[j]
        return self.toks.spell_cost((" " if same_paragraph else "") + c)

    def plan_sizes(self, budget: int | None) -> None:
        """Sentences per paragraph when closings are given: one free sentence before each
        closing where the rules allow it (fewer when the budget is short)."""
        if not self.closings:
            return
        k = len(self.closings)
        lo, hi = self.ps.lo, self.ps.hi
        want = max(lo, 2 if hi is None or hi >= 2 else 1)
        for prefer in (want, lo):
            sizes = [prefer] * k
            i = 0
            while sum(sizes) < self.S.lo and any(hi is None or n < hi for n in sizes):
                if hi is None or sizes[i % k] < hi:
                    sizes[i % k] += 1
                i += 1
            while self.S.hi is not None and sum(sizes) > self.S.hi and any(n > lo for n in sizes):
                j = max(range(k), key=lambda x: sizes[x])
                sizes[j] -= 1
            if sum(sizes) not in self.S:
                raise ImpossibleConstraint(f"{self.plan.text.named('sentences')}: {k} paragraphs of "
                                           f"{self.ps.describe('sentences')} cannot make {self.S.describe('sentences')}")
            self.sizes = sizes
            self._memo = BoundedCache(8192)
            if budget is None or (r := self.rest(State())) is None or r.tokens <= budget:
                return

    # ------------------------------------------------------------ the shortest completion

    def rest(self, s: State) -> Rest | None:
        hit = self._memo.get(s, False)
        if hit is False:
            hit = self._memo[s] = self._rest(s)
        return hit

    def _rest(self, s: State) -> Rest | None:
        plan, sw = self.plan, self.sw
        b = sw.hi if sw.hi is not None else INF
        open_ = s.ws > 0
        if (self.W.hi is not None and s.wt > self.W.hi) or (self.pw.hi is not None and s.pwc > self.pw.hi):
            return None
        # The open sentence.
        if open_:
            need_cur = max(sw.lo - s.ws, 1 if s.must_word else 0, 0 if s.last_ok else 1)
            cap_cur = b - s.ws
            if need_cur > cap_cur:
                return None
        else:
            need_cur = cap_cur = 0
        cur_count = s.pst + (1 if open_ else 0)
        closings = bool(self.closings)
        # The current paragraph's further sentences m, and r paragraphs after it.
        if closings:
            if s.g >= len(self.closings):
                return None
            size = self.sizes[s.g]
            if s.closing_done:
                if open_:
                    return None
                m_lo = m_hi = 0
            else:
                m_lo = m_hi = size - cur_count
                if m_lo < 1:
                    return None
            r_lo = r_hi = len(self.closings) - s.g - 1
        else:
            m_lo = max(0, self.ps.lo - cur_count, 1 if cur_count == 0 else 0,
                       1 if not open_ and not s.para_last_ok else 0)
            m_hi = self.ps.hi - cur_count if self.ps.hi is not None else INF
            if m_lo > m_hi:
                return None
            r_lo = max(0, self.G.lo - s.g - 1)
            r_hi = self.G.hi - s.g - 1 if self.G.hi is not None else INF
        if r_hi < r_lo:
            return None
        done = s.st + (1 if open_ else 0)
        n_lo_text = self.S.lo - done
        n_hi_text = self.S.hi - done if self.S.hi is not None else INF
        if n_hi_text < 0:
            return None
        more = 1 if (not open_ and not s.text_last_ok) else 0
        w_lo_text = self.W.lo - s.wt
        w_hi_text = self.W.hi - s.wt if self.W.hi is not None else INF
        for r in range(r_lo, min(r_hi, r_lo + 64) + 1):
            if closings:
                fut = self.sizes[s.g + 1:]
                n_min = n_max = m_lo + sum(fut)
            else:
                n_min = m_lo + r * self.ps.lo
                n_max = INF if (m_hi >= INF or self.ps.hi is None) else m_hi + r * self.ps.hi
            n_min = max(n_min, n_lo_text, more)
            n_max = min(n_max, n_hi_text)
            if n_min > n_max:
                continue
            new_closings = ((0 if s.closing_done else 1) + r) if closings else 0
            f_words = 0
            if closings:
                first = s.g if not s.closing_done else s.g + 1
                f_words = sum(self.closing_words[first: s.g + 1 + r])
            n = n_min
            while True:
                free = n - new_closings
                if free < 0:
                    return None
                w_min = need_cur + free * sw.lo + f_words
                cap_free = 0 if free == 0 else (INF if b >= INF else free * b)
                w_cap = min(INF, cap_cur + cap_free + f_words)
                para_lo = max(0, self.pw.lo - s.pwc) + r * self.pw.lo
                w_need = max(w_min, w_lo_text, para_lo)
                if self.pw.hi is not None and s.pwc + need_cur + (0 if closings else max(0, m_lo)) * sw.lo > self.pw.hi:
                    return None
                if w_need > w_hi_text:
                    return None
                if w_need <= w_cap:
                    break
                if n >= n_max:
                    w_need = None
                    break
                n += 1
            if w_need is None:
                continue
            return self._cost(s, need_cur, cap_cur, n, n_max, free, r, new_closings, f_words, w_need, w_hi_text)
        return None

    def _cost(self, s: State, need_cur, cap_cur, n, n_max, free, r, new_closings, f_words, w_need, w_hi) -> Rest:
        plan = self.plan
        t_at, s_at, p_at = plan.text.at, plan.sentence.at, plan.paragraph.at
        open_ = s.ws > 0
        free_words = w_need - f_words
        tokens = free_words + (1 if open_ else 0) + free + r
        chars = 2 * free_words + (1 if open_ else 0) + 2 * free + 2 * r
        n_fixed = 0
        # Given words cost their spelling; count those still ahead.
        extra = 0
        for k, w in t_at.items():
            if k > s.wt:
                extra += self.extra(w)
                chars += len(w) - 1
                n_fixed += 1
        per_sentence = [w for k, w in s_at.items() if k > 0] + ([s_at[-1]] if -1 in s_at else [])
        if open_:
            for k, w in s_at.items():
                if k > s.ws:
                    extra += self.extra(w)
                    chars += len(w) - 1
                    n_fixed += 1
            if not s.last_ok and -1 in s_at:
                extra += self.extra(s_at[-1])
        extra += free * sum(self.extra(w) for w in per_sentence)
        n_fixed += free * len(per_sentence)
        ends = plan.sentence_ends
        first_new = s.st + (1 if open_ else 0)
        for i in range(first_new, min(len(ends), first_new + free)):
            extra += self.extra(ends[i])
        if open_ and not s.last_ok and s.st < len(ends):
            extra += self.extra(ends[s.st])
        if 1 in p_at:
            new_paras = r + (1 if s.pst == 0 and not open_ else 0)
            extra += new_paras * self.extra(p_at[1])
        for i, w in plan.paragraph_starts.items():  # given first words of paragraphs still ahead
            if i - 1 > s.g or (i - 1 == s.g and s.pst == 0 and not open_):
                # Written at a paragraph's start, capitalised and with no space before it.
                extra += max(self.extra(w), self.toks.spell_cost(w[:1].upper() + w[1:]) - 1)
                chars += len(w) - 1
        if new_closings:
            first = s.g if not s.closing_done else s.g + 1
            for j in range(first, first + new_closings):
                same = j == s.g and (s.pst > 0 or open_)
                tokens += self.closing_cost(j, same)
                chars += len(self.closings[j]) + (1 if same else 0)
        # A free sentence in a new paragraph has no leading space; the first words of the
        # text and of a new paragraph neither.
        chars -= r + (1 if s.wt == 0 and free_words else 0)
        chars = max(chars, 0)
        grow = w_need < w_hi and ((open_ and cap_cur > need_cur) or (free > 0 and (self.sw.hi is None or self.sw.hi > self.sw.lo))
                                  or n < n_max)
        return Rest(tokens + extra, chars, free_words - n_fixed <= 0 and not free, grow, (1 if open_ else 0) + free)
