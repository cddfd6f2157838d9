"""Perec's rules over the rows of a batch whose members come and go (vLLM's persistent
batch), without vLLM: the core of the vLLM logits processor (studio/bridges/vllm.py),
testable by hand.

Each row holds one request's own mask set (compiled once per spec, then ``fork()``-ed:
the tables are shared, the state is the row's), a reference to that request's list of
output tokens, and how many of them its mask set has already seen.  Rows are keyed by
their batch index: ``add`` puts a request at an index (replacing whatever was there),
``remove`` frees one, ``move`` carries a row to another index and ``swap`` exchanges two,
exactly as vLLM reports its batch changes.  ``apply`` first advances every row over its
new output tokens (read at apply time, when the batch's token lists are final), then
masks each row's logits: what the rules allow, EOS only where every rule may end the
text.  A row with nothing allowed (a dead end: vLLM never un-samples a token, so there
is no back-off) is given EOS alone, so that request ends cleanly; the text is then
trimmed to its last good point when the result is built (studio/bridges/outcome.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from constraints.cache import BoundedCache
from constraints.spec import parse_specs

from studio.decode.maskset import MaskSet, compile_masks
from studio.decode.vocab import VocabIndex, vocab_index
from studio.request import with_form


@dataclass
class RowSpec:
    """What one request asks of the rules (carried in SamplingParams.extra_args["perec"])."""

    constraints: str  # spec string, as `perec generate -c` takes it
    context: str = ""  # the text the rules see as already written (the prompt, in continue mode)
    min_tokens: int = 0  # EOS is masked before this many new tokens
    given: tuple[str, ...] = ()  # a form's lines already written (they count against it)

    @classmethod
    def from_args(cls, args: dict | str) -> "RowSpec | None":
        """From extra_args["perec"]: a dict, or the same as a JSON string (Ray Data's rows
        share one Arrow schema, so there a row without rules carries "", read as None)."""
        if isinstance(args, str):
            if not args:
                return None
            try:
                args = json.loads(args)
            except json.JSONDecodeError as e:
                raise ValueError(f"extra_args['perec'] is not JSON: {e}") from None
        if not isinstance(args, dict):
            raise ValueError(f"extra_args['perec'] must be a dict (got {type(args).__name__})")
        unknown = set(args) - {"constraints", "context", "min_tokens", "given"}
        if unknown:
            raise ValueError(f"unknown key(s) in extra_args['perec']: {', '.join(sorted(unknown))}")
        spec = args.get("constraints")
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("extra_args['perec']['constraints'] must be a non-empty spec string")
        given = args.get("given") or ()
        if isinstance(given, str) or not all(isinstance(g, str) for g in given):
            raise ValueError("extra_args['perec']['given'] must be a list of lines")
        return cls(spec, str(args.get("context", "")), int(args.get("min_tokens", 0)), tuple(given))

    def to_args(self) -> dict:
        return {"constraints": self.constraints, "context": self.context,
                "min_tokens": self.min_tokens, "given": list(self.given)}

    def constraint(self):
        """The rules, with a form's given lines put back (a spec string cannot hold them)."""
        return with_form(parse_specs([self.constraints]), None, list(self.given) or None)


@dataclass
class Row:
    masks: MaskSet
    out: list[int]  # the request's output tokens: vLLM's own list, appended to as it decodes
    max_tokens: int
    min_tokens: int
    seen: int = 0  # tokens of ``out`` already advanced over


class RuleRows:
    """Per-request mask sets over a changing batch, applied to a batch of logits rows."""

    def __init__(self, tokenizer, width: int, device: str | torch.device = "cpu"):
        # The vocabulary index is built at the logits' width: ids the tokenizer lacks
        # (a padded output layer) are never allowed.
        self.vocab: VocabIndex = vocab_index(tokenizer, width, device)
        self.width = width
        self.rows: dict[int, Row] = {}
        self._compiled: BoundedCache[MaskSet] = BoundedCache(256)
        # The token a dead end is ended with: the tokenizer's own EOS where it is one.
        eos = tokenizer.eos_token_id
        self.end_id = eos if eos in self.vocab.eos_ids else self.vocab.eos_ids[0]

    # ------------------------------------------------------------ membership

    def compile(self, spec: RowSpec) -> MaskSet:
        """A fresh mask set for ``spec`` (compiled once per rule set, then forked)."""
        key = (spec.constraints, spec.given)
        base = self._compiled.get_or_make(key, lambda: compile_masks(spec.constraint(), self.vocab))
        return base.fork()

    def add(self, index: int, spec: RowSpec | None, out: list[int], max_tokens: int) -> None:
        """Request at ``index`` (replacing any row there); ``spec`` None: no rules."""
        self.rows.pop(index, None)
        if spec is None:
            return
        masks = self.compile(spec)
        masks.reset(spec.context)
        self.rows[index] = Row(masks, out, max_tokens, spec.min_tokens)

    def remove(self, index: int) -> None:
        self.rows.pop(index, None)

    def move(self, src: int, dst: int) -> None:
        """The request at ``src`` now sits at ``dst`` (whatever was at ``dst`` is gone)."""
        row = self.rows.pop(src, None)
        self.rows.pop(dst, None)
        if row is not None:
            self.rows[dst] = row

    def swap(self, a: int, b: int) -> None:
        ra, rb = self.rows.pop(a, None), self.rows.pop(b, None)
        if ra is not None:
            self.rows[b] = ra
        if rb is not None:
            self.rows[a] = rb

    # ------------------------------------------------------------ per step

    def _catch_up(self, row: Row) -> None:
        out = row.out
        while row.seen < len(out):
            tok = out[row.seen]
            if tok < 0:  # a placeholder not yet filled in (async scheduling)
                break
            row.masks.advance(tok)
            row.seen += 1

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask the rows that carry rules (in place; returns ``logits``)."""
        if not self.rows:
            return logits
        index = sorted(i for i in self.rows if i < logits.shape[0])
        allowed, biases = [], []
        for i in index:
            row = self.rows[i]
            self._catch_up(row)
            steps_left = row.max_tokens - row.seen
            allowed.append(row.masks.step_mask(steps_left, may_end=row.seen >= row.min_tokens))
            biases.append(row.masks.bias(steps_left))
        ok = fit(torch.stack(allowed), logits.shape[-1]).to(logits.device)
        # A dead end (nothing allowed): EOS alone, so the request ends here.
        ok[:, self.end_id] |= ~ok.any(dim=1)
        bias = None
        if any(b is not None for b in biases):
            zero = torch.zeros(self.vocab.size, device=logits.device)
            bias = fit(torch.stack([zero if b is None else b for b in biases]), logits.shape[-1])
        if len(index) == logits.shape[0]:  # every row has rules (the common batch): in place
            if bias is not None:
                logits += bias
            return logits.masked_fill_(~ok, float("-inf"))
        at = torch.tensor(index, device=logits.device)
        rows = logits.index_select(0, at)
        if bias is not None:
            rows = rows + bias
        logits.index_copy_(0, at, rows.masked_fill(~ok, float("-inf")))
        return logits


def fit(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` ([rows, n]) cut or padded (with zeros / False) to ``width`` columns."""
    n = t.shape[-1]
    if n == width:
        return t
    if n > width:
        return t[:, :width].contiguous()
    pad = torch.zeros(t.shape[0], width - n, dtype=t.dtype, device=t.device)
    return torch.cat([t, pad], dim=-1)
