"""The surface grammar of structure masks, per vocabulary: each token's class (letters,
space + letters, inner punctuation, sentence end, space, newline, blank line, contraction),
spelling costs of given text, and completion lengths of dictionary words (for landing on a
character count)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from constraints.cache import BoundedCache
from constraints.lexicon import default_lexicon

from studio.decode.vocab import VocabIndex
from studio.masks.words import token_words

INF = 10**9
OTHER, LET, SLET, INNER, ENDP, SP, NL, NL2, APOS = range(9)
INNER_CHARS, END_CHARS = ",;:", ".!?"
# Contractions: Treebank splits "it's" into "it" "'s" and "doesn't" into "does" "n't", two
# words each; the decoder writes them as a word and then one of these tokens.
CONTRACTIONS = {"'s": "'s", "'m": "'m", "'d": "'d", "'ll": "'ll", "'re": "'re", "'ve": "'ve", "'t": "n't"}
# Letter-only words the Treebank tokenizer cuts in two ("can" "not", "gon" "na", ...).
SPLIT_WORDS = frozenset({"cannot", "gimme", "gonna", "gotta", "lemme", "wanna"})



def is_letters(s: str) -> bool:
    return bool(s) and s.isascii() and s.isalpha()


def is_word(s: str) -> bool:
    """Word characters of the surface grammar: ASCII letters and digits ("3rd", "1899": one
    Treebank token each; a period after a number is not always a sentence end for Punkt,
    so a number ends its sentence with "!" or "?" only: structure_ends.py)."""
    return bool(s) and s.isascii() and s.isalnum()


class StructureTokens:
    """Per vocabulary: each token's class in the surface grammar and the tables the
    structure masks use."""

    def __init__(self, vocab: VocabIndex):
        n = vocab.size
        kind = np.zeros(n, np.int8)
        cap = np.zeros(n, bool)
        split = np.zeros(n, bool)
        lens = np.zeros(n, np.int64)
        self.letters = [""] * n
        self.by_text: dict[str, list[int]] = {}
        for i, (t, special) in enumerate(zip(vocab.texts, vocab.special)):
            if special or not t:
                continue
            self.by_text.setdefault(t, []).append(i)
            lens[i] = len(t)
            body = t[1:] if t[0] == " " else t
            if is_word(body):
                kind[i] = SLET if t[0] == " " else LET
                self.letters[i] = body.lower()
                cap[i] = body[0].isupper()
                split[i] = body.lower() in SPLIT_WORDS
            elif t in CONTRACTIONS:
                kind[i] = APOS
            elif t in INNER_CHARS:
                kind[i] = INNER
            elif t in END_CHARS:
                kind[i] = ENDP
            else:
                kind[i] = {" ": SP, "\n": NL, "\n\n": NL2}.get(t, OTHER)
        self.kind = kind
        dev = vocab.device
        self.alpha = torch.from_numpy(np.array([is_letters(q) for q in self.letters])).to(dev)
        as_mask = lambda a: torch.from_numpy(a).to(dev)  # noqa: E731
        self.masks = {k: as_mask(kind == k) for k in range(1, 9)}
        self.contraction = {c: vocab.ids_mask(self.by_text.get(c, [])) for c in CONTRACTIONS}
        # Sentence ends: a period, and "!" / "?" (Punkt always splits at those, not always at
        # a period: studio/masks/structure_ends.py).
        self.period = vocab.ids_mask(self.by_text.get(".", []))
        self.bang = self.masks[ENDP] & ~self.period
        ok = ~split
        self.word_start = {  # tokens that start a word: any case / a capital
            (LET, False): as_mask((kind == LET) & ok), (LET, True): as_mask((kind == LET) & ok & cap),
            (SLET, False): as_mask((kind == SLET) & ok), (SLET, True): as_mask((kind == SLET) & ok & cap),
        }
        # ... not a capital: after a given word ending in a period ("Mr."), which a capital
        # could make a sentence end.
        self.uncapital_start = {k: as_mask((kind == k) & ok & ~cap) for k in (LET, SLET)}
        tw = token_words(vocab)
        # Letter case stays sane within a word (TokenWords' shapes), as word masks keep it.
        self.case = {c: as_mask(m & (kind == LET)) for c, m in tw.case_masks.items()}
        self.next_case = tw.next_case
        self.root = tw.root
        self.lens = torch.from_numpy(lens).to(dev)
        self.max_len = int(lens[(kind == LET) | (kind == SLET)].max()) if ((kind == LET) | (kind == SLET)).any() else 1
        self.eos = vocab.ids_mask(vocab.eos_ids)
        self.none = torch.zeros(n, dtype=torch.bool, device=dev)
        self.vocab = vocab
        self._prefix: BoundedCache = BoundedCache(4096)
        self._cost: BoundedCache = BoundedCache(4096)

    def spell_cost(self, s: str) -> int:
        """Fewest tokens that write ``s`` exactly (INF if none can)."""
        hit = self._cost.get(s)
        if hit is None:
            best = [0] + [INF] * len(s)
            for i in range(len(s)):
                if best[i] >= INF:
                    continue
                for j in range(i + 1, min(len(s), i + 64) + 1):
                    if s[i:j] in self.by_text and best[i] + 1 < best[j]:
                        best[j] = best[i] + 1
            hit = self._cost[s] = best[len(s)]
        return hit

    def prefix_mask(self, s: str, max_tokens: int = INF) -> torch.Tensor:
        """Tokens whose text is a non-empty prefix of ``s`` and after which the rest of ``s``
        can be spelled: with this token, in at most ``max_tokens`` tokens."""
        max_tokens = min(max_tokens, len(s) + 1)
        key = (s, max_tokens)
        hit = self._prefix.get(key)
        if hit is None:
            ids = [i for j in range(1, min(len(s), 64) + 1) if 1 + self.spell_cost(s[j:]) <= max_tokens
                   for i in self.by_text.get(s[:j], ())]
            hit = self._prefix[key] = self.vocab.ids_mask(ids)
        return hit


def structure_tokens(vocab: VocabIndex) -> StructureTokens:
    return vocab.derived("structure-tokens", StructureTokens)


# ---------------------------------------------------------------- completion lengths


class CompletionLengths:
    """For every prefix of a word set: which numbers of letters can still follow to end
    on a word (bit d set: some word is d letters longer), for landing on a char count."""

    def __init__(self, words):
        table: dict[str, int] = {}
        for w in words:
            if not is_letters(w) or w in SPLIT_WORDS or len(w) > 62:
                continue
            n = len(w)
            for k in range(1, n + 1):
                q = w[:k]
                table[q] = table.get(q, 0) | (1 << (n - k))
        self.table = table

    def bits(self, q: str) -> int:
        return self.table.get(q, 0)


def common_words(toks: "StructureTokens") -> frozenset:
    """Dictionary words the tokenizer writes as one token after a space: the common ones,
    which a text should land on (the CMU list also holds "es", "whats", "aines")."""
    lex = default_lexicon()
    return frozenset(q for q, k in zip(toks.letters, toks.kind) if k == SLET and len(q) > 1 and q in lex) | \
        frozenset({"a", "i"})


def lowest_bit(b: int) -> int:
    return (b & -b).bit_length() - 1 if b else INF


@dataclass
class Landing:
    """Characters that may follow a word under way (lo..hi), and the endings after it: exact
    lengths, and the least length from which any longer one can be written, with the word
    ending its sentence (two letters or more) or with more words after it."""

    lo: int
    hi: int
    exact: list = None
    flex_end: int = INF
    flex_more: int = INF

    def __post_init__(self):
        self.exact = [] if self.exact is None else self.exact

    def fits(self, bits, end_bits, low, low_end, length) -> torch.Tensor:
        """Per token (writing ``length`` characters): some completion d of its word (a bit
        of ``bits``) leaves room for one of the endings."""
        lo, hi = self.lo - length, self.hi - length
        ok = ((low_end + self.flex_end) <= hi) | ((low + self.flex_more) <= hi)
        for e in self.exact:
            a = torch.clamp(lo - e, min=0)
            b = hi - e
            width = torch.clamp(b - a + 1, min=0, max=62)
            window = (torch.ones_like(width) << width) - 1
            hit = ((end_bits >> torch.clamp(a, max=62)) & window) != 0
            ok = ok | (hit & (b >= 0))
        return ok & (bits != 0)
