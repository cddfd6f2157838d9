"""Where logits come from (pipeline steps 1-2): one KV-cached forward for many sequences.

A ``BatchSource`` holds the cache of several *sequences* decoded together: a writer's
variants, the candidates of a search, concurrent writers on a Space.  Each step runs one
forward over all of them; a sequence may join (its prompt is prefilled and merged in) or
leave at any step, and may back off its own last tokens without touching the others.

A sequence is seen through one or more *rows*: the prompt (optionally after a steering
prefix, for prompt contrast) through the base model or one peft adapter.  The logits a
sequence's decoder sees are a fixed linear mix of its rows::

    adapters:        base + Σ wᵢ (adapterᵢ − base)        -> weights 1−Σwᵢ, w₁, w₂, ...
    prompt contrast: uncond + γ (cond − uncond)          -> weights 1−γ, γ
    both:            the product of the two weightings

Auxiliary rows (weight 0) are computed in the same forward but not mixed: controllers read
them (expert / anti-expert).  ``probe`` runs candidate next tokens against the cache
without keeping them (discriminator guidance).

How rows of different lengths share one rectangular cache: an attention mask marks the
columns each row attends.  A joining sequence is left-padded (or the others are); a row
with nothing to add in a step gets a masked pad column; a back-off masks the row's last
columns (a *hole*).  Position ids count only attended columns, so every row sees exactly
the sequence it would see alone.  While no column is masked the forward runs without a
mask, which is the fast path of a single sequence.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # imported where a cache is made: transformers' cache module costs a
    from transformers import DynamicCache  # second of start-up the llama.cpp engine never needs

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass(frozen=True)
class Row:
    adapter: str = BASE
    prefix: tuple[int, ...] = ()  # tokens before the prompt (prompt contrast's condition)
    weight: float = 1.0  # coefficient in the mixed logits; 0 for auxiliary rows


PLAIN = (Row(),)


@dataclass(frozen=True)
class Feed:
    """What one sequence runs on: a model (the base, or a peft copy holding adapters) and
    its rows.  Sequences with the same model can share a BatchSource."""

    model: torch.nn.Module
    rows: tuple[Row, ...] = PLAIN

    def __post_init__(self):
        if not self.rows:
            raise ValueError("rows must not be empty")
        if not any(r.weight != 0 for r in self.rows):
            raise ValueError("at least one row needs a non-zero weight")

    @property
    def plain(self) -> bool:
        return self.rows == PLAIN


def _cache_kw(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` during 5.x; accept both.
    A peft wrapper hides the real signature, so look at the model it wraps."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def forward(model, input_ids: torch.Tensor, cache, **kw):
    """One cached forward of ``model`` (a plain one, for callers that manage their own
    cache, like the next-word search); returns (logits, cache)."""
    out = model(input_ids=input_ids, use_cache=True, **{_cache_kw(model): cache}, **kw)
    new_cache = getattr(out, "cache", None)
    return out.logits, new_cache if new_cache is not None else out.past_key_values


class _Seq:
    """One sequence's place in the batch: its physical rows [start, start + n)."""

    def __init__(self, sid: int, rows: tuple[Row, ...], device):
        self.id = sid
        self.rows = rows
        self.start = 0
        self.length = 0  # prompt + generated tokens the sequence holds now
        self.weights = torch.tensor([r.weight for r in rows], device=device, dtype=torch.float32)
        self.row_logits: torch.Tensor | None = None  # [n, V] after the last forward

    @property
    def n(self) -> int:
        return len(self.rows)

    def mix(self, logits: torch.Tensor) -> torch.Tensor:
        self.row_logits = logits.float()
        if self.rows == PLAIN:
            return self.row_logits[0]
        return self.weights @ self.row_logits


