"""Candidates, filtered perplexity and the LogitsProcessor export, on the tiny model."""

import math

import pytest
import torch
from transformers import LogitsProcessorList

from studio.next_words import next_candidates
from studio.bridges.hf import ConstraintLogitsProcessor
from studio.scoring import score_text
from constraints.spec import parse_spec


def test_token_candidates_obey_and_are_ranked(tiny_engine):
    cs = next_candidates(tiny_engine, "The old house", parse_spec("lipogram:e"), n=15, words=False)
    assert len(cs) == 15
    assert all("e" not in c.text.lower() for c in cs)
    probs = [c.prob for c in cs]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6


def test_word_candidates_are_whole_words_that_obey(tiny_engine):
    cs = next_candidates(tiny_engine, "The old house", parse_spec("lipogram:e"), n=10, words=True)
    assert cs
    assert all("e" not in c.text.lower() for c in cs)
    assert len({c.text.strip().lower() for c in cs}) == len(cs)


def test_filter_never_raises_perplexity_of_a_text_that_obeys(tiny_engine):
    text = "A man and his dog ran far away into a dark wood, which was cold and still."
    plain = score_text(tiny_engine, text)
    filtered = score_text(tiny_engine, text, parse_spec("lipogram:e"))
    assert filtered.tokens == plain.tokens > 10
    assert filtered.perplexity < plain.perplexity
    assert math.isclose(plain.perplexity, math.exp(plain.nll))


def test_tokens_breaking_the_filter_are_counted(tiny_engine):
    s = score_text(tiny_engine, "A cat sat there, then left.", parse_spec("lipogram:e"))
    assert s.disallowed >= 2


def test_sliding_windows_score_every_token(tiny_engine):
    text = " ".join(["a dog ran far away"] * 40)
    whole = score_text(tiny_engine, text, window=4096)
    windows = score_text(tiny_engine, text, window=64)
    assert whole.tokens == windows.tokens


def test_logits_processor_in_model_generate(tiny_engine):
    tok, model = tiny_engine.tokenizer, tiny_engine.model
    proc = ConstraintLogitsProcessor(parse_spec("lipogram:e"), tok)
    ids = tok("The old house", return_tensors="pt").input_ids
    for kw in [dict(do_sample=True), dict(num_beams=3, do_sample=False)]:
        torch.manual_seed(0)
        out = model.generate(ids, logits_processor=LogitsProcessorList([proc]), max_new_tokens=30,
                             min_new_tokens=30, pad_token_id=tok.eos_token_id, **kw)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        assert len(text) > 10 and "e" not in text.lower()


def test_logits_processor_rejects_nonsense():
    with pytest.raises(ValueError, match="constraint"):
        ConstraintLogitsProcessor(None, None)
