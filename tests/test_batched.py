"""Batched rows on the tiny random llama (real tokenizer): one forward per step for many
sequences, each with its own mask set, cache, back-off, stop and cancel."""

import threading

import pytest
import torch

from constraints.spec import parse_spec
from models.sources import BatchSource, SequenceSource
from studio.decode.loop import Decoder
from studio.decode.settings import Settings


def row(engine, prompt, spec=None, **kw):
    kw.setdefault("max_new_tokens", 24)
    return engine.stream(prompt, parse_spec(spec) if spec else None, Settings(**kw))


# ---------------------------------------------------------------------- the source


def test_batch_source_rows_see_what_they_would_see_alone(tiny_engine, tokenizer):
    """Rows joining at different lengths, a row leaving and a back-off (a hole) in one row
    leave every row's logits as they would be alone."""
    model = tiny_engine.model
    a_ids, b_ids = tokenizer.encode("The old house on the hill"), tokenizer.encode("Once")
    batch = BatchSource(model)
    ((a, _),) = batch.add(a_ids)
    batch.step({a: 11})
    ((b, _),) = batch.add(b_ids)  # joins later, shorter: left-padded
    ((c, _),) = batch.add(tokenizer.encode("A cat"))
    out = batch.step({a: 12, b: 21, c: 31})
    batch.remove(c)
    batch.crop(a, len(a_ids) + 1)  # a backs off its last token: a hole in its row
    out2 = batch.step({a: 13, b: 22})
    alone_a, alone_b = SequenceSource(model), SequenceSource(model)
    alone_a.prefill(a_ids)
    alone_a.step(11)
    want_a12 = alone_a.step(12)
    alone_a.crop(len(a_ids) + 1)
    want_a13 = alone_a.step(13)
    alone_b.prefill(b_ids)
    want_b21, want_b22 = alone_b.step(21), alone_b.step(22)
    for got, want in [(out[a], want_a12), (out[b], want_b21), (out2[a], want_a13), (out2[b], want_b22)]:
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_copies_are_prefilled_once_and_decode_apart(tiny_engine, tokenizer):
    batch = BatchSource(tiny_engine.model)
    (x, lx), (y, ly) = batch.add(tokenizer.encode("Once upon"), copies=2)
    torch.testing.assert_close(lx, ly)
    out = batch.step({x: 5, y: 6})
    assert not torch.allclose(out[x], out[y])


# ---------------------------------------------------------------------- the loop


def test_each_row_obeys_its_own_rules(tiny_engine):
    specs = ["lipogram:e", "syllables:1", "starts-with:s", None]
    gens = [row(tiny_engine, "The old house", s, seed=i) for i, s in enumerate(specs)]
    d = Decoder(tiny_engine)
    for g in gens:
        d.add(g)
    peak = 0
    while len(d):
        peak = max(peak, len(d.batches[id(tiny_engine.model)]))
        d.step()
    assert peak == 4  # all four decoded in one batch
    for g, s in zip(gens, specs):
        assert g.result.tokens > 0
        if s:
            assert parse_spec(s).check(g.result.text) == [], (s, g.result.text)


def test_a_row_decodes_the_same_batched_or_alone(tiny_engine):
    alone = row(tiny_engine, "The old house", "lipogram:e", greedy=True).run()
    gens = [row(tiny_engine, "The old house", "lipogram:e", greedy=True),
            row(tiny_engine, "Once upon a time, in a village by the sea,", None, seed=3)]
    d = Decoder(tiny_engine)
    for g in gens:
        d.add(g)
    d.run()
    assert gens[0].result.token_ids == alone.token_ids


def test_a_cancelled_row_stops_while_the_others_go_on(tiny_engine):
    gens = [row(tiny_engine, "The old house", seed=i, max_new_tokens=30) for i in range(3)]
    d = Decoder(tiny_engine)
    for g in gens:
        d.add(g)
    for _ in range(5):
        d.step()
    gens[1].cancel()
    d.run()
    assert gens[1].result.stop_reason == "cancelled" and gens[1].result.tokens == 5
    assert [gens[0].result.tokens, gens[2].result.tokens] == [30, 30]


