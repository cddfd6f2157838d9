"""language:CODE — check() on hand-made texts, codes refused in one line, languages the
masks do not serve refused before decoding with the reason, and the word masks on the
tiny random model, where every answer passes check."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.language import SERVED, Language, language_words
from constraints.spec import parse_spec, to_spec
from studio.decode.maskset import compile_masks
from studio.decode.sampling import Settings
from studio.decode.vocab import VocabIndex


@pytest.mark.parametrize("code, text, ok", [
    ("fr", "Le chat dort sur la table, et il fait beau aujourd'hui.", True),
    ("fr", "The cat sleeps on the table and the weather is fine.", False),
    ("es", "El perro duerme en la casa y la noche es tranquila.", True),
    ("es", "The dog sleeps in the house.", False),
    ("de", "Der Hund schläft im Garten, und die Sonne scheint.", True),
    ("de", "The dog sleeps in the garden.", False),
    ("en", "The dog sleeps in the garden and the sun is shining.", True),
    ("en", "Le chien dort dans le jardin et le soleil brille.", False),
    ("fr", "", True),  # no words: nothing is written in another language
])
def test_check_on_hand_made_texts(code, text, ok):
    assert (not parse_spec(f"language:{code}").check(text)) is ok


def test_word_rule_keeps_the_language_and_leaves_english_out():
    fr = Language("fr")
    assert fr.word_ok("maison") and fr.word_ok("est") and fr.word_ok("a")
    assert not fr.word_ok("the") and not fr.word_ok("is") and not fr.word_ok("xqzt")
    assert "l'eau" in language_words("fr")  # elided forms are French words too
    assert fr.word_ok("l'eau")


@pytest.mark.parametrize("code", sorted(SERVED))
def test_round_trip(code):
    rule = parse_spec(f"language:{code}")
    assert parse_spec(to_spec(rule)) == rule


@pytest.mark.parametrize("spec", ["language:xx", "language:french", "language"])
def test_unknown_codes_are_one_spec_error(spec):
    with pytest.raises(SpecError) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return VocabIndex(tokenizer)


@pytest.mark.parametrize("code, why", [("ru", "Cyrillic script"), ("zh", "Chinese script")])
def test_languages_not_served_are_refused_before_decoding(vocab, code, why):
    rule = parse_spec(f"language:{code}")  # check still judges it
    with pytest.raises(ImpossibleConstraint, match=why) as e:
        compile_masks(rule, vocab)
    assert f"language:{code}" in str(e.value) and "\n" not in str(e.value)


def test_two_languages_are_refused(vocab):
    with pytest.raises(ImpossibleConstraint, match="one language"):
        compile_masks(parse_spec("language:fr & language:de"), vocab)


@pytest.mark.parametrize("code", ["fr", "de"])
def test_tiny_model_answers_pass_check(tiny_engine, code):
    rule = parse_spec(f"language:{code}")
    for seed in range(2):
        out = tiny_engine.generate("Décris la mer.", rule, Settings(max_new_tokens=30, seed=seed),
                                   mode="instruct")
        assert out.text.strip(), out
        assert not rule.check(out.text), out.text


def test_tiny_model_language_composes_with_a_lipogram(tiny_engine):
    rule = parse_spec("language:es & lipogram:e")
    out = tiny_engine.generate("Décris la mer.", rule, Settings(max_new_tokens=30, seed=0), mode="instruct")
    assert out.text.strip() and not rule.check(out.text), out.text
