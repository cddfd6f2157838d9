"""llama.cpp as the forward: a GGUF file run by llama-cpp-python, many sequences in one cache.

On a CPU, llama.cpp runs the GGUF file we ship about six times faster than torch runs its
float32 conversion (bench/results/llamacpp-cpu.md), and it reads the file as it is, so a
cold start converts nothing.  ``GGUFModel`` holds one llama.cpp model and context; its
KV cache is *unified*: every sequence (a writer, a variant, a search candidate) lives in the
one cache under its own sequence id, and a decode call takes tokens of many sequences at
once (continuous batching).  What the torch engine does with an attention mask and cache
copies is here a call on the cache itself:

    fork      -> llama_memory_seq_cp: the copy shares the cells it was copied from
    back off  -> llama_memory_seq_rm from the row's new length on
    leave     -> llama_memory_seq_rm of the whole sequence

Only plain rows run here.  Adapters, prompt contrast and controllers that read hidden states
need the torch engine (studio/decode/engine.py hands those requests to it).

The binding is optional: ``unavailable()`` says why it cannot be used (not installed, or
its build failed), and the torch engine runs instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# Cells of the shared cache (tokens over all live sequences) and sequences at once.  A
# cell holds one token's keys and values in every layer: 23 KB for SmolLM2-135M in f16, so
# the default cache is about 370 MB.  PEREC_LLAMA_CTX / PEREC_LLAMA_SEQS change them.
DEFAULT_CELLS = 16384
DEFAULT_SEQS = 128
BATCH = 512  # tokens per llama_decode call (a longer prompt runs in several)


class LlamaCppError(RuntimeError):
    """llama.cpp refused a step: the message says which and what setting to change."""


def unavailable() -> str | None:
    """Why the llama.cpp engine cannot run here (None: it can)."""
    try:
        import llama_cpp  # noqa: F401
    except Exception as e:  # an ImportError, or an OSError from a broken build of the library
        return f"llama-cpp-python is not usable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


_backend_lock = threading.Lock()
_backend_ready = False
_quiet = None  # the log callback must outlive every call into the library


def _init_backend():
    global _backend_ready, _quiet
    import llama_cpp

    with _backend_lock:
        if _backend_ready:
            return
        llama_cpp.llama_backend_init()

        # llama.cpp logs every load and context to stderr; a studio's log keeps only errors.
        @llama_cpp.llama_log_callback
        def quiet(level, text, user_data):  # noqa: ARG001
            if level == 4:  # GGML_LOG_LEVEL_ERROR (0 none, 1 debug, 2 info, 3 warn, 5 cont)
                os.write(2, text)

        _quiet = quiet
        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
        _backend_ready = True


def _env_int(name: str, default: int, low: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LlamaCppError(f"{name} must be an integer (got {raw!r})") from None
    if value < low:
        raise LlamaCppError(f"{name} must be >= {low} (got {value})")
    return value


@dataclass
class Entry:
    """One token for one sequence in a decode call."""

    seq: int
    pos: int
    token: int
    out: bool  # whether this token's logits are wanted


class GGUFModel:
    """One GGUF model in llama.cpp: its context, its shared cache and the sequence ids in it.

    Every call into the context holds ``lock``: a llama.cpp context is not thread-safe, and
    several decoders (the scheduler's batch, a writer's own variants, a search) may share
    one model."""

    def __init__(self, path: str | Path, cells: int | None = None, seqs: int | None = None,
                 threads: int | None = None):
        import llama_cpp
        from llama_cpp import _internals

        _init_backend()
        path = Path(path)
        if not path.is_file():
            raise LlamaCppError(f"no GGUF file at {path}")
        self.path = path
        self.cells = cells or _env_int("PEREC_LLAMA_CTX", DEFAULT_CELLS, 256)
        self.max_seqs = seqs or _env_int("PEREC_LLAMA_SEQS", DEFAULT_SEQS, 1)
        threads = threads or _env_int("PEREC_THREADS", os.cpu_count() or 1, 1)
        mp = llama_cpp.llama_model_default_params()
        mp.n_gpu_layers = 0
        try:
            self._model = _internals.LlamaModel(path_model=str(path), params=mp, verbose=False)
        except ValueError as e:
            raise LlamaCppError(f"llama.cpp could not read {path.name}: {e}") from None
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = self.cells
        cp.n_batch = BATCH
        cp.n_ubatch = BATCH
        cp.n_seq_max = self.max_seqs
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.kv_unified = True  # one pool of cells, so a fork shares its prefix
        try:
            self._ctx = _internals.LlamaContext(model=self._model, params=cp, verbose=False)
        except ValueError as e:
            raise LlamaCppError(f"llama.cpp could not make a context of {self.cells} cells: {e}") from None
        self._lib = llama_cpp
        self._mem = self._ctx.memory
        self.vocab_size = int(llama_cpp.llama_vocab_n_tokens(self._model.vocab))
        n_train = int(llama_cpp.llama_model_n_ctx_train(self._model.model))
        self.config = SimpleNamespace(max_position_embeddings=min(n_train, self.cells))
        self.lock = threading.RLock()
        self._free = list(range(self.max_seqs - 1, -1, -1))  # pop() hands out 0 first
        # llama.cpp lowers the batch to the context when the context is smaller, and aborts
        # the process on a longer call: chunk by what it kept.
        self.batch_size = int(llama_cpp.llama_n_batch(self._ctx.ctx))
        self._batch = llama_cpp.llama_batch_init(self.batch_size, 0, 1)

    def __del__(self):
        batch = getattr(self, "_batch", None)
        if batch is not None:
            self._batch = None
            try:
                self._lib.llama_batch_free(batch)
            except TypeError:  # the library is already unloaded (interpreter shutdown)
                pass

    # -------------------------------------------------------------- sequences

    def take_seq(self) -> int:
        with self.lock:
            if not self._free:
                raise LlamaCppError(f"all {self.max_seqs} llama.cpp sequences are in use "
                                    "(PEREC_LLAMA_SEQS raises the limit)")
            return self._free.pop()

    def release(self, seq: int) -> None:
        """The sequence's cells are forgotten and its id is free again."""
        with self.lock:
            self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)
            self._free.append(seq)

    def copy(self, src: int, dst: int) -> None:
        with self.lock:
            self._lib.llama_memory_seq_cp(self._mem, src, dst, -1, -1)

    def crop(self, seq: int, length: int) -> None:
        """Forget sequence ``seq``'s tokens from position ``length`` on."""
        with self.lock:
            if not self._lib.llama_memory_seq_rm(self._mem, seq, length, -1):
                raise LlamaCppError("llama.cpp could not cut this sequence back")

    @property
    def free_seqs(self) -> int:
        return len(self._free)

    # -------------------------------------------------------------- the forward

    def decode(self, entries: list[Entry]) -> np.ndarray:
        """Run ``entries`` (tokens of any sequences) through the model; returns the logits
        of the entries marked ``out``, in their order, as a float32 [n_out, V] array."""
        outs = []
        with self.lock:
            for a in range(0, len(entries), self.batch_size):
                chunk = entries[a:a + self.batch_size]
                b = self._batch
                b.n_tokens = len(chunk)
                n_out = 0
                for i, e in enumerate(chunk):
                    b.token[i] = e.token
                    b.pos[i] = e.pos
                    b.n_seq_id[i] = 1
                    b.seq_id[i][0] = e.seq
                    b.logits[i] = e.out
                    n_out += e.out
                rc = self._lib.llama_decode(self._ctx.ctx, b)
                if rc == 1:
                    raise LlamaCppError(f"the llama.cpp cache is full ({self.cells} tokens over all writers; "
                                        "PEREC_LLAMA_CTX makes it larger)")
                if rc != 0:
                    raise LlamaCppError(f"llama.cpp's decode failed (code {rc})")
                if n_out:
                    ptr = self._lib.llama_get_logits(self._ctx.ctx)
                    outs.append(np.ctypeslib.as_array(ptr, shape=(n_out, self.vocab_size)).copy())
        if not outs:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        return outs[0] if len(outs) == 1 else np.concatenate(outs)


__all__ = ["DEFAULT_CELLS", "DEFAULT_SEQS", "Entry", "GGUFModel", "LlamaCppError", "unavailable"]
