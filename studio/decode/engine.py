"""The engine: a loaded model with its vocabulary index, and the ways to decode with it.

``stream`` / ``generate`` decode one row in the caller's thread; ``variants`` decodes K rows
of one prompt in one batch (the writer picks one); ``scheduler()`` hands rows to a thread
that batches every writer's steps (studio/decode/scheduler.py).
"""

from __future__ import annotations

import os
import threading

from constraints.base import Constraint, ImpossibleConstraint

from studio.decode.generation import MODES, Generation, Result
from studio.decode.loop import Decoder
from studio.decode.settings import Settings
from studio.decode.vocab import VocabIndex, vocab_index


class PromptError(ValueError):
    """A prompt the engine cannot start from (e.g. empty in continue mode)."""


# Characters of the draft tokenized to find the window's tokens: generous (a token rarely
# spans more than a dozen characters), so the window is always full.
_CHARS_PER_TOKEN = 16
# Tokens of a long draft the model reads (bench/results/long-draft.md: the prefill of a
# window this size starts generating within seconds on a 2-core CPU; PEREC_WINDOW changes it).
DEFAULT_WINDOW = 1024


def encode_prompt(tokenizer, prompt: str, mode: str = "continue", room: int | None = None,
                  name: str = "this model") -> tuple[list[int], str, bool]:
    """(input ids, the text constraints see as already written, drop a leading space) for
    ``prompt`` under ``tokenizer``: a chat turn in instruct mode, the text itself in continue
    mode, of which the model reads the last ``room`` tokens (None: all of it).  Also used by
    the vLLM bridge, which has a tokenizer but no Engine."""
    if mode not in MODES:
        raise PromptError(f"unknown mode '{mode}' (use continue or instruct)")
    if not isinstance(prompt, str):
        raise PromptError("prompt must be a string")
    if mode == "instruct":
        if not getattr(tokenizer, "chat_template", None):
            raise PromptError(f"model '{name}' has no chat template; use continue mode")
        if not prompt.strip():
            raise PromptError("empty prompt: instruct mode needs an instruction")
        chat = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
        ids = tokenizer.encode(chat, add_special_tokens=False)
        if room is not None and len(ids) > room:
            raise PromptError(f"the instruction is too long: {len(ids)} tokens; the model reads at most "
                              f"{room} here (PEREC_WINDOW, the context and the new tokens)")
        return ids, "", False
    if not prompt.strip():
        raise PromptError("empty prompt: continue mode needs some text to continue")
    # A trailing space would be its own token, which models rarely follow well: drop it
    # from the input and drop the space the model then writes before its first word.
    stripped = prompt.rstrip(" ")
    cut = 0 if room is None else max(0, len(stripped) - room * _CHARS_PER_TOKEN)
    ids = tokenizer.encode(stripped[cut:], add_special_tokens=not cut)
    if cut:
        ids = ids[1:]  # the first token may be cut in half
    if room is not None and len(ids) > room:
        ids = ids[-room:]
    return ids, prompt, stripped != prompt


class Engine:
    """A loaded model plus its vocabulary index: generate, stream, variants.

    Plain rows decode on ``decode_model``: on a CPU with a GGUF file, llama.cpp
    (models/llamacpp.py); otherwise the torch model.  ``model`` is always the torch model:
    adapters, controllers, prompt contrast, scoring and the next-word search need its
    hidden states or its peft hooks.  On the llama.cpp engine it is loaded on first use."""

    def __init__(self, lm):
        self.lm = lm
        self.backend = lm.backend
        self.decode_model = lm.model
        self._torch = lm if lm.backend == "torch" else None
        self._torch_lock = threading.Lock()
        self.tokenizer = lm.tokenizer
        self.name = lm.name
        self.device = lm.device
        self.vocab: VocabIndex = vocab_index(lm.tokenizer, lm.vocab_size, lm.device)
        self.context_length = int(getattr(lm.model.config, "max_position_embeddings", 0) or 2048)
        self.window = min(self.context_length, int(os.environ.get("PEREC_WINDOW", DEFAULT_WINDOW)))
        self._scheduler = None
        self._scheduler_lock = threading.Lock()

    @property
    def model(self):
        """The torch model (see the class note); loaded now if this engine has none yet."""
        if self._torch is None:
            from models.loading import load_model

            with self._torch_lock:
                if self._torch is None:
                    self._torch = load_model(self.lm.origin, device=str(self.device), backend="torch")
        return self._torch.model

    def source_for(self, model):
        """A fresh source of next-token logits on ``model``: llama.cpp's for a GGUFModel,
        else a torch batch (the decode loop keeps one per model; the next-word search its
        own)."""
        from models.llamacpp import GGUFModel

        if isinstance(model, GGUFModel):
            from models.llama_source import LlamaSource

            return LlamaSource(model)
        from models.sources import BatchSource

        return BatchSource(model, config=self.model.config)

    def source(self):
        """A fresh source for plain rows on this engine (``decode_model``)."""
        return self.source_for(self.decode_model)

    @property
    def note(self) -> str:
        """One line when llama.cpp was wanted here and could not run (else '')."""
        return self.lm.note

    # -------------------------------------------------------------- prompts

    def encode_prompt(self, prompt: str, mode: str = "continue",
                      budget: int = 0) -> tuple[list[int], str, bool]:
        """(input ids, the text constraints see as already written, drop a leading space).

        The model sees a window of a long draft: its last tokens that fit the context
        together with ``budget`` new tokens.  The constraints still see all of it."""
        room = max(16, min(self.window, self.context_length - max(budget, 0)))
        return encode_prompt(self.tokenizer, prompt, mode, room, self.name)

    # -------------------------------------------------------------- generation

    def stream(self, prompt: str, constraint: Constraint | None = None,
               settings: Settings | None = None, mode: str = "continue", **kw) -> Generation:
        return Generation(self, prompt, constraint, settings or Settings(), mode, **kw)

    def generate(self, prompt: str, constraint: Constraint | None = None,
                 settings: Settings | None = None, mode: str = "continue", **kw) -> Result:
        return self.stream(prompt, constraint, settings, mode, **kw).run()

    def variants(self, prompt: str, constraint: Constraint | None = None,
                 settings: Settings | None = None, mode: str = "continue", k: int = 3,
                 **kw) -> list[Result]:
        """``k`` continuations of one prompt decoded as one batch: each row has its own
        mask set, sampler (seeds ``seed``, ``seed + 1``, ...), back-off and stop."""
        gens = self.variant_rows(prompt, constraint, settings, mode, k, **kw)
        decoder = Decoder(self)
        decoder.add_copies(gens)
        decoder.run()
        return [g.result for g in gens]

    def variant_rows(self, prompt: str, constraint: Constraint | None, settings: Settings | None,
                     mode: str, k: int, **kw) -> list[Generation]:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"variants must be a positive integer (got {k!r})")
        s = settings or Settings()
        first = Generation(self, prompt, constraint, s, mode, **kw)
        gens = [first]
        for i in range(1, k):
            si = Settings.from_dict(dict(s.to_dict(), seed=None if s.seed is None else s.seed + i))
            gens.append(Generation(self, prompt, constraint, si, mode, masks=first.masks.fork(), **kw))
        return gens

    def scheduler(self):
        """The engine's continuous-batching scheduler (started on first use)."""
        from studio.decode.scheduler import Scheduler

        with self._scheduler_lock:
            if self._scheduler is None:
                self._scheduler = Scheduler(self)
            return self._scheduler


__all__ = ["Engine", "PromptError"]