class BatchSource:
    """KV-cached next-token logits for many sequences, each mixed from its rows."""

    def __init__(self, model, config=None):
        self.model = model
        self.config = config or model.config
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._cache_name = _cache_kw(model)
        self.cache: "DynamicCache | None" = None
        self.mask: torch.Tensor | None = None  # [rows, columns] long; 0 = not attended
        self.dense = True  # every column attended by every row: no mask needed
        # (the single-sequence fast path, which also keeps its numbers identical to a plain
        # forward: no mask, no padding)
        self.seqs: dict[int, _Seq] = {}
        self._next_id = 0
        self._pending_block: list[_Seq] = []

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def rows(self) -> list[Row]:
        """Every physical row, in batch order."""
        return [r for s in self._ordered() for r in s.rows]

    def _ordered(self) -> list[_Seq]:
        return sorted(self.seqs.values(), key=lambda s: s.start)

    def _adapter_kw(self) -> dict:
        # Only a peft model understands adapter_names; an all-base batch skips it.
        names = [r.adapter for r in self.rows]
        return {} if all(a == BASE for a in names) else {"adapter_names": names}

    def _forward(self, ids: torch.Tensor, mask, positions, cache, adapter_kw, **kw):
        return _run(self.model, self._cache_name, ids, mask, positions, cache, adapter_kw, **kw)

    # ------------------------------------------------------------------ joining, leaving

    def prefill(self, ids: list[int], rows: tuple[Row, ...] = PLAIN, copies: int = 1) -> "Prefill":
        """New sequences (each row's prefix, then ``ids``; ``copies`` of them) prefilled on
        a cache of their own, a chunk at a time (``Prefill.advance``); ``join`` takes them
        into the batch when done.  The batch keeps decoding meanwhile."""
        return Prefill(self.model, ids, rows, copies, self._cache_name, self.device, self.config)

    def add(self, ids: list[int], rows: tuple[Row, ...] = PLAIN, copies: int = 1) -> list[tuple[int, torch.Tensor]]:
        """Prefill new sequences (each row's prefix, then ``ids``) in one forward and merge
        them into the batch: ``copies`` sequences with this prompt, prefilled once (variants,
        search).  Returns (id, mixed logits after the prompt) for each."""
        block = self.prefill(ids, rows, copies)
        block.advance()
        return self.join(block)

    @torch.inference_mode()
    def join(self, block: "Prefill") -> list[tuple[int, torch.Tensor]]:
        """Merge a finished ``Prefill`` into the batch: (id, mixed logits after the prompt)
        for each of its sequences."""
        if not block.done:
            raise ValueError(f"this prefill has {block.left} prompt columns still to run")
        if block.model is not self.model:
            raise ValueError("a prefill joins a batch of the model it was run on")
        cache, mask = block.cache, block.mask
        if block.copies > 1:
            for layer in cache.layers:
                layer.keys = layer.keys.repeat(block.copies, 1, 1, 1)
                layer.values = layer.values.repeat(block.copies, 1, 1, 1)
            mask = mask.repeat(block.copies, 1)
        added = []
        for c in range(block.copies):
            seq = _Seq(self._next_id, block.rows, self.device)
            self._next_id += 1
            seq.length = block.length
            seq.start = c * len(block.rows)  # within the new block; _merge shifts it
            added.append((seq.id, seq.mix(block.logits)))
            self._pending_block.append(seq)
        self._merge(cache, mask, dense=not block.padded)
        return added

    def _merge(self, cache: "DynamicCache", mask: torch.Tensor, dense: bool) -> None:
        """Stack a prefilled block of new sequences (``_pending_block``) under the batch."""
        block, self._pending_block = self._pending_block, []
        if self.cache is None:
            self.cache, self.mask, self.dense = cache, mask, dense
            offset = 0
        else:
            old, new = self.mask.shape[1], mask.shape[1]
            width = max(old, new)
            offset = self.mask.shape[0]
            # Left-pad whichever is shorter with unattended columns, then stack the rows.
            for layer, add in zip(self.cache.layers, cache.layers):
                layer.keys = torch.cat([_left_pad(layer.keys, width), _left_pad(add.keys, width)], dim=0)
                layer.values = torch.cat([_left_pad(layer.values, width), _left_pad(add.values, width)], dim=0)
            self.mask = torch.cat([_left_pad(self.mask, width, dim=1), _left_pad(mask, width, dim=1)], dim=0)
            self.dense = self.dense and dense and old == new
        for seq in block:
            seq.start += offset
            self.seqs[seq.id] = seq

    @torch.inference_mode()
    def fork(self, sid: int, copies: int = 1) -> list[int]:
        """New sequences that continue from where ``sid`` is now (a search keeps the best
        line and tries the next one several ways): its rows are copied in the cache."""
        seq = self.seqs[sid]
        idx = torch.arange(seq.start, seq.start + seq.n, device=self.device).repeat(copies)
        for layer in self.cache.layers:
            layer.keys = torch.cat([layer.keys, layer.keys[idx]], dim=0)
            layer.values = torch.cat([layer.values, layer.values[idx]], dim=0)
        start = self.mask.shape[0]
        self.mask = torch.cat([self.mask, self.mask[idx]], dim=0)
        out = []
        for c in range(copies):
            twin = _Seq(self._next_id, seq.rows, self.device)
            self._next_id += 1
            twin.length, twin.row_logits = seq.length, seq.row_logits
            twin.start = start + c * seq.n
            self.seqs[twin.id] = twin
            out.append(twin.id)
        return out

    @torch.inference_mode()
    def remove(self, sid: int) -> None:
        """Drop a finished sequence; its rows leave the cache."""
        seq = self.seqs.pop(sid)
        if not self.seqs:
            self.cache, self.mask, self.dense = None, None, True
            return
        keep = [i for i in range(self.mask.shape[0]) if not (seq.start <= i < seq.start + seq.n)]
        idx = torch.tensor(keep, device=self.device)
        self.cache.batch_select_indices(idx)
        self.mask = self.mask[idx]
        for s in self.seqs.values():
            if s.start > seq.start:
                s.start -= seq.n
        self._trim()

    def _trim(self) -> None:
        """Drop leading columns no row attends (left by rows that left)."""
        attended = self.mask.any(dim=0).nonzero()
        first = int(attended[0]) if len(attended) else self.mask.shape[1]
        if first:
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:]
                layer.values = layer.values[:, :, first:]
            self.mask = self.mask[:, first:]
        self.dense = bool(self.mask.all())

    # ------------------------------------------------------------------ decoding

    @torch.inference_mode()
    def step(self, tokens: dict[int, torch.Tensor | int]) -> dict[int, torch.Tensor]:
        """Append one token to each sequence in ``tokens`` (a 0-d tensor still on the
        device saves a host copy); the others get a masked pad column.  Returns the mixed
        logits of the sequences that got a token."""
        order = self._ordered()
        feed = [s.id in tokens for s in order]
        column = torch.tensor([f for s, f in zip(order, feed) for _ in range(s.n)],
                              dtype=torch.long, device=self.device)
        pos = self.mask.sum(-1, keepdim=True)  # attended tokens so far = the new token's position
        self.mask = torch.cat([self.mask, column[:, None]], dim=1)
        if not all(feed):
            self.dense = False
        parts = []
        for s in order:
            t = tokens.get(s.id, 0)
            t = t.reshape(1).to(torch.long) if torch.is_tensor(t) else torch.tensor([t], device=self.device)
            parts.append(t.expand(s.n))
        x = torch.cat(parts).reshape(-1, 1)
        out = self._forward(x, None if self.dense else self.mask, pos, self.cache, self._adapter_kw(),
                            logits_to_keep=1)
        logits = out.logits[:, -1]
        result = {}
        for s in order:
            if s.id in tokens:
                s.length += 1
                result[s.id] = s.mix(logits[s.start:s.start + s.n])
        return result

    @torch.inference_mode()
    def crop(self, sid: int, length: int) -> None:
        """Forget everything of sequence ``sid`` after its first ``length`` tokens
        (dead-end back-off).  Alone in the batch, the cache is cut; otherwise the
        sequence's last attended columns are masked."""
        seq = self.seqs[sid]
        drop = seq.length - length
        if drop <= 0:
            return
        seq.length = length
        if len(self.seqs) == 1 and bool(self.mask[:, -drop:].all()):
            # Alone, and its last tokens are the cache's last columns: cut them.
            self.cache.crop(-drop)
            self.mask = self.mask[:, :-drop]
            return
        rows = slice(seq.start, seq.start + seq.n)
        attended = self.mask[seq.start].nonzero().flatten()
        self.mask[rows, attended[-drop:]] = 0
        self.dense = False

    # ------------------------------------------------------------------ for controllers

    def logits_of(self, sid: int, row: Row) -> torch.Tensor:
        """One row's logits after the last forward (e.g. an auxiliary expert row); rows
        are matched by adapter and prefix, whatever their weight."""
        seq = self.seqs[sid]
        return seq.row_logits[_row_index(seq, row)]

    @torch.inference_mode()
    def probe(self, sid: int, candidates, layer: int, row: Row = Row(BASE, (), 0.0)) -> torch.Tensor:
        """Hidden states [k, H] at ``layer`` for 'text so far + candidate', for each
        candidate of sequence ``sid``, in one forward the cache forgets afterwards.  Each
        candidate sees the cached context and itself, not the other candidates (a 4-D
        mask); every row of the batch runs them, only the asked row is read."""
        seq = self.seqs[sid]
        i = seq.start + _row_index(seq, row)
        n, k = self.mask.shape[0], len(candidates)
        ctx = self.mask.shape[1]
        allowed = torch.zeros(n, 1, k, ctx + k, dtype=torch.bool, device=self.device)
        allowed[:, 0, :, :ctx] = self.mask[:, None, :].bool()
        allowed[:, 0, torch.arange(k), ctx + torch.arange(k)] = True
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=self.device)
        mask = mask.masked_fill(~allowed, torch.finfo(self.dtype).min)
        pos = self.mask.sum(-1, keepdim=True).expand(n, k)
        x = torch.as_tensor(candidates, device=self.device).reshape(1, k).expand(n, k)
        out = self._forward(x, mask, pos, self.cache, self._adapter_kw(), logits_to_keep=1,
                            output_hidden_states=True)
        self.cache.crop(-k)
        return out.hidden_states[layer][i].float()


