"""VocabIndex: what each token writes, computed once per tokenizer.

Tokens are byte sequences (byte-level BPE, or SentencePiece with byte fallback).  A
token's ``text`` is its bytes decoded with incomplete UTF-8 shown as U+FFFD, so
character rules can judge it; special tokens write nothing and are never offered as
text.  Boolean masks over the vocabulary are built here once and kept on the model's
device, so the decode loop only combines tensors.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Hashable

import torch

from constraints.cache import BoundedCache

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table (byte-level BPE's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return "ByteLevel" in backend.to_str()[:100000] and "Metaspace" not in backend.to_str()[:100000]
    return False


def token_bytes(tokenizer, vocab_size: int) -> tuple[list[bytes], list[bool]]:
    """(bytes written by each token id, whether it is special) for ids < vocab_size."""
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    special_ids = set(tokenizer.all_special_ids)
    for tok_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            special_ids.add(tok_id)
    byte_level = _is_byte_level(tokenizer)
    u2b = _unicode_to_byte()
    raw: list[bytes] = []
    special: list[bool] = []
    for i in range(vocab_size):
        piece = pieces[i] if i < n else None
        if piece is None or i in special_ids:
            raw.append(b"")
            special.append(True)
            continue
        if byte_level and all(c in u2b for c in piece):
            raw.append(bytes(u2b[c] for c in piece))
        elif (m := _BYTE_PIECE.fullmatch(piece)) is not None:
            raw.append(bytes([int(m.group(1), 16)]))
        else:
            raw.append(piece.replace("\u2581", " ").encode("utf-8"))
        special.append(False)
    return raw, special


class VocabIndex:
    """Per-token text and features for one tokenizer, plus cached device masks."""

    def __init__(self, tokenizer, vocab_size: int | None = None, device: str | torch.device = "cpu"):
        self.tokenizer = tokenizer
        self.size = int(vocab_size or len(tokenizer))
        self.device = torch.device(device)
        self.raw, self.special = token_bytes(tokenizer, self.size)
        self.texts = [b.decode("utf-8", errors="replace") for b in self.raw]
        self.eos_ids = _end_ids(tokenizer, self.size)
        self._masks: dict[object, torch.Tensor] = {}
        # Tables derived from this vocabulary (token words, form tokens, word sets, form
        # indexes): built on first use and owned here, so they live and die with it.
        self._derived: BoundedCache = BoundedCache(64)

    def derived(self, key: Hashable, build: Callable[["VocabIndex"], object]):
        """``build(self)``, computed once per ``key`` and kept with this vocabulary."""
        return self._derived.get_or_make(key, lambda: build(self))

    # ------------------------------------------------------------------ masks

    def mask(self, key, predicate: Callable[[int, str], bool], allow_eos: bool = True) -> torch.Tensor:
        """Boolean mask of tokens where ``predicate(id, text)`` holds, cached under ``key``.
        Special tokens are never allowed except EOS (when ``allow_eos``)."""
        full_key = (key, allow_eos)
        m = self._masks.get(full_key)
        if m is None:
            vals = [
                (not sp) and predicate(i, t) for i, (t, sp) in enumerate(zip(self.texts, self.special))
            ]
            for e in self.eos_ids:
                vals[e] = allow_eos
            m = torch.tensor(vals, dtype=torch.bool, device=self.device)
            self._masks[full_key] = m
        return m

    def text_mask(self) -> torch.Tensor:
        """Every token that writes text, plus EOS: the baseline for generation."""
        return self.mask("__text__", lambda i, t: len(t) > 0)

    def ids_mask(self, ids) -> torch.Tensor:
        m = torch.zeros(self.size, dtype=torch.bool, device=self.device)
        if ids:
            m[torch.tensor(sorted(ids), device=self.device)] = True
        return m

    def decode(self, ids) -> str:
        return b"".join(self.raw[i] for i in ids).decode("utf-8", errors="replace")


# Models end a text with different tokens (a base model's <|endoftext|>, a chat model's
# <|im_end|>): any of them present in the vocabulary ends generation.
_END_TOKENS = ("<|endoftext|>", "<|im_end|>", "</s>", "<|eot_id|>", "<|end_of_text|>", "<eos>")


def _end_ids(tokenizer, size: int) -> tuple[int, ...]:
    eos = tokenizer.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _END_TOKENS if t in vocab)
    return tuple(sorted(int(i) for i in ids if i is not None and int(i) < size))


_INDEXES: BoundedCache[VocabIndex] = BoundedCache(8)


def vocab_index(tokenizer, vocab_size: int | None = None, device="cpu") -> VocabIndex:
    """One VocabIndex per (tokenizer, size, device): computed once, shared by the engine and
    the bridges (a LogitsProcessor only has the tokenizer)."""
    key = (id(tokenizer), vocab_size, str(device))
    vi = _INDEXES.get(key)
    if vi is None or vi.tokenizer is not tokenizer:  # an id may be reused once a tokenizer is gone
        vi = VocabIndex(tokenizer, vocab_size, device)
        _INDEXES[key] = vi
    return vi
