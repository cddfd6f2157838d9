"""Layout rules as token masks: literal segments forced in their place, free slots between
them that the model writes under every other rule, closed in time.

The layout (constraints.layout_plan) is ``[literal, slot, literal, ..., slot, literal]``.
The masker walks it:

- in a literal, only tokens that spell the rest of it are allowed (``prefix_mask``), and
  only spellings that leave room for everything after it;
- in a slot, the model writes freely (no line break in a line slot, no string that would
  add a bullet, a section or a paragraph where the layout has none), until it closes the
  slot with a token that ends in the start of the next literal (".\\n" before "\\n* "; in a
  list of bullets or numbered lines, a blank line may come first, as models like to write).  A
  line slot may close at any point once it holds text; a free block only past half its
  share of the budget and after a sentence end, so a marker written early is just text.
  Each slot has a share of the tokens left; past it, or when the rest of the layout needs
  every token left, only closing tokens remain.  So every literal is written before the
  budget runs out, and ``done_ok`` holds only where the layout is complete.

Every transition keeps the rest reachable: the fewest tokens to finish (each literal's
shortest spelling, a short word per slot still to come) are counted ahead.
"""

from __future__ import annotations

import torch

from constraints.base import And, ImpossibleConstraint
from constraints.layout_plan import LayoutPlan, Slot, plan_layout
from constraints.letters import BannedStrings

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker
from studio.masks.chars import CharMasker
from studio.masks.structure_tokens import INF, LET, structure_tokens
from studio.masks.words import WordMasker

STEER = 3.0  # logit bonus on closing tokens once a slot has had its share
NATURAL_ENDS = ".!?:;)\"'”’]"  # where a free block may close before it must
TOKENS_PER_ITEM = 40  # how many tokens a list item gets when the count leaves a choice
MOST_ITEMS = 12  # ... and the most items chosen so
WORD_ROOM = 3  # tokens kept to finish a word before a closing must come
SLOT_TOKENS = 2  # tokens kept for each slot still to come (a word, maybe in two tokens)