def _run(model, cache_name: str, ids: torch.Tensor, mask, positions, cache, adapter_kw, **kw):
    return model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                 **{cache_name: cache}, **adapter_kw, **kw)


class Prefill:
    """A joining prompt, prefilled a chunk of columns at a time on a cache of its own.

    Prefilling a long prompt in one forward (up to the whole window) makes every other
    writer in the batch wait for it; run a chunk between the batch's decoding steps
    instead, and merge the finished cache in (``BatchSource.join``).  Chunks see the
    columns before them through the cache, so the logits after the last chunk are the
    prompt's, as a single forward gives them (up to float rounding)."""

    def __init__(self, model, ids: list[int], rows: tuple[Row, ...], copies: int, cache_name: str, device, config):
        if not ids:
            raise ValueError("a sequence needs at least one prompt token")
        if copies < 1:
            raise ValueError(f"copies must be >= 1 (got {copies})")
        self.model, self.rows, self.copies, self.length = model, tuple(rows), copies, len(ids)
        self._cache_name = cache_name
        seqs = [list(r.prefix) + list(ids) for r in self.rows]
        width = max(len(s) for s in seqs)
        self.x = torch.zeros(len(seqs), width, dtype=torch.long, device=device)
        self.mask = torch.zeros(len(seqs), width, dtype=torch.long, device=device)
        for i, s in enumerate(seqs):  # left padding keeps every row's last token in one column
            self.x[i, width - len(s):] = torch.tensor(s, device=device)
            self.mask[i, width - len(s):] = 1
        self.padded = any(len(s) < width for s in seqs)
        self.pos = (self.mask.cumsum(-1) - 1).clamp(min=0)
        names = [r.adapter for r in self.rows]
        self._adapter_kw = {} if all(a == BASE for a in names) else {"adapter_names": names}
        from transformers import DynamicCache

        self.cache = DynamicCache(config=config)
        self.ran = 0  # columns prefilled so far
        self.logits: torch.Tensor | None = None  # [rows, V] after the last column

    @property
    def width(self) -> int:
        return self.x.shape[1]

    @property
    def left(self) -> int:
        return self.width - self.ran

    @property
    def done(self) -> bool:
        return self.ran == self.width

    @torch.inference_mode()
    def advance(self, columns: int | None = None) -> int:
        """Run the next ``columns`` columns (None: all that are left) in one forward;
        returns how many ran."""
        n = self.left if columns is None else max(0, min(columns, self.left))
        if not n:
            return 0
        a, b = self.ran, self.ran + n
        # The mask covers the cached columns and this chunk; none is needed without padding.
        out = _run(self.model, self._cache_name, self.x[:, a:b], self.mask[:, :b] if self.padded else None,
                   self.pos[:, a:b], self.cache, self._adapter_kw, logits_to_keep=1)
        self.ran = b
        if self.done:
            self.logits = out.logits[:, -1]
        return n


