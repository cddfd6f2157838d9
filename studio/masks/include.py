"""Must-use words (``include:``): steer toward the missing words, force them when the
budget is about to run out, never end while one is missing.

The state is the word in progress ``p`` and the set of target words still missing.  From
it the masker knows ``need``: the fewest tokens that can still write every missing word
(each word's cost is counted with the tokenizer, under the static masks of the other
rules).  A token's ``need_after`` is the need once it is written.  Then, per step:

- steering: tokens that make progress (``need_after < need``: they start a missing word
  on a shortest path, or continue the word in progress toward one) get a logit bonus that
  grows as the budget shrinks;
- forcing: once ``need + MARGIN`` reaches the tokens left, only progress tokens are
  allowed, so every step brings the text one token closer and the guarantee holds;
- end: EOS only when nothing is missing (the word in progress counts as finished).

Only tokens that could make progress are examined per state (those continuing ``p`` along
a missing word, and those whose tail starts one): the rest share one ``need_after``.
"""

from __future__ import annotations

import torch

from constraints.cache import BoundedCache

from constraints.base import ImpossibleConstraint
from constraints.sequence import Include

from studio.masks.base import Masker
from studio.decode.vocab import VocabIndex
from studio.masks.words import token_words

INF = 10**6


def _tail_index(vocab: VocabIndex):
    """(tail -> ids of tokens that start with a boundary and end with a new word ``tail``;
    the mask of tokens that start with a boundary; the mask of those that write no letter
    at all; text -> ids)."""
    return vocab.derived("include-tails", _build_tail_index)


def _build_tail_index(vocab: VocabIndex):
    tw = token_words(vocab)
    by_tail: dict[str, list[int]] = {}
    starts, blanks = [], []
    for i in range(vocab.size):
        first = tw.has_boundary[i] and not tw.head[i]
        starts.append(first)
        blanks.append(first and not tw.tail[i] and not tw.middles[i])
        if first and tw.tail[i] and not tw.middles[i]:
            by_tail.setdefault(tw.tail[i], []).append(i)
    by_text: dict[str, list[int]] = {}
    for i, (t, sp) in enumerate(zip(vocab.texts, vocab.special)):
        if not sp and t and "\ufffd" not in t:
            by_text.setdefault(t, []).append(i)
    start_mask = torch.tensor(starts, dtype=torch.bool, device=vocab.device)
    blank_mask = torch.tensor(blanks, dtype=torch.bool, device=vocab.device)
    return by_tail, start_mask, blank_mask, by_text


