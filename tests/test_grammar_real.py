"""json and language: with the real embedded model: a JSON answer that parses and says
something, streamed as it is returned; a French answer that Perec's check calls French."""

import json

import pytest

from constraints.spec import parse_spec
from constraints.units import iter_words
from studio.decode.sampling import Settings
from tests.conftest import streamed_and_checked

pytestmark = pytest.mark.real


def test_json_answer_parses_and_has_a_non_empty_value(real_engine):
    c = parse_spec("json")
    text, g = streamed_and_checked(real_engine, "Describe a cat as a JSON object with its name, colour and age.", c,
                                   Settings(max_new_tokens=60, seed=0))
    value = json.loads(text)
    assert isinstance(value, dict) and any(v not in ("", None, [], {}) for v in value.values()), text
    assert g.result.stop_reason == "eos"


def test_json_closes_within_a_tight_budget(real_engine):
    # 16 tokens cannot hold what the model would write: the closing ends it in time.
    c = parse_spec("json")
    r = real_engine.generate("Describe a cat as a JSON object with its name, colour, age and history.", c,
                             Settings(max_new_tokens=16, seed=0), mode="instruct")
    assert c.check(r.text) == [] and r.tokens <= 16, r.text


def test_french_answer(real_engine):
    c = parse_spec("language:fr")
    r = real_engine.generate("Write two sentences about the sea, in French.", c,
                             Settings(max_new_tokens=50, seed=0), mode="instruct")
    assert c.check(r.text) == [], r.text
    assert sum(1 for _ in iter_words(r.text)) >= 5, r.text
