"""The sampler: greedy, temperature, top-k, top-p, repetition penalty, settings checks."""

import pytest
import torch

from studio.decode.sampling import Sampler, apply_repetition_penalty
from studio.decode.settings import Settings


def _draws(settings, logits, n=400):
    s = Sampler(settings, torch.device("cpu"))
    return [int(s(logits)) for _ in range(n)]


def test_greedy_takes_the_argmax():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    assert set(_draws(Settings(greedy=True), logits, 5)) == {1}


def test_top_k_limits_the_support():
    logits = torch.tensor([5.0, 4.9, 4.8, 4.7, 4.6])
    assert set(_draws(Settings(top_k=2, top_p=1.0, temperature=1.0, seed=0), logits)) == {0, 1}


def test_top_p_keeps_the_nucleus_only():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.05, 0.05]))
    assert set(_draws(Settings(top_k=0, top_p=0.8, temperature=1.0, seed=0), logits)) == {0, 1}


def test_seed_makes_sampling_reproducible():
    logits = torch.randn(1000)
    a = _draws(Settings(seed=7, top_k=0, top_p=1.0, temperature=1.5), logits, 50)
    b = _draws(Settings(seed=7, top_k=0, top_p=1.0, temperature=1.5), logits, 50)
    assert a == b and len(set(a)) > 5


def test_masked_tokens_are_never_drawn():
    logits = torch.randn(100).masked_fill(torch.arange(100) % 2 == 0, float("-inf"))
    assert all(i % 2 == 1 for i in _draws(Settings(top_k=0, top_p=1.0, seed=1), logits))


def test_repetition_penalty_lowers_seen_tokens_only():
    logits = torch.tensor([2.0, -2.0, 2.0])
    seen = torch.tensor([True, True, False])
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert out.tolist() == [1.0, -4.0, 2.0]
    assert logits.tolist() == [2.0, -2.0, 2.0]  # not edited in place


@pytest.mark.parametrize("field, value", [("max_new_tokens", 0), ("temperature", 0.0), ("top_p", 1.5),
                                          ("top_k", -1), ("repetition_penalty", 0.0)])
def test_bad_settings_name_the_parameter(field, value):
    with pytest.raises(ValueError, match=field):
        Settings(**{field: value})


def test_min_above_max_is_refused():
    with pytest.raises(ValueError, match="min_new_tokens"):
        Settings(max_new_tokens=5, min_new_tokens=6)