class IncludeMasker(Masker):
    STEER = 8.0  # logit bonus at full urgency
    MARGIN = 4  # tokens of slack per missing word when forcing starts
    FLOOR = 0.5  # the least urgency: steer from the start, not only near the end

    def __init__(self, constraint: Include, vocab: VocabIndex):
        super().__init__(constraint.spec(), vocab)
        self.constraint = constraint
        self.tw = token_words(vocab)
        self.by_tail, self.start_mask, self.blank_mask, self.by_text = _tail_index(vocab)
        self.forms = {w: tuple(sorted(constraint.forms_of(w))) for w in constraint.words}
        self.owner: dict[str, set[str]] = {}
        for w, fs in self.forms.items():
            for f in fs:
                self.owner.setdefault(f, set()).add(w)
        self._set_static(vocab.text_mask())
        self.eos = vocab.ids_mask(vocab.eos_ids)
        self.no_eos = ~self.eos
        self.reset("")

    # ------------------------------------------------------------ token counts

    def _set_static(self, static: torch.Tensor) -> None:
        """Tokens the other rules allow anywhere: the counts below use only those."""
        self._ok = static.tolist()
        self._blank_ok = bool((static & self.blank_mask).any())
        self._cont: dict[str, list[int]] = {}
        self.cost = {w: min(self._form_cost(f) for f in fs) for w, fs in self.forms.items()}
        self._cache: BoundedCache[tuple] = BoundedCache(4096)  # long sessions stay bounded

    def _cont_of(self, form: str) -> list[int]:
        """cont[k]: fewest tokens without a boundary that write form[k:] after form[:k]."""
        hit = self._cont.get(form)
        if hit is None:
            n, ok = len(form), self._ok
            hit = [INF] * n + [0]
            for k in range(n - 1, -1, -1):
                node = self.tw.root
                for j in range(k, n):
                    node = node.children.get(form[j])
                    if node is None:
                        break
                    if hit[j + 1] < INF and any(ok[i] for i in node.pure):
                        hit[k] = min(hit[k], 1 + hit[j + 1])
            self._cont[form] = hit
        return hit

    def _form_cost(self, form: str) -> int:
        """Fewest tokens to write ``form`` as a new word from anywhere: a boundary-first
        token carrying its first letters then continuations, or a token of spaces or
        punctuation then the whole word."""
        cont, ok = self._cont_of(form), self._ok
        best = 1 + cont[0] if self._blank_ok and cont[0] < INF else INF
        for k in range(1, len(form) + 1):
            if cont[k] < INF and any(ok[i] for i in self.by_tail.get(form[:k], ())):
                best = min(best, 1 + cont[k])
        return best

    def need(self, p: str, missing: frozenset) -> int:
        """Fewest tokens that write every missing word, given the word in progress ``p``
        ("": at a boundary, where one word may start without one)."""
        base = sum(self.cost[w] for w in missing)
        gain = 0
        for w in missing:
            for f in self.forms[w]:
                if f.startswith(p):
                    gain = max(gain, self.cost[w] - self._cont_of(f)[len(p)])
        return base - gain

    def _done(self, word: str, missing: frozenset) -> frozenset:
        hit = self.owner.get(word)
        return missing - hit if hit else missing

    # ------------------------------------------------------------ per state

    def _starts(self, missing: frozenset) -> dict[int, int]:
        """Boundary-first tokens whose tail starts a missing form -> their need_after
        (the same whatever word they end: cached per missing set)."""
        key = ("starts", missing)
        hit = self._cache.get(key)
        if hit is None:
            hit = {}
            for w in missing:
                for f in self.forms[w]:
                    for k in range(1, len(f) + 1):
                        ids = self.by_tail.get(f[:k], ())
                        if ids:
                            n = self.need(f[:k], missing)
                            for i in ids:
                                hit[i] = min(n, hit.get(i, INF))
            self._cache[key] = hit
        return hit

    def _state(self, p: str, missing: frozenset) -> tuple:
        """(need now, need after any token of spaces or punctuation, candidate ids, their
        need_after, a cache slot for the steering tensor)."""
        key = (p, missing)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        tw = self.tw
        after_word = self._done(p, missing)  # a boundary ends p: maybe a missing word
        cands = dict(self._starts(after_word))

        def consider(i: int, done: frozenset, new_p: str) -> None:
            n = self.need(new_p, done)
            if n < cands.get(i, INF):
                cands[i] = n

        # Tokens continuing p along a missing form (and those finishing it with a boundary).
        for w in missing:
            for f in self.forms[w]:
                if not f.startswith(p):
                    continue
                node, rest = tw.root, f[len(p):]
                for j, ch in enumerate(rest):
                    node = node.children.get(ch)
                    if node is None:
                        break
                    for i in node.pure:
                        consider(i, missing, p + rest[:j + 1])
                    if j == len(rest) - 1:
                        for i in node.bounded:
                            done = self._done(f, missing)
                            for mid in tw.middles[i]:
                                done = self._done(mid, done)
                            consider(i, done, tw.tail[i])
        ids = list(cands)
        hit = (self.need(p, missing), self.need("", after_word), ids, [cands[i] for i in ids], {})
        self._cache[key] = hit
        return hit

    def _mask(self, p: str, missing: frozenset, limit: int) -> torch.Tensor:
        """Tokens whose need_after <= limit."""
        # Tokens not among the candidates: a blank ends p and waits at a boundary; a token
        # starting a word that is no missing word's prefix leaves every word to write; any
        # other token makes p a word that is no missing word's prefix.
        need_now, need_blank, ids, after, _slot = self._state(p, missing)
        m = torch.zeros(self.vocab.size, dtype=torch.bool, device=self.vocab.device)
        if need_blank <= limit:
            m |= self.blank_mask
        if sum(self.cost[w] for w in self._done(p, missing)) <= limit:
            m |= self.start_mask & ~self.blank_mask
        if sum(self.cost[w] for w in missing) <= limit:
            m |= ~self.start_mask
        good = [i for i, n in zip(ids, after) if n <= limit]
        if good:
            m[torch.tensor(good, device=m.device)] = True
        return m & self.no_eos

    # ------------------------------------------------------------ Masker protocol

    def reset(self, context: str) -> None:
        # Words are judged in the generated text, as check() does on the output.
        self.p = ""
        self.missing = frozenset(self.constraint.words)
        self.taken = 0
        self.forced = 0  # tokens chosen under forcing
        self.forced_words: set[str] = set()  # words written in part by forced tokens
        self._forcing = False

    def _budget(self, steps_left: int) -> int:
        w = self.constraint.within
        return min(steps_left, w - self.taken) if w else steps_left

    def _margin(self) -> int:
        # Slack per missing word: forcing one word leaves room for free text before the
        # next is forced, so forced words do not come out as a list.
        return self.MARGIN * len(self.missing)

    def _need_now(self) -> int:
        return self._state(self.p, self.missing)[0]

    def tokens_needed(self) -> int:
        """The fewest tokens that still write every missing word (rules that plan a budget
        of their own, such as structure counts, keep these free)."""
        return self._need_now() if self.missing else 0

    def tokens_reserved(self) -> int:
        return self._need_now() + self._margin() if self.missing else 0

    def allowed(self, steps_left: int) -> torch.Tensor | None:
        self._forcing = False
        if not self.missing:
            return None
        need = self._need_now()
        budget = self._budget(steps_left)
        if need + self._margin() < budget:
            return None  # EOS is refused through done_ok
        self._forcing = True
        if need == 0:  # the word in progress is the last one: finish it or end
            return self._mask(self.p, self.missing, 0) | self.eos
        return self._mask(self.p, self.missing, need - 1)

    def bias(self, steps_left: int) -> torch.Tensor | None:
        if not self.missing:
            return None
        need_now, _s, ids, after, slot = self._state(self.p, self.missing)
        unit = slot.get("bias", False)
        if unit is False:
            unit = slot["bias"] = self._unit_bias(need_now, ids, after)
        if unit is None:
            return None
        budget = max(self._budget(steps_left), 1)
        urgency = max(self.FLOOR, min(1.0, (need_now + self._margin()) / budget))
        return unit * (self.STEER * urgency)

    def _unit_bias(self, need_now: int, ids: list[int], after: list[int]) -> torch.Tensor | None:
        """1.0 on the tokens that bring the missing words closer, else 0 (None: none do)."""
        good = [i for i, n in zip(ids, after) if n < need_now]
        # p is a missing word as it stands: a boundary keeps it (" dog", not " dogpark").
        keep = bool(self.owner.get(self.p, set()) & self.missing)
        if not good and not keep:
            return None
        b = self.start_mask.to(torch.float32) if keep else torch.zeros(
            self.vocab.size, dtype=torch.float32, device=self.vocab.device)
        if good:
            b[torch.tensor(good, device=b.device)] = 1.0
        return b

    def advance(self, token_id: int) -> None:
        tw = self.tw
        self.taken += 1
        if not self.missing:
            return
        before = self.missing
        if tw.has_boundary[token_id]:
            missing = self._done(self.p + tw.head[token_id], self.missing)
            for mid in tw.middles[token_id]:
                missing = self._done(mid, missing)
            self.missing, self.p = missing, tw.tail[token_id]
        else:
            self.p += tw.head[token_id]
        if self._forcing:
            # The words this forced token wrote a part of (finished or begun).
            self.forced += 1
            begun = {w for w in self.missing if self.p and any(f.startswith(self.p) for f in self.forms[w])}
            self.forced_words |= (before - self.missing) | begun

    def done_ok(self) -> bool:
        return not self._done(self.p, self.missing)

    def snapshot(self):
        return (self.p, self.missing, self.taken, self.forced, frozenset(self.forced_words))

    def restore(self, snap) -> None:
        self.p, self.missing, self.taken, self.forced, fw = snap
        self.forced_words = set(fw)

    # ------------------------------------------------------------ before decoding

    def check_with(self, others) -> None:
        """Refuse a word the other rules (``others``, a MaskSet without must-use words)
        make impossible, naming them; count each word's tokens under their static masks."""
        static = others.static_mask()
        self._set_static(self.vocab.text_mask() if static is None else self.vocab.text_mask() & static)
        for w in self.constraint.words:
            if any(self._writable(f, others) for f in self.forms[w]):
                continue
            blockers = [n for m in others if not any(self._writable(f, others.subset([m])) for f in self.forms[w])
                        for n in _blame(m, self.forms[w])]
            names = " & ".join(f"'{n}'" for n in (blockers or others.names))
            what = f"no form of the word {w!r}" if self.constraint.forms else f"the word {w!r}"
            raise ImpossibleConstraint(f"'{self.name}': {what} cannot be written under {names}")
        bad = [w for w, c in self.cost.items() if c >= INF]
        if bad:
            raise ImpossibleConstraint(f"'{self.name}': the word {bad[0]!r} cannot be spelled with "
                                       "the tokens the other rules allow")
        least = self.need("", frozenset(self.constraint.words))
        if self.constraint.within and least > self.constraint.within:
            raise ImpossibleConstraint(f"'{self.name}': the words take at least {least} tokens, "
                                       f"more than the budget @{self.constraint.within}")

    def _writable(self, form: str, others) -> bool:
        """Whether `` form`` (lower, Capitalised or UPPER) can be written token by token
        under ``others`` from a fresh start, and the text could end right after it."""
        for v in dict.fromkeys((form, form.capitalize(), form.upper())):
            # After a space, or a newline (under no-spaces, say), or as the first word of
            # free text (MaskSet.lead_ins).
            if any(_spell(lead + b + v, others, self.by_text, self.start_mask | self.eos)
                   for lead in others.lead_ins() for b in (" ", "\n", "")):
                return True
        return False


