"""Plug-and-play controllers (pipeline step 3): soft steering, each with a strength.

A controller has ``adjust(scores, generation) -> scores`` (a new tensor; never edits its
input) and may ``configure(plan, engine)`` the source: ask for extra rows in the batched
forward (models/sources.py) that its ``adjust`` then reads.

- WordBank:              a logit bias that follows bank words across sub-word tokens
- PromptContrast:        uncond + γ (cond − uncond), the two prompts batched (CFG for text)
- ExpertAntiExpert:      base + α (expert − anti-expert) with two LoRA adapters (DExperts)
- DiscriminatorGuidance: re-weights the top-k candidates by a classifier on the hidden
                         state after each candidate (FUDGE)

They steer and never forbid: hard constraints come after them (step 4) and win.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from constraints import limits
from constraints.cache import BoundedCache
from constraints.units import is_boundary

from models.adapters import AdapterSet, adapters_for, mix_rows
from models.discriminator import Discriminator
from models.sources import BASE, Feed, Row, SequenceSource


def _strength(name: str, value, low: float | None = None) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low} (got {value!r})")
    return float(value)


def tail_so_far(generation, chars: int = 64) -> str:
    """The last characters written (enough for the word in progress), without joining
    the whole text at every step."""
    pieces, out, n = getattr(generation, "pieces", ()), [], 0
    for p in reversed(pieces):
        out.append(p)
        n += len(p)
        if n >= chars:
            return "".join(reversed(out))
    return generation.context[-chars:] + "".join(reversed(out))


# ---------------------------------------------------------------------- source plans


@dataclass
class SourcePlan:
    """What the batched forward must compute: prompt variants (prefix, weight), mixed
    adapters (name, weight), auxiliary rows, whether candidates will be probed."""

    contexts: list[tuple[tuple[int, ...], float]] = field(default_factory=lambda: [((), 1.0)])
    adapters: list[tuple[str, float]] = field(default_factory=list)
    aux: list[Row] = field(default_factory=list)
    probe: bool = False

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for prefix, weight in self.contexts:
            rows += mix_rows(self.adapters, prefix, weight)
        for r in self.aux:
            if not any(x.adapter == r.adapter and x.prefix == r.prefix for x in rows):
                rows.append(Row(r.adapter, r.prefix, 0.0))
        return rows

    def build(self, engine, adapter_set: AdapterSet | None = None) -> Feed | None:
        """What the rows run on (the model, or a peft copy holding the adapters), or None
        when the plain model does the same job."""
        rows = self.rows()
        if not self.probe and rows == [Row(BASE, (), 1.0)]:
            return None
        names = {r.adapter for r in rows} - {BASE}
        if names and adapter_set is None:
            raise ValueError("adapter rows need an AdapterSet")
        model = adapter_set.model_for(names) if names else engine.model
        return Feed(model, tuple(rows))


class Controller:
    """The protocol; subclasses override what they need."""

    def configure(self, plan: SourcePlan, engine) -> None:
        """Ask the plan for what ``adjust`` will read."""

    def adjust(self, scores: torch.Tensor, generation) -> torch.Tensor:
        return scores


# ---------------------------------------------------------------------- word bank


def _word_parts(vocab):
    """Per vocabulary (computed once): [(token, word part, ends the word?)] for tokens that
    write letters, a mask of tokens with a leading boundary (they start a new word), and
    the tokens without one grouped by word part (they may continue the word in progress)."""
    return vocab.derived("bank-parts", _build_word_parts)


def _build_word_parts(vocab):
    parts, by_piece = [], {}
    lead = torch.zeros(vocab.size, dtype=torch.bool)
    for i, (t, sp) in enumerate(zip(vocab.texts, vocab.special)):
        if sp or not t:
            continue
        j = 0
        while j < len(t) and is_boundary(t[j]):
            j += 1
        k = j
        while k < len(t) and not is_boundary(t[k]):
            k += 1
        word, ends = t[j:k].lower(), k < len(t)
        lead[i] = j > 0
        if word:
            parts.append((i, word, ends))
            if j == 0:
                by_piece.setdefault(word, []).append((i, ends))
    return parts, lead.to(vocab.device), by_piece


def split_words(text: str) -> list[str]:
    """The words of a typed or listed bank: separated by spaces, newlines, commas or semicolons."""
    return [w for w in re.split(r"[\s,;]+", text or "") if w]


def read_word_list(path) -> list[str]:
    """The words of a word-list file (UTF-8; '#' starts a comment); ValueError naming
    ``path`` when it is missing, not text, or holds no words."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no such word bank file: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"word bank {path} is not UTF-8 text") from None
    words = split_words("\n".join(ln.split("#")[0] for ln in text.splitlines()))
    if not words:
        raise ValueError(f"word bank {path} has no words")
    return words


