"""Whole-text rules with the real embedded model: must-use words and E-Prime."""

import pytest

from studio.masks.include import IncludeMasker
from studio.decode.settings import Settings
from constraints.spec import parse_spec

pytestmark = pytest.mark.real


def test_three_must_use_words_within_60_tokens_streamed(real_engine):
    c = parse_spec("include:lighthouse,orange,whisper")
    g = real_engine.stream("Write a short story about a sailor.", c,
                           Settings(max_new_tokens=60, seed=1), mode="instruct")
    text = "".join(g)
    assert text == g.result.text and g.result.tokens <= 60
    assert c.check(text) == [], text
    m = next(m for m in g.masks if isinstance(m, IncludeMasker))
    assert not m.missing and m.forced_words <= {"lighthouse", "orange", "whisper"}
    assert len(text.split()) >= 20  # prose around the words, not just the words


def test_must_use_words_with_a_lipogram(real_engine):
    c = parse_spec("include:moon,dog,cold & lipogram:e")
    r = real_engine.generate("The old house on the hill", c, Settings(max_new_tokens=60, seed=2))
    assert c.check(r.text) == [], r.text


def test_e_prime_text_has_no_form_of_to_be(real_engine):
    c = parse_spec("e-prime")
    r = real_engine.generate("Describe your favourite place.", c,
                             Settings(max_new_tokens=50, seed=3), mode="instruct")
    assert r.tokens > 20 and c.check(r.text) == [], r.text
    assert len(r.text.split()) >= 15