class LayoutMasker(Masker):
    """All layout rules of one constraint as one masker (they share one layout)."""

    plans_with_peers = True

    def __init__(self, plan: LayoutPlan, vocab: VocabIndex, name: str):
        super().__init__(name, vocab)
        self.plan = plan
        self.toks = structure_tokens(vocab)
        self.eos = vocab.ids_mask(vocab.eos_ids)
        self.free = vocab.text_mask() & ~self.eos
        self.line_free = self.free & vocab.mask("layout-one-line", lambda _i, t: "\n" not in t, allow_eos=False)
        self.peers: list[Masker] = []
        self.word_rules = False
        self._bans: dict[tuple, CharMasker] = {}
        self.reset("")

    def bind(self, peers) -> None:
        self.peers = [m for m in peers if m is not self]
        self.word_rules = any(isinstance(m, WordMasker) for m in self.peers)

    # ------------------------------------------------------------ the layout for n items

    def _costs(self, n: int) -> tuple[list, list[int], list[int]]:
        """The layout for ``n`` items: its segments, each literal's spelling cost, and
        after[i], the tokens kept once literal i is written (a short word per slot, the literals)."""
        segs = self.plan.segments(n)
        lits = segs[0::2]
        cost = [self.toks.spell_cost(s) if s else 0 for s in lits]
        k = len(lits) - 1
        after = [0] * (k + 1)
        for i in range(k - 1, -1, -1):
            after[i] = SLOT_TOKENS + cost[i + 1] + after[i + 1]
        return segs, cost, after

    def _lay_out(self, n: int) -> None:
        self.segs, self.cost, self.after = self._costs(n)
        self.n = n

    def _least(self, n: int) -> int:
        """The fewest tokens the layout for ``n`` items needs."""
        _segs, cost, after = self._costs(n)
        return cost[0] + after[0]

    def items_for(self, steps: int) -> int:
        """How many list items to write in ``steps`` tokens: the count's least (at least
        one), more when the count allows and the budget gives each its share."""
        c = self.plan.items
        lo = max(c.lo, 1)
        hi = min(c.hi if c.hi is not None else MOST_ITEMS, max(MOST_ITEMS, lo))
        n = max(lo, min(hi, steps // TOKENS_PER_ITEM))
        while n > lo and self._least(n) > steps:
            n -= 1
        return n

    def least_tokens(self) -> int:
        """The fewest tokens the layout needs (its least items, a short word per slot)."""
        return self._least(max(self.plan.items.lo, 1))

    def tokens_needed(self) -> int:
        """The fewest tokens that finish the layout from here: the rest of the literal in
        hand, or the slot's text, and what comes after it (``after``)."""
        if self.segs is None:
            return self.least_tokens()
        j = self.st[0]
        if j % 2 == 0:
            rest = self._rest()
            return (self.toks.spell_cost(rest) if rest else 0) + self.after[j // 2]
        i = j // 2
        return (0 if self.st[3] else 1) + self.cost[i + 1] + self.after[i + 1]

    def lead_ins(self) -> tuple[str, ...]:
        first = self.plan.segments(max(self.plan.items.lo, 1))[0]
        return (first,) if first else ()

    def check_budget(self, max_new_tokens: int) -> None:
        least = self.least_tokens()
        if least > max_new_tokens:
            raise ImpossibleConstraint(f"'{self.name}': the layout needs at least {least} tokens, more than the "
                                       f"budget of {max_new_tokens}")

    # ------------------------------------------------------------ state

    def reset(self, context: str) -> None:
        self.segs, self.n = None, None
        self.lead_drop = context.endswith(" ")
        self.tail = context[-16:]  # the text just before (line starts)
        # (segment index, literal still to write, slot tokens, slot holds text, slot share,
        #  the slot's own text tail, tokens written)
        self.st = (0, None, 0, False, None, "", 0)
        self._closings: tuple = (None, {})

    def snapshot(self):
        return (self.st, self.tail, self.n if self.segs is not None else None)

    def restore(self, snap) -> None:
        self.st, self.tail, n = snap
        if n is None:
            self.segs = None
        elif self.segs is None or n != self.n:
            self._lay_out(n)

    def _start(self, steps: int) -> None:
        """The first step: lay the items out for the budget; an empty first literal is done."""
        self._lay_out(self.items_for(steps))
        if self.st[0] == 0 and self._rest() == "":
            self._literal(0, "", 0)

    def _rest(self) -> str:
        j, rest = self.st[0], self.st[1]
        return self.segs[j] if rest is None else rest

    def done_ok(self) -> bool:
        if self.segs is None:
            return False
        j = self.st[0]
        if j == len(self.segs) - 1:
            return self._rest() == ""
        return j == len(self.segs) - 2 and self.segs[-1] == "" and self.st[3]

    # ------------------------------------------------------------ masks

    def allowed(self, steps_left: int) -> torch.Tensor:
        peers = self.peer_need()
        room = steps_left - peers  # tokens this one included
        if self.segs is None:
            self._start(room)
        j = self.st[0]
        if j % 2 == 0:
            rest = self._rest()
            if not rest:
                return self.eos
            return self.toks.prefix_mask(rest, room - self.after[j // 2])
        return self._slot_mask(room, peers)

    def _share(self, room: int) -> int:
        j, i = self.st[0], self.st[0] // 2
        if self.st[4] is not None:
            return self.st[4]
        slot = self.segs[j]
        spare = room - (SLOT_TOKENS + self.cost[i + 1] + self.after[i + 1])
        slots_left = (len(self.segs) - j) // 2
        share = max(1, spare // max(1, slots_left))
        if slot.max_tokens is not None:
            share = min(share, slot.max_tokens)
        self.st = self.st[:4] + (share,) + self.st[5:]
        return share

    def _slot_mask(self, room: int, peers: int) -> torch.Tensor:
        j, _rest, n, has_text, _share, slot_tail, _w = self.st
        i = j // 2
        slot: Slot = self.segs[j]
        share = self._share(room)
        last = j == len(self.segs) - 2 and self.segs[-1] == ""
        nxt = self.cost[i + 1] + self.after[i + 1]
        # No slot comes after this one: what the other rules still have to write (a count's
        # missing words) goes here, so the slot stays open past its share until they are in.
        waiting = j == len(self.segs) - 2 and peers > 0
        over = n >= share and not waiting
        free = room - 1 - nxt  # tokens to spare after one more of text (once text is there)
        if free >= WORD_ROOM and not over:
            content = self._content(slot, slot_tail)
        elif not has_text and free >= 0:
            content = self._content(slot, slot_tail) & self._texty()  # the slot's text, at least
        elif waiting and free >= 0:
            content = self._content(slot, slot_tail)  # the room kept for the other rules' words
        elif free >= 0 and self.word_rules and slot_tail[-1:].isalnum() and n < share + WORD_ROOM:
            # Out of share or nearly out of room under word rules: only the word in progress
            # may go on, a few tokens, so that the closing follows a word they allow.
            content = self._content(slot, slot_tail) & self.toks.masks[LET]
        else:
            content = None
        if last:
            m = content if content is not None else self.toks.none
            return m | self.eos if has_text else m
        forced = over or free < WORD_ROOM
        opened = (slot.line or forced or n >= max(1, share // 2)) and not (waiting and not forced)
        ids = self._closing_ids(room, has_text, opened, forced, slot, slot_tail) if opened else {}
        self._closings = (self.st, ids)
        m = self.toks.none.clone() if content is None else content.clone()
        if ids:
            m[torch.tensor(list(ids), device=m.device)] = True
        return m

    def _texty(self) -> torch.Tensor:
        return self.vocab.mask("layout-texty", lambda _i, t: bool(t.strip()), allow_eos=False)

    def _content(self, slot: Slot, slot_tail: str) -> torch.Tensor:
        m = self.line_free if slot.line else self.free
        if slot.banned:
            ban = self._bans.get(slot.banned)
            if ban is None:
                ban = self._bans[slot.banned] = CharMasker([BannedStrings(list(slot.banned), ignore_case=False)],
                                                           self.vocab)
            ban.reset(slot_tail)
            m = m & ban.allowed(INF)
        if self.tail.endswith(" ") and not slot_tail:
            # After "* " or "P.S. ": the slot's first word without a second space.
            m = m & ~self.vocab.mask("starts-with-space", lambda _i, t: t.startswith(" "), allow_eos=False)
        if slot.guard:
            m = m & ~self._guarded(slot.guard, "inside")
            if _line_start(self.tail):
                m = m & ~self._guarded(slot.guard, "start")
        return m

    def _guarded(self, guard: str, where: str) -> torch.Tensor:
        """Tokens that would start a line with a guard character: right away (``start``,
        when a line begins here), or after a line break of their own (``inside``)."""
        def starts(t: str) -> bool:
            s = t.lstrip(" \t")
            return bool(s) and s[0] in guard

        def inside(t: str) -> bool:
            return any(starts(piece) for piece in t.split("\n")[1:])

        return self.vocab.mask(("layout-guard", guard, where), lambda _i, t: starts(t) if where == "start"
                               else inside(t), allow_eos=False)

    def _candidates(self, literal: str, line: bool, loose: bool) -> list:
        """Tokens ``x + p``: ``p`` a non-empty prefix of ``literal`` (the longest; with
        ``loose``, of the literal after one more line break), ``x`` free text (one line in
        a line slot): (id, x, p, the literal so begun)."""
        variants = [literal] + (["\n" + literal] if loose and literal.startswith("\n") else [])

        def build(vocab):
            out = []
            if not literal:
                return out
            first = literal[0]  # every variant's first character
            for tid, (t, special) in enumerate(zip(vocab.texts, vocab.special)):
                if special or "\ufffd" in t:
                    continue
                # p begins with the literal's first character: only cuts there can match (the
                # first that does is the longest p); most tokens have none, skipped in C.
                cut = t.find(first)
                while cut != -1:
                    v = next((v for v in variants if v.startswith(t[cut:])), None)
                    if v is not None:
                        x = t[:cut]
                        if not (line and "\n" in x):
                            out.append((tid, x, t[cut:], v))
                        break
                    cut = t.find(first, cut + 1)
            return out

        return self.vocab.derived(("layout-close", literal, line, loose), build)

    def _closing_ids(self, room, has_text, opened, forced, slot: Slot, slot_tail: str) -> dict:
        i = self.st[0] // 2
        literal = self.segs[self.st[0] + 1]
        out = {}
        for tid, x, p, begun in self._candidates(literal, slot.line, slot.loose):
            if not (has_text or x.strip()):
                continue
            if any(b in slot_tail + x for b in slot.banned):
                continue
            if not (slot.line or forced):
                end = (slot_tail + x).rstrip()
                if not end or end[-1] not in NATURAL_ENDS:
                    continue
            if 1 + self.toks.spell_cost(begun[len(p):]) + self.after[i + 1] > room:
                continue
            out[tid] = begun[len(p):]
        return out

    def bias(self, steps_left: int) -> torch.Tensor | None:
        """Once a slot has had most of its share, favour closing it (the model then ends
        its item or paragraph where it likes, before it must)."""
        if self.segs is None or self.st[0] % 2 == 0 or self.st[4] is None:
            return None
        state, ids = self._closings
        n, share = self.st[2], self.st[4]
        if state != self.st or not ids or n < 0.6 * share:
            return None
        b = torch.zeros(self.vocab.size, dtype=torch.float32, device=self.vocab.device)
        b[torch.tensor(list(ids), device=b.device)] = STEER * min(2.0, n / max(share, 1))
        return b

    # ------------------------------------------------------------ advance

    def advance(self, token_id: int) -> None:
        text = self.vocab.texts[token_id]
        j, rest, n, has_text, share, slot_tail, w = self.st
        if w == 0 and self.lead_drop and text.startswith(" "):
            text = text[1:]  # the engine drops this space
        self.tail = (self.tail + text)[-16:]
        if self.segs is None:
            self._start(INF)
            j = self.st[0]
        if j % 2 == 0:
            self._literal(j, self._rest()[len(text):], w + 1)
            return
        state, ids = self._closings
        rest = ids.get(token_id) if state == self.st else None
        if rest is None:
            self.st = (j, None, n + 1, has_text or bool(text.strip()), share, (slot_tail + text)[-32:], w + 1)
            return
        self._literal(j + 1, rest, w + 1)

    def _literal(self, j: int, rest: str, w: int) -> None:
        """At literal ``j`` with ``rest`` still to write: past it into the next slot when done."""
        if rest == "" and j + 1 < len(self.segs):
            self.st = (j + 1, None, 0, False, None, "", w)
        else:
            self.st = (j, rest, 0, False, None, "", w)


def _line_start(tail: str) -> bool:
    return tail.rstrip(" \t").endswith("\n") or not tail.strip(" \t")


def build_layout(cs, vocab: VocabIndex, lexicon=None) -> list[Masker]:
    """One masker for all layout rules of the constraint (they make one layout)."""
    constraint = cs[0] if len(cs) == 1 else And(*cs)
    plan = plan_layout(constraint)
    for lit in plan.literals():
        if structure_tokens(vocab).spell_cost(lit) >= INF:
            raise ImpossibleConstraint(f"'{constraint.spec()}': the literal {lit!r} cannot be spelled with this "
                                       "model's tokens")
    return [LayoutMasker(plan, vocab, constraint.spec())]