class WordBank(Controller):
    """Favour (strength > 0) or disfavour (< 0) a bag of words.  A token gets
    ``strength × coverage``: 1 when it completes a bank word, len(prefix)/len(word) when
    it starts or continues one (so " moon" beats " mo", and "on" after " mo" gets the
    full bias).  Matching ignores case."""

    def __init__(self, words, strength: float = 3.0):
        self.strength = _strength("bank strength", strength)
        words = list(words)
        limits.BANK_WORDS.check(len(words))  # before the prefix table, which grows with the bank
        self.words = frozenset(w.lower() for w in words if w and not any(is_boundary(c) for c in w))
        if not self.words:
            raise ValueError("the word bank is empty (give words made of letters)")
        self._minlen: dict[str, int] = {}  # every prefix of a bank word -> shortest word length
        for w in self.words:
            for i in range(1, len(w) + 1):
                if self._minlen.get(w[:i], 1 << 30) > len(w):
                    self._minlen[w[:i]] = len(w)
        self._vocab = None
        self._cont: BoundedCache[torch.Tensor] = BoundedCache(4096)

    @classmethod
    def from_file(cls, path, strength: float = 3.0) -> "WordBank":
        return cls(read_word_list(path), strength)

    def share(self, text: str) -> float:
        """The share of words in ``text`` that are bank words (the bench's measure)."""
        words = [w for w in re.split(r"[^\w'’]+", text.lower()) if w and not w.isdigit()]
        return sum(w in self.words for w in words) / len(words) if words else 0.0

    def _cov(self, q: str) -> float:
        n = self._minlen.get(q)
        return len(q) / n if n else 0.0

    def _index(self, vocab) -> None:
        """The bias each token gets when it starts a word, from the vocabulary's word parts."""
        parts, lead, self._by_piece = _word_parts(vocab)
        start = torch.zeros(vocab.size)
        for i, word, ends in parts:
            start[i] = (1.0 if word in self.words else 0.0) if ends else self._cov(word)
        self._start = (start * self.strength).to(vocab.device)
        self._lead = lead
        self._zero = torch.zeros(vocab.size, device=vocab.device)
        self._vocab = vocab

    def _continuation(self, p: str) -> torch.Tensor:
        """Bias for tokens that continue the word in progress ``p`` (no leading space)."""
        got = self._cont.get(p)
        if got is not None:
            return got
        vals: dict[int, float] = {}
        for w in self.words:
            if not w.startswith(p) or w == p:
                continue
            rest = w[len(p):]
            for j in range(1, len(rest) + 1):
                piece = rest[:j]
                for tid, ends in self._by_piece.get(piece, ()):
                    v = (1.0 if p + piece in self.words else 0.0) if ends else self._cov(p + piece)
                    if v > vals.get(tid, 0.0):
                        vals[tid] = v
        out = torch.zeros(self._vocab.size)
        if vals:
            out[list(vals)] = torch.tensor(list(vals.values()))
        out = (out * self.strength).to(self._vocab.device)
        self._cont[p] = out
        return out

    def bias(self, text: str, vocab) -> torch.Tensor:
        """The bias after ``text`` (exposed for tests and the bench)."""
        if self._vocab is not vocab:
            self._index(vocab)
            self._cont.clear()
        k = len(text)
        while k > 0 and not is_boundary(text[k - 1]):
            k -= 1
        p = text[k:].lower()
        if not p:
            return self._start  # any token starts a new word
        cont = self._continuation(p) if p in self._minlen else self._zero
        return torch.where(self._lead, self._start, cont)

    def adjust(self, scores, generation):
        return scores + self.bias(tail_so_far(generation), generation.engine.vocab)


# ---------------------------------------------------------------------- prompt contrast