def _row_index(seq: _Seq, row: Row) -> int:
    for i, r in enumerate(seq.rows):
        if r.adapter == row.adapter and r.prefix == row.prefix:
            return i
    raise ValueError(f"this source has no row for adapter '{row.adapter}' with that prefix")


def _left_pad(t: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    """``t`` with zero (unattended) columns in front along ``dim`` up to ``width``."""
    short = width - t.shape[dim]
    if short <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = short
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class SequenceSource:
    """One sequence on its own source: ``prefill`` / ``step`` / ``crop`` and the
    controllers' ``logits_of`` / ``probe`` (scripts, tests and single-sequence tools)."""

    def __init__(self, model, rows: tuple[Row, ...] | list[Row] = PLAIN, config=None):
        self.feed = Feed(model, tuple(rows))
        self.batch = BatchSource(model, config)
        self.sid: int | None = None

    @property
    def rows(self) -> tuple[Row, ...]:
        return self.feed.rows

    @property
    def length(self) -> int:
        return self.batch.seqs[self.sid].length

    def prefill(self, ids: list[int]) -> torch.Tensor:
        if self.sid is not None:
            self.batch.remove(self.sid)
        ((self.sid, logits),) = self.batch.add(ids, self.feed.rows)
        return logits

    def step(self, token_id: int, token: torch.Tensor | None = None) -> torch.Tensor:
        return self.batch.step({self.sid: token if token is not None else token_id})[self.sid]

    def crop(self, length: int) -> None:
        self.batch.crop(self.sid, length)

    def logits_of(self, row: Row) -> torch.Tensor:
        return self.batch.logits_of(self.sid, row)

    def probe(self, candidates, layer: int, row: Row = Row(BASE, (), 0.0)) -> torch.Tensor:
        return self.batch.probe(self.sid, candidates, layer, row)
