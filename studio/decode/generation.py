"""One sequence being decoded: the per-step pipeline for one row of a batch.

Each step (docs/design.md, "The per-step pipeline"), for this row:
  1-2. logits from the source (studio/decode/loop.py runs one forward for every row)
  3.   controllers add soft adjustments; whole-text maskers add their steering bias
  4.   hard constraints mask disallowed tokens to -inf (last, so nothing undoes them)
  5.   dead end (nothing allowed): back off within the word in progress, ban that choice
  6.   sample (greedy / temperature / top-k / top-p, repetition penalty), with the row's
       own random generator, so a row's text does not depend on its neighbours
  7.   advance the mask set and stream the new text
Steps 1-6 stay on the model's device; per step the host learns only the token ids (one
sync for the whole batch).

``propose`` does steps 3-6 and returns the choice still on the device; ``take`` does 5 and
7 with the token id; the loop calls them for every row around one shared forward.  A
Generation is also what the front ends hold: iterate it for text pieces, ``result`` when
done, ``cancel()`` from any thread to stop it before its next step.
"""

from __future__ import annotations

import codecs
import copy
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Iterator

import torch

from constraints.base import Constraint
from constraints.units import is_boundary

from models.sources import Feed
from studio.decode.maskset import MaskSet, compile_masks
from studio.decode.sampling import Sampler, apply_repetition_penalty
from studio.decode.settings import Settings

if TYPE_CHECKING:
    from studio.decode.engine import Engine

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
    search: int = 1  # candidate lines tried per line (studio/decode/search.py)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_second"] = round(self.tokens_per_second, 3)
        return d


# What ``take`` tells the loop: feed the chosen token to the source, wait (this row backed
# off: its logits are the saved ones, no forward needed), or drop the row (finished).
FEED, WAIT, DONE = "feed", "wait", "done"
_END = object()  # end of the stream in a scheduled generation's outbox


class SeqView:
    """The source as one row's controllers see it: its own row logits and probes."""

    def __init__(self, batch, sid: int):
        self.batch, self.sid = batch, sid

    def logits_of(self, row):
        return self.batch.logits_of(self.sid, row)

    def probe(self, candidates, layer: int, *row):
        return self.batch.probe(self.sid, candidates, layer, *row)