class PromptContrast(Controller):
    """Classifier-free guidance for text: ``uncond + γ (cond − uncond)``, where *cond*
    sees ``text`` before the prompt and *uncond* does not.  γ = 1 is plain prompting,
    γ > 1 pushes further toward the description, γ = 0 ignores it.  Both prompts run in
    one batched forward (the work happens in the source; ``adjust`` has nothing to add)."""

    def __init__(self, text: str, strength: float = 1.5):
        if not isinstance(text, str) or not text.strip():
            raise ValueError("steer text must not be empty")
        limits.STEER_CHARS.check(len(text))
        self.text = text.strip()
        self.strength = _strength("steer strength", strength, 0.0)

    def prefix(self, tokenizer) -> tuple[int, ...]:
        """The description's tokens, prefilled before the prompt in the contrast row: its
        last ``limits.STEER_TOKENS`` (the part nearest the prompt), so a long description
        costs one bounded prefill, never a whole pasted text's."""
        ids = tokenizer.encode(self.text + "\n\n")
        return tuple(ids[-limits.STEER_TOKENS.value():])

    def configure(self, plan, engine):
        if len(plan.contexts) > 1:
            raise ValueError("only one --steer description at a time")
        g = self.strength
        plan.contexts = [((), 1.0 - g), (self.prefix(engine.tokenizer), g)]

    def source(self, engine) -> SequenceSource:
        """The two-row source on its own (for use without the rest of the plan)."""
        plan = SourcePlan()
        self.configure(plan, engine)
        feed = plan.build(engine)
        return SequenceSource(feed.model, feed.rows, config=engine.model.config)


# ---------------------------------------------------------------------- DExperts


class ExpertAntiExpert(Controller):
    """DExperts: ``scores + α (expert − anti_expert)``, both adapters run in the same batch
    as the base.  As in the paper, the expert term applies only inside the base's top-p
    nucleus (``top_p``), so it re-ranks plausible tokens instead of promoting junk;
    outside it the scores are left as they were (soft: nothing is forbidden).
    ``top_p=1`` is the bare formula."""

    def __init__(self, expert: str, anti: str, alpha: float = 2.0, top_p: float = 0.9):
        self.expert, self.anti = str(expert), str(anti)  # loaded adapters' names, or their directories
        self.alpha = _strength("expert strength (alpha)", alpha)
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (got {top_p!r})")
        self.top_p = float(top_p)

    def configure(self, plan, engine):
        aset = adapters_for(engine)
        self.expert, self.anti = (x if x in aset.adapters else aset.load(x).name for x in (self.expert, self.anti))
        plan.aux += [Row(self.expert, (), 0.0), Row(self.anti, (), 0.0)]

    def adjust(self, scores, generation):
        src = generation.source
        delta = self.alpha * (src.logits_of(Row(self.expert)) - src.logits_of(Row(self.anti)))
        if self.top_p < 1:
            probs = torch.softmax(scores, -1)
            sorted_p, order = probs.sort(descending=True)
            keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < self.top_p  # the first always stays
            keep = torch.zeros_like(keep_sorted).scatter(0, order, keep_sorted)
            delta = torch.where(keep, delta, torch.zeros_like(delta))
        return scores + delta


# ---------------------------------------------------------------------- FUDGE


def allowed_now(generation) -> torch.Tensor | None:
    """What the hard constraints will allow this step (so probes are not wasted on
    tokens step 4 will mask), or None when nothing is constrained."""
    if not generation.masks:
        return None
    return generation.masks.allowed(generation.settings.max_new_tokens - len(generation.pieces))


class DiscriminatorGuidance(Controller):
    """FUDGE: for the ``top_k`` most likely candidates (among those the hard constraints
    allow), run "text so far + candidate" through the model in one probe forward, and
    add ``strength × log P(attribute | prefix + candidate)`` to their scores.  Tokens not
    probed get the lowest probed value, so an unknown never beats a judged candidate.
    ``toward=False`` steers away from the attribute."""

    def __init__(self, discriminator: Discriminator, strength: float = 2.0, top_k: int = 20,
                 toward: bool = True):
        self.disc = discriminator
        self.strength = _strength("discriminator strength", strength, 0.0)
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer (got {top_k!r})")
        self.top_k = top_k
        self.sign = 1.0 if toward else -1.0

    def configure(self, plan, engine):
        plan.aux.append(Row(BASE, (), 0.0))
        plan.probe = True

    def adjust(self, scores, generation):
        allowed = allowed_now(generation)
        ranked = scores if allowed is None else scores.masked_fill(~allowed, float("-inf"))
        k = min(self.top_k, scores.shape[-1])
        top = ranked.topk(k)
        # Candidates at -inf (fewer than k allowed) are probed but given no weight.
        ok = torch.isfinite(top.values)
        h = generation.source.probe(top.indices, self.disc.layer)
        logp = torch.nn.functional.logsigmoid(self.sign * self.disc.logit(h))
        floor = torch.where(ok, logp, torch.full_like(logp, float("inf"))).min()
        floor = torch.where(torch.isfinite(floor), floor, torch.zeros_like(floor))
        delta = torch.full_like(scores, 0.0) + self.strength * floor
        delta = delta.scatter(0, top.indices, self.strength * torch.where(ok, logp, floor))
        return scores + delta