def test_back_off_in_one_row_leaves_the_others_text_unchanged(tiny_engine):
    from studio.masks.base import Masker

    class DeadEndAt(Masker):
        """Allows nothing at step ``at`` the first time it is reached (then steps aside),
        so the row must back off there."""

        def __init__(self, vocab, at):
            super().__init__("dead-end-at", vocab)
            self.at, self.n, self.fired = at, 0, False

        def allowed(self, steps_left):
            if self.n == self.at and not self.fired:
                self.fired = True
                return torch.zeros(self.vocab.size, dtype=torch.bool)
            return None

        def advance(self, token_id):
            self.n += 1

        def snapshot(self):
            return self.n

        def restore(self, snap):
            self.n = snap

    calm_alone = row(tiny_engine, "The old house", "lipogram:e", greedy=True).run()
    calm = row(tiny_engine, "The old house", "lipogram:e", greedy=True)
    bumpy = row(tiny_engine, "In the morning", None, seed=2)
    bumpy.masks.maskers.append(DeadEndAt(tiny_engine.vocab, 6))
    d = Decoder(tiny_engine)
    d.add(calm)
    d.add(bumpy)
    d.run()
    assert bumpy.result.backoffs >= 1
    assert calm.result.token_ids == calm_alone.token_ids


def test_variants_are_k_rows_with_their_own_seeds(tiny_engine):
    rs = tiny_engine.variants("The old house", parse_spec("lipogram:e"),
                              Settings(max_new_tokens=20, seed=7), k=3)
    assert [r.seed for r in rs] == [7, 8, 9]
    assert len({tuple(r.token_ids) for r in rs}) == 3
    for r in rs:
        assert parse_spec("lipogram:e").check(r.text) == []
    alone = row(tiny_engine, "The old house", "lipogram:e", max_new_tokens=20, seed=8).run()
    assert rs[1].text == alone.text


# ---------------------------------------------------------------------- cancel, counted


class _CountSteps:
    """A controller that counts the steps of its row and cancels the row at step ``at``."""

    def __init__(self, at):
        self.at, self.steps, self.after_cancel = at, 0, 0

    def adjust(self, scores, generation):
        self.steps += 1
        if generation.cancel_event.is_set():
            self.after_cancel += 1
        if self.steps == self.at:
            generation.cancel()
        return scores


def test_cancel_stops_the_decoder_within_one_step(tiny_engine):
    counter = _CountSteps(at=5)
    g = tiny_engine.stream("The old house", None, Settings(max_new_tokens=40, seed=1), controllers=[counter])
    r = g.run()
    # Cancelled during step 5: that step's token is taken, no further step runs.
    assert r.stop_reason == "cancelled" and r.tokens == 5 and counter.after_cancel == 0


def test_cancel_from_another_thread_takes_at_most_one_more_step(tiny_engine):
    g = tiny_engine.stream("The old house", None, Settings(max_new_tokens=400, seed=1))
    tiny_engine.scheduler().submit(g)
    pieces = iter(g)
    next(pieces)  # decoding is under way
    at_cancel = []

    def stop():
        at_cancel.append(len(g.history))
        g.cancel()

    t = threading.Thread(target=stop)
    t.start()
    t.join()
    for _ in pieces:
        pass
    assert g.result.stop_reason == "cancelled"
    assert g.result.tokens - at_cancel[0] <= 1


# ---------------------------------------------------------------------- the scheduler


def test_scheduler_batches_concurrent_writers(tiny_engine):
    sched = tiny_engine.scheduler()
    specs = ["lipogram:e", "syllables:1", None, "starts-with:t"]
    gens = [row(tiny_engine, f"Story {i}: the old house", s, seed=i, max_new_tokens=30) for i, s in enumerate(specs)]
    texts = {}

    def read(g, i):
        texts[i] = "".join(g)

    threads = []
    for i, g in enumerate(gens):
        sched.submit(g)
        threads.append(threading.Thread(target=read, args=(g, i)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sched.peak_rows >= 2
    for i, (g, s) in enumerate(zip(gens, specs)):
        assert texts[i] == g.result.text
        if s:
            assert parse_spec(s).check(g.result.text) == []


def test_scheduler_reports_a_bad_row_to_its_reader_only(tiny_engine):
    class Broken:
        def adjust(self, scores, generation):
            raise RuntimeError("controller broke")

    sched = tiny_engine.scheduler()
    bad = sched.submit(tiny_engine.stream("The old house", None, Settings(max_new_tokens=10, seed=1),
                                          controllers=[Broken()]))
    good = sched.submit(row(tiny_engine, "The old house", seed=2, max_new_tokens=10))
    with pytest.raises(RuntimeError, match="controller broke"):
        list(bad)
    assert "".join(good) == good.result.text and good.result.tokens == 10