class Generation:
    """One streamed generation.  Built now, so bad input is refused before any decoding
    (a bad prompt, an impossible constraint set)."""

    def __init__(self, engine: "Engine", prompt: str, constraint: Constraint | None,
                 settings: Settings, mode: str = "continue", controllers=(), feed: Feed | None = None,
                 cancel: threading.Event | None = None, masks: MaskSet | None = None):
        self.engine = engine
        self.prompt = prompt
        self.constraint = constraint
        self.settings = settings
        self.mode = mode
        self.controllers = list(controllers)
        self.feed = feed or Feed(engine.decode_model)
        self.cancel_event = cancel or threading.Event()
        self.result: Result | None = None
        self.input_ids, self.context, self.drop_space = engine.encode_prompt(prompt, mode, settings.max_new_tokens)
        self.masks: MaskSet = masks if masks is not None else compile_masks(constraint, engine.vocab)
        self.masks.check_budget(settings.max_new_tokens)  # counts that cannot fit: refused now
        self.text = ""
        self.pieces: list[str] = []  # the text written so far, in pieces (controllers read it)
        self.source: SeqView | None = None  # set when a loop takes the row
        self._outbox: queue.Queue | None = None  # set when a scheduler drives the row
        self._pending: list[str] = []  # streamed pieces not yet handed to the reader
        self.done = False
        self.error: BaseException | None = None  # why the row failed, if it did
        # A search ranks lines by the model's own likelihood: per token written, its log
        # probability under the logits before any steering or mask (kept on the device).
        self.track_likelihood = False
        self.logprobs: list[torch.Tensor] = []
        # With ``track_kept_mass`` too, per token the log of the probability mass (same
        # logits) the masks left allowed at that step: what the rules cost there (a
        # particle's weight under particle_weight="mass", search.py; a logsumexp over the
        # vocabulary a step, so only when asked).
        self.track_kept_mass = False
        self.kept_mass: list[torch.Tensor] = []
        self.newlines = 0  # line breaks written (a search parks a row at each)

    def cancel(self) -> None:
        self.cancel_event.set()

    # ------------------------------------------------------------------ reading

    def __iter__(self) -> Iterator[str]:
        if self._outbox is not None:
            return self._read_outbox()
        return self._drive()

    def run(self) -> Result:
        for _ in self:
            pass
        return self.result

    def _drive(self) -> Iterator[str]:
        """Decode this row alone, in the caller's thread."""
        from studio.decode.loop import Decoder

        decoder = Decoder(self.engine)
        decoder.add(self)
        try:
            while not self.done:
                decoder.step()
                yield from self._flush()
            yield from self._flush()
        finally:
            decoder.close()
        if self.error is not None:
            raise self.error

    def _flush(self) -> Iterator[str]:
        out, self._pending = self._pending, []
        yield from out

    def _read_outbox(self) -> Iterator[str]:
        """Pieces a scheduler thread decodes (studio/decode/scheduler.py)."""
        try:
            while True:
                item = self._outbox.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel()  # the reader went away: nothing should keep decoding

    def _emit(self, piece: str) -> None:
        if self._outbox is not None:
            self._outbox.put(piece)
        else:
            self._pending.append(piece)

    # ------------------------------------------------------------------ the pipeline

    def begin(self, logits: torch.Tensor, source: SeqView, t0: float) -> None:
        """The loop prefilled the prompt: ``logits`` are the first step's."""
        s, vocab, dev = self.settings, self.engine.vocab, self.engine.device
        self.source = source
        self.t0 = t0
        self.logits = logits
        self.sampler = Sampler(s, dev)
        self.masks.reset(self.context)
        self.seen = torch.zeros(vocab.size, dtype=torch.bool, device=dev)
        self.seen[torch.tensor(self.input_ids, device=dev)] = True
        # Tokens may hold part of a UTF-8 character: decode bytes incrementally.
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.history: list[tuple] = []  # (token, logits before, mask snapshot, decoder state)
        self.banned: dict[int, set[int]] = {}  # step -> choices that led to dead ends
        self.ends: list[int] = []  # where each piece ends in the joined text
        self.emitted = 0  # characters of the joined pieces already streamed
        self.safe_len, self.safe_tokens = 0, 0  # the last point that may be streamed for good
        self.done_len, self.done_tokens = 0, 0  # the last such point where every rule holds
        self.stop_reason, self.message, self.backoffs = "max_tokens", "", 0
        self.first_token = 0.0

    def propose(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Steps 3-6: (the choice as a 0-d tensor, whether anything was allowed), or None
        when the row must stop now (cancelled, or its budget is spent)."""
        s, vocab = self.settings, self.engine.vocab
        if self.cancel_event.is_set():
            self.stop_reason, self.message = "cancelled", "stopped by the writer"
            return None
        step = len(self.history)
        if step >= s.max_new_tokens:
            return None
        steps_left = s.max_new_tokens - step
        # 3. soft: controllers, then whole-text steering
        scores = self.logits
        for c in self.controllers:
            scores = c.adjust(scores, self)
        scores = apply_repetition_penalty(scores, self.seen, s.repetition_penalty)
        b = self.masks.bias(steps_left)
        if b is not None:
            scores = scores + b
        # 4. hard
        allowed = self.masks.step_mask(steps_left, may_end=step >= s.min_new_tokens)
        if step in self.banned:
            allowed = allowed & ~vocab.ids_mask(self.banned[step])
        any_ok = allowed.any()
        if self.track_likelihood:
            self._logp = torch.log_softmax(self.logits.float(), dim=-1)
            if self.track_kept_mass:
                self._kept = torch.logsumexp(self._logp.masked_fill(~allowed, float("-inf")), dim=-1)
        masked = scores.masked_fill(~allowed, float("-inf"))
        # 6. sample; a dead end samples from zeros and is discarded in ``take``.
        choice = self.sampler(torch.where(any_ok, masked, torch.zeros_like(masked)))
        return choice.reshape(()), any_ok

    def take(self, token_id: int, ok: bool, choice: torch.Tensor) -> str:
        """Steps 5 and 7 with the sampled id: FEED (give ``choice`` to the source), WAIT
        (backed off: the saved logits stand) or DONE."""
        s, vocab = self.settings, self.engine.vocab
        if not ok:
            # 5. back off: drop the last token of the word in progress, ban it, resample.
            # Never back off past text already streamed (streaming stops at piece ends).
            step = len(self.history)
            if (self.backoffs >= s.max_backoffs or not self.history
                    or self.ends[-1] - len(self.pieces[-1]) < self.emitted):
                self.stop_reason = "dead_end"
                self.message = "no allowed continuation under " + " & ".join(
                    f"'{n}'" for n in self.masks.blocking(s.max_new_tokens - step))
                return DONE
            self.backoffs += 1
            prev, self.logits, snap, dec_state = self.history.pop()
            if self.track_likelihood:
                self.logprobs.pop()
                if self.track_kept_mass:
                    self.kept_mass.pop()
            self.newlines -= self.pieces[-1].count("\n")
            self.utf8.setstate(dec_state)
            self.banned.pop(step, None)
            self.banned.setdefault(step - 1, set()).add(prev)
            self.masks.restore(snap)
            self.pieces.pop()
            self.ends.pop()
            self.source.batch.crop(self.source.sid, len(self.input_ids) + len(self.history))
            return WAIT

        if not self.first_token:
            self.first_token = time.perf_counter() - self.t0
        if token_id in vocab.eos_ids:
            self.stop_reason = "eos"
            return DONE
        # 7. advance
        if self.track_likelihood:
            self.logprobs.append(self._logp[token_id])
            if self.track_kept_mass:
                self.kept_mass.append(self._kept)
        self.history.append((token_id, self.logits, self.masks.snapshot(), self.utf8.getstate()))
        self.masks.advance(token_id)
        self.seen.index_fill_(0, choice.reshape(1), True)  # on the device: no host sync
        piece = self.utf8.decode(vocab.raw[token_id])
        if not self.pieces and self.drop_space and piece.startswith(" "):
            piece = piece[1:]
        self.pieces.append(piece)
        self.ends.append((self.ends[-1] if self.ends else 0) + len(piece))
        self.newlines += piece.count("\n")
        text = "".join(self.pieces)
        hit = self._stop_hit(text, len(text) - len(piece))
        if hit is not None:
            self.pieces = [text[:hit]]
            self.stop_reason = "stop_string"
            return DONE
        if self.masks.safe():
            self.safe_len, self.safe_tokens = len(text), len(self.history)
            if self.masks.done_ok():
                self.done_len, self.done_tokens = len(text), len(self.history)
        cut = self._stream_cut(text, self.ends, self.safe_len, self.emitted)
        if cut > self.emitted:
            self._emit(text[self.emitted:cut])
            self.emitted = cut
        return FEED if len(self.history) < s.max_new_tokens else DONE

    def set_logits(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def fork(self, source: SeqView, seed: int | None) -> "Generation":
        """A row that goes on from this one's state with its own sampler (``seed``) and its
        own copies of everything that changes; ``source`` is its forked place in the batch
        (BatchSource.fork).  A cancel of either stops both."""
        twin = copy.copy(self)
        twin.settings = Settings.from_dict(dict(self.settings.to_dict(), seed=seed))
        twin.sampler = Sampler(twin.settings, self.engine.device)
        twin.masks = self.masks.fork()
        twin.history, twin.logprobs, twin.kept_mass = list(self.history), list(self.logprobs), list(self.kept_mass)
        twin.banned = {k: set(v) for k, v in self.banned.items()}
        twin.pieces, twin.ends = list(self.pieces), list(self.ends)
        twin.seen = self.seen.clone()
        twin.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        twin.utf8.setstate(self.utf8.getstate())
        twin.source = source
        twin._pending, twin._outbox = [], None
        twin.done, twin.error, twin.result = False, None, None
        return twin

    def finish(self) -> None:
        """The row is done: trim to the last point where every rule holds, stream the
        rest, build the result."""
        history = self.history
        if self.stop_reason != "stop_string":
            self.pieces.append(self.utf8.decode(b"", final=True))
        text = "".join(self.pieces)
        if not self.masks.done_ok():
            # A dead end (or a budget spent mid-word) is trimmed to the last point where every
            # rule holds, so the result obeys them all; never below what was already streamed
            # (streaming stops at word ends, where word rules hold).
            if self.done_len >= self.emitted:
                cut, kept = self.done_len, self.done_tokens
            else:
                cut, kept = self.emitted, self.ends.index(self.emitted) + 1 if self.emitted else 0
            text, history = text[:cut], history[:kept]
            self.message = self.message or "trimmed to the last point where every constraint holds"
        if len(text) > self.emitted:
            self._emit(text[self.emitted:])
        self.text = text
        self.result = Result(
            text=text,
            prompt=self.prompt,
            tokens=len(history),
            seconds=time.perf_counter() - self.t0,
            model=self.engine.name,
            constraints=self.constraint.spec() if self.constraint is not None else "",
            seed=self.settings.seed,
            mode=self.mode,
            stop_reason=self.stop_reason,
            message=self.message,
            backoffs=self.backoffs,
            first_token_seconds=self.first_token,
            settings=self.settings.to_dict(),
            token_ids=[h[0] for h in history],
        )
        self.done = True
        if self._outbox is not None:
            self._outbox.put(_END)

    def fail(self, error: BaseException) -> None:
        """The row could not go on (its controller failed, or the shared forward): the
        reader gets the error instead of a result."""
        self.done = True
        self.error = error
        if self._outbox is not None:
            self._outbox.put(error)

    # ------------------------------------------------------------------ helpers

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
