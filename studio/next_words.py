"""Ranked next tokens and next whole words, every one obeying the constraints.

Next tokens: the model's distribution after the prompt, masked and renormalised over the
allowed tokens.  Next words: sub-word tokens are expanded (batched, KV-cached) until a
word boundary becomes possible; a word is offered only when a boundary token is allowed
after it, so a word-level masker has accepted the finished word (and under a word rule or
a form, the masks draw on the writer's lexicon: common words by default).  Its
probability is the product of its tokens' probabilities times the probability of ending
the word there.  A non-word (neither CMU nor wordfreq knows it, or a lone letter,
acronym or fragment: constraints.lexicon.is_word) is never offered as a word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from constraints.base import Constraint
from constraints.lexicon import is_word
from constraints.units import iter_words

from studio.decode.maskset import NO_BUDGET, compile_masks


@dataclass
class Candidate:
    text: str  # exactly what appending it adds (leading space included)
    prob: float
    token_ids: list[int]

    @property
    def display(self) -> str:
        return self.text.strip() or repr(self.text)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["display"] = self.display
        return d


def _word_start_mask(vocab):
    """Tokens that begin with a word character: they continue the word in progress (the
    same split the word-level masks use, so a word is offered only where they end it)."""
    from constraints.units import is_word_char

    return vocab.mask("word-cont", lambda _i, t: bool(t) and is_word_char(t[0]), allow_eos=False)


def _add(found: dict[str, Candidate], cand: Candidate) -> None:
    """Merge spellings of one word ("The"/" the" differ only in case or space): probabilities
    add up, the most probable spelling is shown.  Non-words are left out (a suffix of the
    word before, "'s", "'ll", is not a word of its own and stays)."""
    suffix = cand.text[:1] in "'’"
    if not suffix and not all(is_word(m.group()) for m in iter_words(cand.text)):
        return
    key = cand.text.strip().lower() or cand.text
    prev = found.get(key)
    if prev is None:
        found[key] = cand
    else:
        best = cand if cand.prob > prev.prob else prev
        found[key] = Candidate(best.text, prev.prob + cand.prob, best.token_ids)


@torch.inference_mode()
def next_candidates(engine, prompt: str, constraint: Constraint | None = None, n: int = 10,
                    words: bool = True, mode: str = "continue", depth: int = 4,
                    width: int | None = None) -> list[Candidate]:
    """Top ``n`` next words (``words=True``) or next tokens, with probabilities."""
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    vocab = engine.vocab
    ids, context, drop_space = engine.encode_prompt(prompt, mode)
    masks = compile_masks(constraint, vocab)
    masks.reset(context)
    base = masks.snapshot()
    # The engine's own source (llama.cpp on a CPU, else torch): each frontier item is one
    # sequence in it, forked where a word branches, removed where it is pruned.
    source = engine.source()
    try:
        return _search(engine, source, ids, masks, base, drop_space, n, words, depth, width)
    finally:
        for sid in list(source.seqs):
            source.remove(sid)
        masks.restore(base)


def _search(engine, source, ids, masks, base, drop_space, n, words, depth, width) -> list[Candidate]:
    vocab = engine.vocab

    def masked_probs(logits, state):
        masks.restore(state)
        allowed = masks.allowed(NO_BUDGET)  # candidates have no budget
        return torch.softmax(logits.float().masked_fill(~allowed, float("-inf")), dim=-1)

    def advanced(state, token_id):
        masks.restore(state)
        masks.advance(token_id)
        return masks.snapshot()

    ((root, logits),) = source.add(ids)
    probs = masked_probs(logits, base)
    if torch.isnan(probs).any():
        return []

    def render(tok_ids):
        text = vocab.decode(tok_ids)
        if drop_space and text.startswith(" "):
            text = text[1:]
        return text

    if not words:
        top = torch.topk(probs, min(n, int((probs > 0).sum())))
        return [Candidate(render([i]), p, [i]) for p, i in zip(top.values.tolist(), top.indices.tolist())
                if i not in vocab.eos_ids]

    cont = _word_start_mask(vocab)
    width = width or max(2 * n, 16)
    top = torch.topk(probs, min(width, int((probs > 0).sum())))
    found: dict[str, Candidate] = {}
    # Frontier: (token ids, probability so far, masker state after them)
    frontier = [([i], p, advanced(base, i)) for p, i in zip(top.values.tolist(), top.indices.tolist())
                if i not in vocab.eos_ids]
    # A token with no letters (punctuation, a line break) is a whole "word" already.
    done = [f for f in frontier if not any(c.isalpha() for c in vocab.texts[f[0][0]])]
    for ids_, p, _ in done:
        _add(found, Candidate(render(ids_), p, ids_))
    frontier = [f for f in frontier if f not in done]
    seqs = source.fork(root, len(frontier)) if frontier else []  # the sequence of each item
    source.remove(root)
    for level in range(depth):
        if not frontier:
            break
        out = source.step({sid: f[0][-1] for sid, f in zip(seqs, frontier)})
        children, parents = [], []
        for sid, (tok_ids, p, state) in zip(seqs, frontier):
            q = masked_probs(out[sid], state)
            if torch.isnan(q).any():
                continue
            p_end = float(q[~cont].sum())  # a boundary or EOS may follow: the word is done
            if p_end > 0:
                _add(found, Candidate(render(tok_ids), p * p_end, tok_ids))
            if level + 1 < depth:
                qc = q * cont
                k = min(2, int((qc > 0).sum()))
                if k:
                    t2 = torch.topk(qc, k)
                    for pq, j in zip(t2.values.tolist(), t2.indices.tolist()):
                        children.append((tok_ids + [j], p * pq, advanced(state, j)))
                        parents.append(sid)
        # Keep the most probable continuations: the first child of a parent takes over
        # its sequence, another is a fork of it; parents with no child kept leave.
        order = sorted(range(len(children)), key=lambda i: -children[i][1])[:width]
        taken: set[int] = set()
        frontier, next_seqs = [], []
        for i in order:
            parent = parents[i]
            next_seqs.append(source.fork(parent)[0] if parent in taken else parent)
            taken.add(parent)
            frontier.append(children[i])
        for sid in seqs:
            if sid not in taken:
                source.remove(sid)
        seqs = next_seqs
    return sorted(found.values(), key=lambda c: -c.prob)[:n]
