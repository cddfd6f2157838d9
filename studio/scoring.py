"""Per-token perplexity of a text under the model, optionally "model + filter".

With constraints, at every position the model's distribution is renormalised over the
tokens the constraints allow there (the CTGS paper's filtered perplexity).  Long texts
are scored in sliding windows so every token keeps at least half a window of context.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from constraints.base import Constraint

from studio.decode.maskset import compile_masks


@dataclass
class Score:
    perplexity: float
    tokens: int  # tokens scored
    nll: float  # mean negative log-likelihood (nats) over scored tokens
    constraints: str
    model: str
    disallowed: int = 0  # tokens the constraints forbid (left out of the perplexity)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def score_text(engine, text: str, constraint: Constraint | None = None, prompt: str = "",
               window: int = 1024) -> Score:
    if not text:
        raise ValueError("nothing to score: the text is empty")
    if window < 16:
        raise ValueError(f"window must be >= 16 tokens (got {window})")
    tok, vocab, dev = engine.tokenizer, engine.vocab, engine.device
    prefix = tok.encode(prompt, add_special_tokens=True) if prompt else []
    body = tok.encode(text, add_special_tokens=not prefix)
    ids = prefix + body
    # Without a prompt, the first token has no context to be predicted from.
    first = len(prefix) if prefix else 1
    if len(ids) - first < 1:
        raise ValueError("the text is too short to score (one token)")
    masks = compile_masks(constraint, vocab)
    masks.reset(prompt)
    if masks and first == 1:
        masks.advance(ids[0])

    total, count, disallowed = 0.0, 0, 0
    stride = window // 2
    pos = first  # next position to score
    while pos < len(ids):
        start = max(0, pos - stride) if pos > first else 0
        end = min(len(ids), start + window)
        x = torch.tensor([ids[start:end]], device=dev)
        logits = engine.model(input_ids=x).logits[0].float()  # [L, V]
        targets = list(range(pos, end))
        rows = logits[[t - 1 - start for t in targets]]
        if masks:
            allowed = []
            for t in targets:
                allowed.append(masks.allowed(len(ids) - t))
                masks.advance(ids[t])
            rows = rows.masked_fill(~torch.stack(allowed), float("-inf"))
        logp = torch.log_softmax(rows, dim=-1)
        picked = logp[torch.arange(len(targets)), torch.tensor([ids[t] for t in targets], device=dev)]
        finite = torch.isfinite(picked)
        disallowed += int((~finite).sum())
        total += float(-picked[finite].sum())
        count += int(finite.sum())
        pos = end
    nll = total / count if count else float("inf")
    return Score(
        perplexity=math.exp(nll) if count else float("inf"),
        tokens=count,
        nll=nll,
        constraints=constraint.spec() if constraint is not None else "",
        model=engine.name,
        disallowed=disallowed,
    )

