"""A long prompt joining a running batch is prefilled a chunk per step, so the rows already
decoding keep getting a token every step (tiny random llama, real tokenizer)."""

import threading

import pytest
import torch

from models.sources import BatchSource, Row
from studio.decode.loop import Decoder
from studio.decode.scheduler import Scheduler
from studio.decode.settings import Settings

LONG = " ".join(f"word{i}" for i in range(120))  # several hundred tokens


def greedy(engine, prompt, n=30):
    # min_new_tokens = n: the random model's EOS must not end a row early.
    return engine.stream(prompt, None, Settings(max_new_tokens=n, min_new_tokens=n, greedy=True,
                                                repetition_penalty=1.0))


class ForwardWidths:
    """The input width of every forward the model runs (a hook on the real model)."""

    def __init__(self, model):
        self.widths: list[int] = []
        self._h = model.register_forward_pre_hook(self._seen, with_kwargs=True)

    def _seen(self, module, args, kwargs):
        self.widths.append(int(kwargs["input_ids"].shape[1]))

    def close(self):
        self._h.remove()


def test_prefill_in_chunks_gives_the_prompts_logits(tiny_engine):
    ids = tiny_engine.encode_prompt(LONG)[0]
    whole = BatchSource(tiny_engine.model).add(ids)[0][1]
    batch = BatchSource(tiny_engine.model)
    block = batch.prefill(ids)
    runs = []
    while not block.done:
        runs.append(block.advance(7))
    assert max(runs) == 7 and sum(runs) == len(ids)
    ((_, chunked),) = batch.join(block)
    assert torch.allclose(chunked, whole, atol=1e-4)


def test_chunks_of_left_padded_rows_give_the_prompts_logits(tiny_engine):
    # Prompt contrast: one row reads a condition first, so the other is left-padded and
    # its first chunks are all padding.
    ids = tiny_engine.encode_prompt(LONG)[0][:50]
    rows = (Row(weight=-1.0), Row(prefix=tuple(tiny_engine.encode_prompt("A calm sea")[0]) * 4, weight=2.0))
    whole = BatchSource(tiny_engine.model).add(ids, rows)[0][1]
    batch = BatchSource(tiny_engine.model)
    block = batch.prefill(ids, rows)
    assert block.padded
    while not block.done:
        block.advance(5)
    ((_, chunked),) = batch.join(block)
    assert torch.allclose(chunked, whole, atol=1e-4)


def test_a_joining_prompt_never_stops_the_running_row(tiny_engine):
    chunk = 16
    decoder = Decoder(tiny_engine, prefill_chunk=chunk)
    running = greedy(tiny_engine, "The old house", n=60)
    decoder.join(running)
    decoder.step()  # alone: its prompt runs whole, and it takes its first token
    assert running in decoder.rows and len(running.history) == 1

    joining = greedy(tiny_engine, LONG, n=20)
    prompt = len(joining.input_ids)
    assert prompt > 8 * chunk
    decoder.join(joining)
    widths = ForwardWidths(tiny_engine.model)
    steps = 0
    try:
        while joining not in decoder.rows:
            before = len(running.history)
            decoder.step()
            steps += 1
            # The running row got its token in this very step, and the step prefilled at
            # most one chunk of the new prompt.
            assert len(running.history) == before + 1
            assert decoder.prefilled <= chunk
    finally:
        widths.close()
    assert steps == -(-prompt // chunk)
    assert max(widths.widths) == chunk  # no forward ran more than a chunk of columns
    decoder.run()
    # Each row's text is what it would be alone.
    assert joining.result.token_ids == greedy(tiny_engine, LONG, n=20).run().token_ids
    assert running.result.token_ids == greedy(tiny_engine, "The old house", n=60).run().token_ids


def test_a_row_cancelled_while_joining_ends_without_text(tiny_engine):
    decoder = Decoder(tiny_engine, prefill_chunk=8)
    running = greedy(tiny_engine, "The old house", n=30)
    decoder.join(running)
    decoder.step()
    joining = greedy(tiny_engine, LONG, n=10)
    decoder.join(joining)
    decoder.step()
    assert joining not in decoder.rows and len(decoder.joining) == 1
    joining.cancel()
    ended = decoder.step()
    assert joining in ended and not decoder.joining
    assert joining.result.stop_reason == "cancelled" and joining.result.text == ""
    assert len(decoder) == 1  # the running row goes on


def test_scheduler_streams_a_long_prompt_joining_midway(tiny_engine):
    sched = Scheduler(tiny_engine, prefill_chunk=16)
    try:
        first = sched.submit(greedy(tiny_engine, "The old house", n=40))
        pieces = iter(first)
        next(pieces)  # the first row is decoding
        ended = threading.Event()
        late = sched.submit(greedy(tiny_engine, LONG, n=12), on_end=ended.set)
        text = "".join(late)
        assert ended.wait(30)  # the end hook ran for the late row
        "".join(pieces)
        assert text == late.result.text and late.result.tokens == 12
        assert first.result.tokens == 40
        assert late.result.token_ids == greedy(tiny_engine, LONG, n=12).run().token_ids
    finally:
        sched.close()


def test_prefill_chunk_must_be_positive(tiny_engine):
    with pytest.raises(ValueError, match="prefill_chunk"):
        Decoder(tiny_engine, prefill_chunk=0)