def _blame(m: Masker, forms) -> list[str]:
    """The rules of masker ``m`` that no form of the word obeys in any case; all of them
    when none does alone (character rules share one masker, so name the one that bans)."""
    parts = getattr(m, "constraints", None)
    if parts:
        variants = [v for f in forms for v in (f, f.capitalize(), f.upper())]
        bad = [c.spec() for c in parts if not any(c.word_ok(v) for v in variants)]
        if bad:
            return bad
    return [m.name]


def _spell(s: str, masks, by_text: dict[str, list[int]], ends: torch.Tensor) -> bool:
    """Walk the positions of ``s``: a position is reached when some token writing the next
    piece is allowed by every masker of ``masks`` in the state reached before it."""
    saved = masks.snapshot()
    try:
        masks.reset("")
        states: dict[int, tuple] = {0: masks.snapshot()}
        for i in range(len(s)):
            if i not in states:
                continue
            for j in range(i + 1, len(s) + 1):
                if j in states:
                    continue
                for tid in by_text.get(s[i:j], ()):
                    masks.restore(states[i])
                    if masks.allows(tid):
                        masks.advance(tid)
                        states[j] = masks.snapshot()
                        break
        if len(s) not in states:
            return False
        # The word must be able to end here: a boundary or the end of the text may follow.
        masks.restore(states[len(s)])
        return bool((ends & masks.allowed(10**6)).any())
    finally:
        masks.restore(saved)


def forcing(generation) -> dict:
    """How much must-use forcing a finished generation needed: the tokens chosen under
    forcing, and the words they wrote a part of (the fewer, the more natural the text)."""
    ms = generation.masks.of_type(IncludeMasker)
    return {"forced_tokens": sum(m.forced for m in ms),
            "forced_words": sorted({w for m in ms for w in m.forced_words}),
            "words": sorted({w for m in ms for w in m.constraint.words})}


def build_include(cs: list[Include], vocab: VocabIndex, lexicon=None) -> list[Masker]:
    return [IncludeMasker(c, vocab) for c in cs]
