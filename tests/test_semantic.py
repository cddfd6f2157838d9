"""theme: semantic fields by offline all-MiniLM-L6-v2.  The decoding tests use a small
vocabulary so the one-time embedding of the lexicon (about a minute) stays out of the unit
tests; bench/whole_text.py runs the full one.  Thresholds here are unusual on purpose:
word sets are cached by spec, and a small-vocabulary theme must not share one with the
full lexicon's."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.semantic import Theme, lexicon_table, similarity
from studio.decode.settings import Settings
from constraints.spec import parse_spec

WORDS = ["sea", "ocean", "waves", "wave", "tide", "shore", "beach", "coast", "sailor", "ship",
         "boat", "salt", "water", "fish", "whale", "sand", "car", "engine", "tax", "laptop",
         "spreadsheet", "invoice", "motorway", "diesel"]


@pytest.fixture(scope="module")
def sea():
    return Theme("ocean", 0.41, words=WORDS)


def test_theme_spec_parses_and_round_trips():
    c = parse_spec("theme:deep sea,0.4")
    assert (c.theme, c.threshold) == ("deep sea", 0.4)
    assert parse_spec(c.spec()) == c
    assert parse_spec("theme:ocean").spec() == "theme:ocean"
    assert parse_spec('theme:"rock & roll,0.35"').theme == "rock & roll"


@pytest.mark.parametrize("spec, fragment", [
    ("theme:猫", "cannot read '猫'"),
    ("theme:🌊🌊", "cannot read"),
    ("theme:ocean,1.5", "between 0 and 1"),
    ("theme:ocean,high", "not a threshold"),
    ("theme:", "needs an argument"),
])
def test_bad_themes_are_refused_naming_the_problem(spec, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(spec)


def test_field_holds_near_words_and_function_words_pass(sea):
    field = sea.field()
    assert {"sea", "waves", "beach", "whale"} <= field
    assert not {"tax", "laptop", "invoice", "spreadsheet"} & field
    assert sea.word_ok("the") and sea.word_ok("Sea") and not sea.word_ok("laptop")


def test_check_embeds_each_content_word_independently(sea):
    assert sea.check("The sea and the waves, in salt water.") == []
    bad = sea.check("The tax invoice by the sea.")
    assert [v.message.split(" is ")[0] for v in bad] == ["'tax'", "'invoice'"]
    assert "from 'ocean', needs >= 0.41" in bad[0].message
    assert similarity("sea", "ocean") > 0.8


def test_decoding_keeps_every_content_word_in_the_field(tiny_engine, sea):
    for seed in range(2):
        r = tiny_engine.generate("The old house", sea, Settings(max_new_tokens=30, seed=seed))
        assert r.tokens > 5 and sea.check(r.text) == [], r.text


def test_a_must_use_word_outside_the_theme_is_refused(tiny_engine, sea):
    from constraints.spec import parse_spec as ps

    with pytest.raises(ImpossibleConstraint, match="'laptop' cannot be written under 'theme:ocean,0.41'"):
        tiny_engine.stream("The old house", ps("include:waves,laptop") & sea)


def test_lexicon_embeddings_are_cached_on_disk(tmp_path, monkeypatch):
    import numpy as np

    import constraints.semantic as sem

    monkeypatch.setenv("PEREC_CACHE", str(tmp_path))
    monkeypatch.setattr(sem, "_TABLES", {})
    first = lexicon_table(["boat", "ship", "apple"])
    files = list((tmp_path / "semantic").glob("*.npy"))
    assert len(files) == 1 and first.words == ("apple", "boat", "ship")
    monkeypatch.setattr(sem, "_TABLES", {})
    monkeypatch.setattr(sem, "embed", lambda *_a, **_k: pytest.fail("recomputed a cached table"))
    again = lexicon_table(["ship", "apple", "boat"])
    assert np.allclose(first.vectors, again.vectors)
