"""Logits from several sequences at once, mixed per step (pipeline steps 1-2).

A ``BatchedSource`` runs one KV-cached forward over a batch of *rows*.  A row is the
prompt (optionally after a steering prefix, for prompt contrast) seen through the base
model or one peft adapter.  The logits the decode loop sees are a fixed linear mix of the
rows::

    adapters:        base + Σ wᵢ (adapterᵢ − base)        -> weights 1−Σwᵢ, w₁, w₂, ...
    prompt contrast: uncond + γ (cond − uncond)          -> weights 1−γ, γ
    both:            the product of the two weightings

Auxiliary rows (weight 0) are computed in the same forward but not mixed: controllers
read them (expert / anti-expert).  ``probe`` runs a batch of candidate next tokens
against the cache without keeping them (discriminator guidance).

It has ModelSource's three calls (prefill / step / crop), so the decode loop never changes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass(frozen=True)
class Row:
    adapter: str = BASE
    prefix: tuple[int, ...] = ()  # tokens before the prompt (prompt contrast's condition)
    weight: float = 1.0  # coefficient in the mixed logits; 0 for auxiliary rows


def _cache_kw(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` during 5.x; accept both.
    A peft wrapper hides the real signature, so look at the model it wraps."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class BatchedSource:
    """KV-cached next-token logits for a batch of rows, mixed by the rows' weights."""

    def __init__(self, model, rows: list[Row], config=None):
        if not rows:
            raise ValueError("rows must not be empty")
        if not any(r.weight != 0 for r in rows):
            raise ValueError("at least one row needs a non-zero weight")
        self.model = model
        self.rows = list(rows)
        self.config = config or model.config
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.weights = torch.tensor([r.weight for r in rows], device=self.device, dtype=torch.float32)
        adapters = [r.adapter for r in rows]
        # Only a peft model understands adapter_names; an all-base batch skips it.
        self._adapter_kw = {} if all(a == BASE for a in adapters) else {"adapter_names": adapters}
        self._cache_name = _cache_kw(model)
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [B, cache length], 0 = left padding
        self.padded = False
        self.length = 0  # prompt + generated tokens (the decode loop's count)
        self.offset = 0  # cache length - length: the longest prefix
        self.row_logits: torch.Tensor | None = None  # [B, V] after the last call

    # ------------------------------------------------------------------ forward

    def _forward(self, ids: torch.Tensor, mask, positions, **kw):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self._cache_name: self.cache}, **self._adapter_kw, **kw)
        return out

    def _mix(self, logits: torch.Tensor) -> torch.Tensor:
        self.row_logits = logits.float()
        return self.weights @ self.row_logits

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Mixed logits after the prompt (new cache); each row's prefix goes first."""
        seqs = [list(r.prefix) + list(ids) for r in self.rows]
        width = max(len(s) for s in seqs)
        self.offset = width - len(ids)
        self.length = len(ids)
        # Left padding keeps every row's last token in the same column.
        x = torch.zeros(len(seqs), width, dtype=torch.long, device=self.device)
        mask = torch.zeros(len(seqs), width, dtype=torch.long, device=self.device)
        for i, s in enumerate(seqs):
            x[i, width - len(s):] = torch.tensor(s, device=self.device)
            mask[i, width - len(s):] = 1
        self.padded = any(len(s) < width for s in seqs)
        self.mask = mask
        self.cache = DynamicCache(config=self.config)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(x, mask if self.padded else None, pos, logits_to_keep=1)
        return self._mix(out.logits[:, -1])

    @torch.inference_mode()
    def step(self, token_id: int, token: torch.Tensor | None = None) -> torch.Tensor:
        """Mixed logits after appending one token to every row.  ``token``, the sampled
        id still on the device, saves a host-to-device copy per step."""
        n = len(self.rows)
        self.mask = torch.cat([self.mask, self.mask.new_ones(n, 1)], dim=1)
        pos = self.mask.sum(-1, keepdim=True) - 1
        if token is not None:
            x = token.reshape(1, 1).to(torch.long).expand(n, 1)
        else:
            x = torch.full((n, 1), token_id, dtype=torch.long, device=self.device)
        out = self._forward(x, self.mask if self.padded else None, pos, logits_to_keep=1)
        self.length += 1
        return self._mix(out.logits[:, -1])

    def crop(self, length: int) -> None:
        """Forget everything after the first ``length`` prompt+generated tokens."""
        if length < self.length:
            drop = self.length - length
            self.cache.crop(-drop)
            self.mask = self.mask[:, :-drop]
            self.length = length

    # ------------------------------------------------------------------ for controllers

    def logits_of(self, row: Row) -> torch.Tensor:
        """One row's logits after the last call (e.g. an auxiliary expert row); rows
        are matched by adapter and prefix, whatever their weight."""
        return self.row_logits[self._row_index(row)]

    @torch.inference_mode()
    def probe(self, candidates, layer: int, row: Row = Row(BASE, (), 0.0)) -> torch.Tensor:
        """Hidden states [k, H] at ``layer`` for 'text so far + candidate', for each
        candidate, in one forward that the cache forgets afterwards.  Each candidate sees
        the cached context and itself, not the other candidates (a 4-D mask)."""
        i = self._row_index(row)
        n, k = len(self.rows), len(candidates)
        ctx = self.mask.shape[1]
        allowed = torch.zeros(n, 1, k, ctx + k, dtype=torch.bool, device=self.device)
        allowed[:, 0, :, :ctx] = self.mask[:, None, :].bool()
        allowed[:, 0, torch.arange(k), ctx + torch.arange(k)] = True
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=self.device)
        mask = mask.masked_fill(~allowed, torch.finfo(self.dtype).min)
        pos = self.mask.sum(-1, keepdim=True).expand(n, k)
        x = torch.as_tensor(candidates, device=self.device).reshape(1, k).expand(n, k)
        out = self._forward(x, mask, pos, logits_to_keep=1, output_hidden_states=True)
        self.cache.crop(-k)
        return out.hidden_states[layer][i].float()

    def _row_index(self, row: Row) -> int:
        for i, r in enumerate(self.rows):
            if r.adapter == row.adapter and r.prefix == row.prefix:
                return i
        raise ValueError(f"this source has no row for adapter '{row.adapter}' with that prefix")
