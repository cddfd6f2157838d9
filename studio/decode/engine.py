"""The decode loop: KV-cached forward, the per-step pipeline, streaming, stop.

Each step (docs/design.md, "The per-step pipeline"):
  1-2. logits from the source (KV-cached forward; adapter mixing lives in the source)
  3.   controllers add soft adjustments; whole-text maskers add their steering bias
  4.   hard constraints mask disallowed tokens to -inf (last, so nothing undoes them)
  5.   dead end (nothing allowed): back off within the word in progress, ban that choice
  6.   sample (greedy / temperature / top-k / top-p, repetition penalty)
  7.   advance every masker's state and stream the new text
Steps 1-6 stay on the model's device; per step the host learns only the token id.
"""

from __future__ import annotations

import codecs
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch

from constraints.base import Constraint, ImpossibleConstraint
from constraints.units import is_boundary

from studio.decode.maskset import MaskSet, compile_masks
from studio.decode.sampling import Sampler, Settings, apply_repetition_penalty
from studio.decode.source import ModelSource
from studio.decode.vocab import VocabIndex, vocab_index


class PromptError(ValueError):
    """A prompt the engine cannot start from (e.g. empty in continue mode)."""


MODES = ("continue", "instruct")


@dataclass
class Result:
    text: str  # the generated part only
    prompt: str
    tokens: int  # new tokens generated
    seconds: float  # decode wall time, prompt included
    model: str
    constraints: str  # spec string
    seed: int | None
    mode: str = "continue"
    stop_reason: str = "max_tokens"  # max_tokens | eos | stop_string | cancelled | dead_end
    message: str = ""  # why it stopped early, in words
    backoffs: int = 0
    first_token_seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    token_ids: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_second"] = round(self.tokens_per_second, 3)
        return d


class Generation:
    """One streamed generation: iterate for text pieces; ``result`` when done.
    ``cancel()`` (from any thread) stops the decode loop within one step."""

    def __init__(self, engine: "Engine", prompt: str, constraint: Constraint | None,
                 settings: Settings, mode: str, controllers=(), source=None,
                 cancel: threading.Event | None = None):
        self.engine = engine
        self.prompt = prompt
        self.constraint = constraint
        self.settings = settings
        self.mode = mode
        self.controllers = list(controllers)
        self.source = source or ModelSource(engine.model)
        self.cancel_event = cancel or threading.Event()
        self.result: Result | None = None
        # Built now, so bad input is refused before any decoding.
        self.input_ids, self.context, self.drop_space = engine.encode_prompt(prompt, mode)
        self.masks: MaskSet = compile_masks(constraint, engine.vocab)
        self.text = ""

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self) -> Iterator[str]:
        return self._run()

    def run(self) -> Result:
        for _ in self._run():
            pass
        return self.result

    # ----------------------------------------------------------------- the loop

    def _run(self) -> Iterator[str]:
        eng, s, vocab = self.engine, self.settings, self.engine.vocab
        dev = eng.device
        t0 = time.perf_counter()
        sampler = Sampler(s, dev)
        masks = self.masks
        masks.reset(self.context)
        seen = torch.zeros(vocab.size, dtype=torch.bool, device=dev)
        seen[torch.tensor(self.input_ids, device=dev)] = True

        logits = self.source.prefill(self.input_ids)
        # Tokens may hold part of a UTF-8 character: decode bytes incrementally.
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        history: list[tuple] = []  # (token, logits before, masker snapshots, decoder state)
        banned: dict[int, set[int]] = {}  # step -> choices that led to dead ends
        self.pieces = pieces = []  # the text written so far, in pieces (controllers read it)
        ends: list[int] = []  # where each piece ends in the joined text
        emitted = 0  # characters of the joined pieces already streamed
        safe_len, safe_tokens = 0, 0  # the last point where every rule could end the text
        stop_reason, message, backoffs = "max_tokens", "", 0
        first_token = 0.0

        while len(history) < s.max_new_tokens:
            if self.cancel_event.is_set():
                stop_reason, message = "cancelled", "stopped by the writer"
                break
            step = len(history)
            steps_left = s.max_new_tokens - step

            # 3. soft: controllers, then whole-text steering
            scores = logits
            for c in self.controllers:
                scores = c.adjust(scores, self)
            scores = apply_repetition_penalty(scores, seen, s.repetition_penalty)
            b = masks.bias(steps_left)
            if b is not None:
                scores = scores + b
            # 4. hard
            allowed = masks.step_mask(steps_left, may_end=step >= s.min_new_tokens)
            if step in banned:
                allowed = allowed & ~vocab.ids_mask(banned[step])
            any_ok = allowed.any()
            masked = scores.masked_fill(~allowed, float("-inf"))
            # 6. sample; a dead end samples from zeros and is discarded below.
            choice = sampler(torch.where(any_ok, masked, torch.zeros_like(masked)))
            token_id, ok = torch.stack([choice.reshape(()), any_ok.long()]).tolist()  # one sync

            if not ok:
                # 5. back off: drop the last token of the word in progress, ban it, resample.
                # Never back off past text already streamed (streaming stops at piece ends).
                if backoffs >= s.max_backoffs or not history or ends[-1] - len(pieces[-1]) < emitted:
                    stop_reason, message = "dead_end", self._dead_end_message(steps_left)
                    break
                backoffs += 1
                prev, logits, snaps, dec_state = history.pop()
                utf8.setstate(dec_state)
                banned.pop(step, None)
                banned.setdefault(step - 1, set()).add(prev)
                masks.restore(snaps)
                pieces.pop()
                ends.pop()
                self.source.crop(len(self.input_ids) + len(history))
                continue

            if not first_token:
                first_token = time.perf_counter() - t0
            if token_id in vocab.eos_ids:
                stop_reason = "eos"
                break
            # 7. advance
            history.append((token_id, logits, masks.snapshot(), utf8.getstate()))
            masks.advance(token_id)
            seen.index_fill_(0, choice.reshape(1), True)  # on the device: no host sync
            piece = utf8.decode(vocab.raw[token_id])
            if not pieces and self.drop_space and piece.startswith(" "):
                piece = piece[1:]
            pieces.append(piece)
            ends.append((ends[-1] if ends else 0) + len(piece))
            text = "".join(pieces)
            hit = self._stop_hit(text, len(text) - len(piece))
            if hit is not None:
                pieces = [text[:hit]]
                stop_reason = "stop_string"
                break
            if masks.safe():
                safe_len, safe_tokens = len(text), len(history)
            cut = self._stream_cut(text, ends, safe_len, emitted)
            if cut > emitted:
                yield text[emitted:cut]
                emitted = cut
            if len(history) < s.max_new_tokens:
                logits = self.source.step(token_id, choice)

        if stop_reason != "stop_string":
            pieces.append(utf8.decode(b"", final=True))
        text = "".join(pieces)
        if not masks.done_ok():
            # A dead end is trimmed too: the result always obeys every rule.
            text, history = text[:safe_len], history[:safe_tokens]
            message = message or "trimmed to the last point where every constraint holds"
        if len(text) > emitted:
            yield text[emitted:]
        self.text = text
        self.result = Result(
            text=text,
            prompt=self.prompt,
            tokens=len(history),
            seconds=time.perf_counter() - t0,
            model=eng.name,
            constraints=self.constraint.spec() if self.constraint is not None else "",
            seed=s.seed,
            mode=self.mode,
            stop_reason=stop_reason,
            message=message,
            backoffs=backoffs,
            first_token_seconds=first_token,
            settings=s.to_dict(),
            token_ids=[h[0] for h in history],
        )

    @staticmethod
    def _stream_cut(text: str, ends: list[int], safe_len: int, emitted: int) -> int:
        """How far the text may be streamed: to the end of a piece that finishes a
        word (the word in progress may still back off, and back-off removes whole
        pieces) and never past the last safe point (the text may be trimmed to it)."""
        for end in reversed(ends):
            if end <= emitted:
                return emitted
            if end <= safe_len and (is_boundary(text[end - 1]) or (end < len(text) and is_boundary(text[end]))):
                return end
        return emitted

    def _stop_hit(self, text: str, new_from: int) -> int | None:
        if not self.settings.stop or not self.masks.done_ok():
            return None
        hits = []
        for stop in self.settings.stop:
            i = text.find(stop, max(0, new_from - len(stop) + 1))
            if i != -1:
                hits.append(i)
        return min(hits) if hits else None

    def _dead_end_message(self, steps_left: int) -> str:
        return "no allowed continuation under " + " & ".join(f"'{n}'" for n in self.masks.blocking(steps_left))


