"""Per-token perplexity of a text under the model, optionally "model + filter", optionally
steered.

With constraints, at every position the model's distribution is renormalised over the
tokens the constraints allow there (the CTGS paper's filtered perplexity).  Long texts
are scored in sliding windows so every token keeps at least half a window of context.

With steering (``steer``: what ``studio.steer.steering`` returns), each position's logits
are the ones a steered generation would sample from: the feed's rows (adapters mixed,
prompt contrast) through the same linear mix, then the controllers' adjustments (a word
bank's bias, experts).  Controllers that probe the model per step (a discriminator) cannot
be replayed over a whole text and are refused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from constraints.base import Constraint

from models.sources import BASE, Feed, Row
from studio.decode.maskset import MaskSet, compile_masks
from studio.decode.settings import Settings


@dataclass
class Score:
    perplexity: float
    tokens: int  # tokens scored
    nll: float  # mean negative log-likelihood (nats) over scored tokens
    constraints: str
    model: str
    disallowed: int = 0  # tokens the constraints forbid (left out of the perplexity)
    steering: str = ""  # what steered the scored distribution, in words ("" for none)

    def to_dict(self) -> dict:
        return asdict(self)


class _Position:
    """What a controller reads of a generation, at one scored position."""

    def __init__(self, engine, context: str, masks: MaskSet, settings: Settings):
        self.engine, self.context, self.masks, self.settings = engine, context, masks, settings
        self.pieces: list[str] = []
        self.rows: torch.Tensor | None = None  # [rows, V] at this position
        self.feed: Feed | None = None
        self.source = self

    def logits_of(self, row: Row) -> torch.Tensor:
        for i, r in enumerate(self.feed.rows):
            if r.adapter == row.adapter and r.prefix == row.prefix:
                return self.rows[i]
        raise ValueError(f"no row for adapter '{row.adapter}' with that prefix")

    def probe(self, *_a, **_k):
        raise ValueError("a discriminator guides each step by probing the model; "
                         "it cannot be replayed to score a text")


def _row_logits(feed: Feed, ids: list[int]) -> torch.Tensor:
    """[rows, len(ids), V]: each row's logits over ``ids`` (after its prefix)."""
    out = []
    for r in feed.rows:
        x = torch.tensor([list(r.prefix) + ids], device=next(feed.model.parameters()).device)
        kw = {} if r.adapter == BASE and not hasattr(feed.model, "get_base_model") else \
            {"adapter_names": [r.adapter]}
        out.append(feed.model(input_ids=x, **kw).logits[0, len(r.prefix):].float())
    return torch.stack(out)


@torch.inference_mode()
def score_text(engine, text: str, constraint: Constraint | None = None, prompt: str = "",
               window: int = 1024, steer: dict | None = None) -> Score:
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
    steer = steer or {}
    feed: Feed | None = steer.get("feed")
    controllers = list(steer.get("controllers") or ())
    at = _Position(engine, prompt, masks, Settings(max_new_tokens=max(1, len(ids) - first)))
    at.feed = feed
    if first == 1:
        at.pieces.append(vocab.decode([ids[0]]))

    total, count, disallowed = 0.0, 0, 0
    stride = window // 2
    pos = first  # next position to score
    while pos < len(ids):
        start = max(0, pos - stride) if pos > first else 0
        end = min(len(ids), start + window)
        targets = list(range(pos, end))
        if feed is None:
            x = torch.tensor([ids[start:end]], device=dev)
            logits = engine.model(input_ids=x).logits[0].float()  # [L, V]
            rows = logits[[t - 1 - start for t in targets]]
        else:
            per_row = _row_logits(feed, ids[start:end])[:, [t - 1 - start for t in targets]]
            weights = torch.tensor([r.weight for r in feed.rows], device=per_row.device)
            rows = torch.einsum("r,rlv->lv", weights, per_row)
        if controllers:
            adjusted = []
            for i, t in enumerate(targets):
                if feed is not None:
                    at.rows = per_row[:, i]
                scores = rows[i]
                for c in controllers:
                    scores = c.adjust(scores, at)
                adjusted.append(scores)
                at.pieces.append(vocab.decode([ids[t]]))
            rows = torch.stack(adjusted)
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
        steering=describe_steering(feed, controllers),
    )


def describe_steering(feed: Feed | None, controllers) -> str:
    parts = []
    if feed is not None:
        adapters = [f"{r.adapter} x{r.weight:g}" for r in feed.rows if r.adapter != BASE and r.weight]
        if adapters:
            parts.append("adapters " + ", ".join(adapters))
        if any(r.prefix for r in feed.rows):
            parts.append("prompt contrast")
    parts += [type(c).__name__ for c in controllers if type(c).__name__ != "PromptContrast"]
    return "; ".join(parts)
