"""Where logits come from on the llama.cpp engine: ``BatchSource``'s interface over a GGUFModel.

The decode loop (studio/decode/loop.py) and the line search talk to a source through
``add`` / ``prefill`` + ``join`` / ``step`` / ``fork`` / ``crop`` / ``remove``; this is that
interface with the cache kept by llama.cpp (models/llamacpp.py) instead of torch.  Each
sequence is one llama.cpp sequence id; one ``step`` is one llama_decode call over every
sequence that got a token.  Only plain rows run here (no adapter, no prompt contrast, no
probe): the engine sends steered rows to the torch engine.
"""

from __future__ import annotations

import weakref

import torch

from models.llamacpp import Entry, GGUFModel
from models.sources import BASE, PLAIN, Row


def _plain(rows) -> None:
    if tuple(rows) != PLAIN:
        raise ValueError("the llama.cpp engine runs plain rows only; adapters and prompt contrast "
                         "run on the torch engine")


class _LSeq:
    def __init__(self, sid: int, seq: int, length: int, logits: torch.Tensor | None):
        self.id, self.seq, self.length = sid, seq, length
        self.row_logits = logits  # [1, V] after the last forward


class LlamaPrefill:
    """A joining prompt, run a chunk of tokens at a time into a sequence of its own (the
    other sequences keep decoding between chunks); ``LlamaSource.join`` takes it in."""

    def __init__(self, model: GGUFModel, ids: list[int], rows=PLAIN, copies: int = 1):
        if not ids:
            raise ValueError("a sequence needs at least one prompt token")
        if copies < 1:
            raise ValueError(f"copies must be >= 1 (got {copies})")
        _plain(rows)
        self.model, self.ids, self.copies, self.length = model, list(ids), copies, len(ids)
        self.seq: int | None = None
        self.ran = 0
        self.logits: torch.Tensor | None = None  # [1, V] after the last token
        self._release = None  # frees the sequence if this prefill never joins

    @property
    def left(self) -> int:
        return self.length - self.ran

    @property
    def done(self) -> bool:
        return self.ran == self.length

    def advance(self, columns: int | None = None) -> int:
        n = self.left if columns is None else max(0, min(columns, self.left))
        if not n:
            return 0
        if self.seq is None:
            self.seq = self.model.take_seq()
            self._release = weakref.finalize(self, self.model.release, self.seq)
        a, b = self.ran, self.ran + n
        entries = [Entry(self.seq, p, self.ids[p], p == self.length - 1) for p in range(a, b)]
        out = self.model.decode(entries)
        self.ran = b
        if self.done:
            self.logits = torch.from_numpy(out[-1:])
        return n

    def hand_over(self) -> int:
        """The prefilled sequence id, now owned by the source that joins it."""
        self._release.detach()
        seq, self.seq = self.seq, None
        return seq


class LlamaSource:
    """Next-token logits for many sequences on one GGUFModel (the interface of
    models.sources.BatchSource, for plain rows)."""

    def __init__(self, model: GGUFModel, config=None):
        self.model = model
        self.config = config or model.config
        self.seqs: dict[int, _LSeq] = {}
        self._next_id = 0
        # Sequence ids still held when the source is dropped (a decoder that failed) go back.
        self._finalizer = weakref.finalize(self, _release_all, model, self.seqs)

    def __len__(self) -> int:
        return len(self.seqs)

    def _new(self, seq: int, length: int, logits) -> _LSeq:
        s = _LSeq(self._next_id, seq, length, logits)
        self._next_id += 1
        self.seqs[s.id] = s
        return s

    # ------------------------------------------------------------------ joining, leaving

    def prefill(self, ids: list[int], rows=PLAIN, copies: int = 1) -> LlamaPrefill:
        return LlamaPrefill(self.model, ids, rows, copies)

    def add(self, ids: list[int], rows=PLAIN, copies: int = 1) -> list[tuple[int, torch.Tensor]]:
        block = self.prefill(ids, rows, copies)
        block.advance()
        return self.join(block)

    def join(self, block: LlamaPrefill) -> list[tuple[int, torch.Tensor]]:
        if not block.done:
            raise ValueError(f"this prefill has {block.left} prompt columns still to run")
        if block.model is not self.model:
            raise ValueError("a prefill joins a batch of the model it was run on")
        first = self._new(block.hand_over(), block.length, block.logits)
        added = [first]
        try:
            for _ in range(block.copies - 1):
                seq = self.model.take_seq()
                self.model.copy(first.seq, seq)
                added.append(self._new(seq, block.length, block.logits))
        except Exception:
            for s in added:
                self.remove(s.id)
            raise
        return [(s.id, s.row_logits[0]) for s in added]

    def fork(self, sid: int, copies: int = 1) -> list[int]:
        src = self.seqs[sid]
        out = []
        for _ in range(copies):
            seq = self.model.take_seq()
            self.model.copy(src.seq, seq)
            out.append(self._new(seq, src.length, src.row_logits).id)
        return out

    def remove(self, sid: int) -> None:
        s = self.seqs.pop(sid)
        self.model.release(s.seq)

    # ------------------------------------------------------------------ decoding

    def step(self, tokens: dict) -> dict[int, torch.Tensor]:
        """Append one token to each sequence in ``tokens``; returns their logits."""
        order = [self.seqs[sid] for sid in tokens]
        entries = [Entry(s.seq, s.length, int(tokens[s.id]), True) for s in order]
        out = torch.from_numpy(self.model.decode(entries))
        result = {}
        for i, s in enumerate(order):
            s.length += 1
            s.row_logits = out[i:i + 1]
            result[s.id] = out[i]
        return result

    def crop(self, sid: int, length: int) -> None:
        s = self.seqs[sid]
        if s.length - length <= 0:
            return
        self.model.crop(s.seq, length)
        s.length = length

    # ------------------------------------------------------------------ for controllers

    def logits_of(self, sid: int, row: Row) -> torch.Tensor:
        if row.adapter != BASE or row.prefix:
            raise ValueError("the llama.cpp engine has only the base row")
        return self.seqs[sid].row_logits[0]

    def probe(self, sid: int, candidates, layer: int, row: Row = Row(BASE, (), 0.0)) -> torch.Tensor:
        raise ValueError("hidden states need the torch engine (a discriminator runs there)")


def _release_all(model: GGUFModel, seqs: dict) -> None:
    for s in list(seqs.values()):
        model.release(s.seq)
    seqs.clear()


__all__ = ["LlamaPrefill", "LlamaSource"]