class Engine:
    """A loaded model plus its vocabulary index: generate, stream, candidates, score."""

    def __init__(self, lm):
        self.lm = lm
        self.model = lm.model
        self.tokenizer = lm.tokenizer
        self.name = lm.name
        self.device = lm.device
        self.vocab: VocabIndex = vocab_index(lm.tokenizer, lm.vocab_size, lm.device)

    # -------------------------------------------------------------- prompts

    def encode_prompt(self, prompt: str, mode: str = "continue") -> tuple[list[int], str, bool]:
        """(input ids, the text constraints see as already written, drop a leading space)."""
        if mode not in MODES:
            raise PromptError(f"unknown mode '{mode}' (use continue or instruct)")
        if not isinstance(prompt, str):
            raise PromptError("prompt must be a string")
        if mode == "instruct":
            if not getattr(self.tokenizer, "chat_template", None):
                raise PromptError(f"model '{self.name}' has no chat template; use continue mode")
            if not prompt.strip():
                raise PromptError("empty prompt: instruct mode needs an instruction")
            chat = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            return self.tokenizer.encode(chat, add_special_tokens=False), "", False
        if not prompt.strip():
            raise PromptError("empty prompt: continue mode needs some text to continue")
        # A trailing space would be its own token, which models rarely follow well: drop
        # it from the input and drop the space the model then writes before its first word.
        stripped = prompt.rstrip(" ")
        ids = self.tokenizer.encode(stripped, add_special_tokens=True)
        return ids, prompt, stripped != prompt

    # -------------------------------------------------------------- generation

    def stream(self, prompt: str, constraint: Constraint | None = None,
               settings: Settings | None = None, mode: str = "continue", **kw) -> Generation:
        return Generation(self, prompt, constraint, settings or Settings(), mode, **kw)

    def generate(self, prompt: str, constraint: Constraint | None = None,
                 settings: Settings | None = None, mode: str = "continue", **kw) -> Result:
        return self.stream(prompt, constraint, settings, mode, **kw).run()


__all__ = ["Engine", "Generation", "Result", "PromptError", "ImpossibleConstraint"]
