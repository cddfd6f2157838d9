"""Grammars (``json``, ``json-schema:``, ``regex:``) as a masker family, by llguidance.

The grammar engine is **llguidance** (PyPI ``llguidance``, Microsoft's engine behind
Guidance, also inside vLLM, SGLang and llama.cpp).  Measured here on this project's
49,152-token SmolLM2 vocabulary, offline, with the tokenizer built from the embedded GGUF's
vocabulary (``llguidance.hf.from_tokenizer``, 0.4 s once): a token mask costs about 0.1 ms
a step (2 ms the first), and this masker's whole step (mask and closing) about 0.5 ms of
CPU; it rolls back any number of consumed tokens (``rollback``), copies a matcher
(``deep_copy``), validates a grammar before decoding with the reason, and compiles JSON
schemas (recursive ones included: ``json:any`` nests without limit) and regexes itself.
The others, tried the same way: xgrammar 0.2.9's wheel needs a further native package
(``tvm_ffi``) before it imports, and its matcher's rollback window is fixed when the
matcher is made; outlines-core 0.2.14 builds its index in 0.2 s for a small schema but
turns a schema into one regular expression (no recursion) and keeps no history to roll
back.  llguidance needed the least glue for Perec's back-off, search and next-word trees.

Per step the grammar's token mask is ANDed with the other maskers' (MaskSet), ``advance``
feeds the chosen token to the matcher, ``snapshot`` / ``restore`` move the matcher to any
earlier or other state (back-off, line search, next-word trees), ``done_ok`` is the
grammar's accepting state.

The budget.  The answer must be complete before the tokens run out, so a truncated JSON
is never returned.  From the matcher's state this masker builds a *closing*: a byte string
the matcher itself accepts that ends in an accepting state, written in single-byte tokens
(so its length in bytes bounds the tokens it needs) and only from bytes the other rules'
fixed masks allow.  It is found by walking the matcher: closers first (``"`` ``}`` ``]``),
and at a state seen before a byte not yet tried there, so loops are left.  While
the budget has room beyond it the model writes freely inside the grammar; once the steps
left come within ``MARGIN`` of it, only tokens that spell a prefix of the closing are
allowed, and following it ends the grammar in time: a real completion, not a hope.  A
token that makes the closing longer than the steps left leaves nothing allowed, so the
decoder backs off and bans it.  A budget too small for the first closing is refused
before decoding.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from constraints.base import ImpossibleConstraint
from constraints.grammar import GrammarRule

from studio.decode.vocab import VocabIndex
from studio.masks.base import Masker

# Steps before the closing must start at which the masker stops the model's free writing
# (a token can lengthen the closing by a few bytes: a key's quote, a nested bracket).
MARGIN = 8
REPEATS = 2  # times a closing takes the same token where the same masks come round again
WINDOW = 6  # steps of masks that tell one state of a closing from another
MAX_CLOSING = 512  # tokens: a grammar whose closing is longer is refused before decoding

# The bytes a closing tries first: ends of strings, objects and arrays, then the shortest
# values and separators (a number, a space, a letter); every other byte after these.
_FIRST = b'"}]0 a,:'
_RANK = _FIRST + bytes(b for b in range(256) if b not in _FIRST)

# JSON on one line, spaced the way people write it: free whitespace is where a small model
# rambles (a walk through the default grammar fills a budget with tabs and line breaks).
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

_LOCK = threading.Lock()  # llguidance's tokenizer is built once per vocabulary


def _ll_tokenizer(vocab: VocabIndex):
    import llguidance.hf

    with _LOCK:
        return vocab.derived("llguidance-tokenizer",
                             lambda v: llguidance.hf.from_tokenizer(v.tokenizer, n_vocab=v.size))


def _byte_tokens(vocab: VocabIndex) -> dict[int, int]:
    """byte -> the id of a token writing exactly that byte (a closing's first choices)."""
    def build(v: VocabIndex) -> dict[int, int]:
        out: dict[int, int] = {}
        for i, (raw, special) in enumerate(zip(v.raw, v.special)):
            if len(raw) == 1 and not special:
                out.setdefault(raw[0], i)
        return out
    return vocab.derived("single-byte-tokens", build)


def grammar_of(rule: GrammarRule) -> str:
    """The llguidance grammar of a rule."""
    import llguidance

    if rule.pattern is not None:
        return llguidance.LLMatcher.grammar_from_regex(rule.pattern)
    return llguidance.LLMatcher.grammar_from_json_schema(rule.schema, overrides=JSON_LAYOUT)


class _Path:
    """The tokens fed to the matcher, as an immutable chain (a snapshot is one link)."""

    __slots__ = ("parent", "token", "depth")

    def __init__(self, parent: "_Path | None", token: int):
        self.parent, self.token = parent, token
        self.depth = 0 if parent is None else parent.depth + 1


class GrammarMasker(Masker):
    """One grammar rule's llguidance matcher for one sequence."""

    plans_with_peers = True  # the closing waits for what the other rules still need

    def __init__(self, rule: GrammarRule, vocab: VocabIndex):
        super().__init__(rule.spec(), vocab)
        import llguidance

        self.rule = rule
        tok = _ll_tokenizer(vocab)
        grammar = grammar_of(rule)
        failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tok)
        if failed:
            why = messages[0].splitlines()[0] if messages else "invalid grammar"
            raise ImpossibleConstraint(f"'{rule.spec()}': the grammar engine cannot use it ({why})")
        self._fresh = llguidance.LLMatcher(tok, grammar, log_level=0)
        ranked = _byte_tokens(vocab)
        self.ranked_ids = np.array([ranked[b] for b in _RANK if b in ranked])  # single bytes, closers first
        self.lengths = vocab.derived("token-byte-lengths", lambda v: np.array([len(r) for r in v.raw]))
        self.eos = vocab.ids_mask(vocab.eos_ids)
        self.no_eos = torch.zeros_like(self.eos)
        self.space_first = vocab.mask("starts-with-space", lambda _i, t: t.startswith(" "), allow_eos=False)
        self.peers_ok = np.ones(vocab.size, dtype=bool)  # narrowed by the peers' fixed masks (bind)
        self.peers: list[Masker] = []
        self.closers = vocab.mask("grammar-closers", lambda _i, t: any(c in t for c in '"}]'), allow_eos=False)
        self.reset("")

    # ------------------------------------------------------------------ composition

    def bind(self, peers) -> None:
        """Close only with bytes every other rule allows whatever the state (a lipogram's
        banned letters, a banned comma): a closing through them would be no closing."""
        static = None
        for m in peers:
            if m is not self and (s := m.static_mask()) is not None:
                static = s if static is None else static & s
        if static is not None:
            self.peers_ok = static.cpu().numpy()
        self.peers = [m for m in peers if m is not self]

    def tokens_needed(self) -> int:
        """The closing and the margin before it: a count keeps clear of both, so its
        words are in before the closing starts."""
        closing = self.closing()
        return len(closing) + MARGIN if closing is not None else 0

    def __copy__(self):
        # Another sequence (MaskSet.fork): the same compiled grammar, its own matcher.
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.matcher = self.matcher.deep_copy()
        return twin

    # ------------------------------------------------------------------ state

    def reset(self, context: str) -> None:
        self.matcher = self._fresh.deep_copy()
        self.path = _Path(None, -1)
        # In continue mode the decoder drops the space before the first word of the
        # answer: a first token starting with a space would write text the grammar never saw.
        self.drops_space = bool(context)
        self._closing: tuple[int, ...] | None = None
        self._closing_known = False
        self._room = 1 << 30  # the steps left, as last asked (for ``safe``)

    def snapshot(self):
        return self.path

    def restore(self, snap: _Path) -> None:
        if snap is self.path:
            return
        # Back to the common ancestor of the two states, then forward along the snapshot's.
        a, b = self.path, snap
        while a.depth > b.depth:
            a = a.parent
        while b.depth > a.depth:
            b = b.parent
        while a is not b and a.parent is not None:
            a, b = a.parent, b.parent
        if a is not b:
            # Two generations' states (a snapshot from before a reset): no common ancestor,
            # so the snapshot's state is rebuilt from a fresh matcher, all its tokens fed.
            self.matcher = self._fresh.deep_copy()
            a = b
        elif self.path.depth > a.depth:
            self.matcher.rollback(self.path.depth - a.depth)
        self.matcher.consume_tokens(_tokens_between(a, snap))
        self.path = snap
        self._closing_known = False

    def advance(self, token_id: int) -> None:
        if token_id in self.vocab.eos_ids:
            return
        if self._closing_known and self._closing and self._closing[0] == token_id:
            self._closing = self._closing[1:]  # the rest of a closing still closes
        else:
            self._closing_known = False
        self.matcher.consume_token(token_id)
        self.path = _Path(self.path, token_id)

    # ------------------------------------------------------------------ masks

    def _ok(self, bias: bytes) -> np.ndarray:
        """The tokens a matcher's logit bias allows, as booleans over the vocabulary."""
        return np.frombuffer(bias, dtype=np.uint8)[: self.vocab.size] > 0

    def _grammar_mask(self, matcher) -> torch.Tensor:
        # From numpy straight to a tensor: filling a torch tensor slice costs 300 times more.
        return torch.from_numpy(self._ok(matcher.compute_logit_bias())).to(self.vocab.device)

    def closing(self) -> tuple[int, ...] | None:
        """A shortest-first closing from the current state (None: none found)."""
        if not self._closing_known:
            self._closing = self._find_closing()
            self._closing_known = True
        return self._closing

    def _find_closing(self) -> tuple[int, ...] | None:
        m = self.matcher.deep_copy()
        out: list[int] = []
        # A loop shows as the same masks coming round again.  Keyed by the masks of the
        # last WINDOW steps (so the value of field 1 and of field 2 of a schema, which look
        # alike but follow different keys, stay apart): how often each token was taken
        # there.  The best-ranked token is taken up to REPEATS times, then the next one.
        recent: list[int] = []
        tried: dict[tuple[int, ...], dict[int, int]] = {}
        bias = m.compute_logit_bias()  # the masks of the state reached (one computation a step)
        while len(out) <= MAX_CLOSING:
            if m.is_accepting():
                return tuple(out)
            if m.is_error():
                return None
            ok = self._ok(bias) & self.peers_ok
            ranked = self.ranked_ids[ok[self.ranked_ids]]
            if not len(ranked):
                # No single byte goes on (the engine spells forced text its own way, "se"
                # after "[fal"): the shortest tokens that do, in id order.
                ids = np.flatnonzero(ok)
                if not len(ids):
                    return None
                ranked = ids[np.argsort(self.lengths[ids], kind="stable")][:16]
            recent.append(hash(bias))
            seen = tried.setdefault(tuple(recent[-WINDOW:]), {})
            pick = next((int(t) for t in ranked if seen.get(int(t), 0) < REPEATS), None)
            if pick is None:
                pick = min((int(t) for t in ranked), key=lambda t: seen[t])
            seen[pick] = seen.get(pick, 0) + 1
            m.consume_token(pick)
            out.append(pick)
            bias = m.compute_logit_bias()
            if hash(bias) == recent[-1]:
                seen[pick] = REPEATS  # it led straight back to the same masks: another next time
        return None

    def lead_ins(self) -> tuple[str, ...]:
        # Free text in JSON is a string's inside: a value's, an array item's, a member's.
        return ('{"answer": "', '["', '"')

    def check_budget(self, max_new_tokens: int) -> None:
        self.reset("")
        need = self.closing()
        if need is None:
            raise ImpossibleConstraint(
                f"'{self.name}': no answer of at most {MAX_CLOSING} tokens fits this grammar and the other rules")
        if len(need) > max_new_tokens:
            raise ImpossibleConstraint(
                f"'{self.name}': the shortest answer takes {len(need)} tokens, the budget is {max_new_tokens}")

    def allowed(self, steps_left: int) -> torch.Tensor:
        self._room = steps_left
        closing = self.closing()
        if closing is None or len(closing) > steps_left:
            return torch.zeros(self.vocab.size, dtype=torch.bool, device=self.vocab.device)
        # The end of text only where the grammar accepts (MaskSet adds the other rules' say).
        done = self.eos if self.matcher.is_accepting() else self.no_eos
        waiting = self.peer_need()
        if len(closing) + MARGIN >= steps_left - waiting:
            # Time to close: the closing's next token.
            return (self.vocab.ids_mask(closing[:1]) | done) if closing else done
        mask = self._grammar_mask(self.matcher) | done
        if self.drops_space and self.path.depth == 0:
            mask = mask & ~self.space_first
        if waiting:
            mask = mask & ~self._finishing(mask)
        return mask

    def _finishing(self, mask: torch.Tensor) -> torch.Tensor:
        """The allowed tokens that would complete the grammar (a JSON's last "}"): not
        while another rule still has words to write, which nothing could follow."""
        out = torch.zeros_like(mask)
        for t in torch.nonzero(mask & self.closers).flatten().tolist():
            self.matcher.consume_token(t)
            if self.matcher.is_accepting():
                out[t] = True
            self.matcher.rollback(1)
        return out

    def done_ok(self) -> bool:
        return self.matcher.is_accepting()

    def safe(self) -> bool:
        # Near the end a token may still be backed off (it lengthened the closing past the
        # budget): nothing there is streamed for good.
        closing = self.closing()
        return closing is not None and len(closing) + 2 * MARGIN < self._room


def _tokens_between(ancestor: _Path, node: _Path) -> list[int]:
    out = []
    while node is not ancestor:
        out.append(node.token)
        node = node.parent
    return out[::-1]


def build_grammar(cs: list[GrammarRule], vocab: VocabIndex, _lexicon=None) -> list[Masker]:
    if len(cs) > 1:
        raise ImpossibleConstraint(
            f"{' and '.join(repr(c.spec()) for c in cs)}: one grammar per answer (an answer is one JSON "
            f"value or one pattern)")
    return [GrammarMasker(cs[0], vocab)]
