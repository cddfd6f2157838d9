"""The writer's lexicon (constraints/lexicon.py, constraints/spelled.py): common words by
default, no letters, acronyms, abbreviations or fragments; ``common:Z`` as a rule."""

import pytest

from constraints.base import SpecError
from constraints.lexicon import (
    DEFAULT_FLOOR, Common, allowed_words, default_lexicon, is_word, lexicon_for, lexicon_settings,
    not_a_word, writer_lexicon, zipf,
)
from constraints.phonetics import Reading, pronunciations, rhyme_keys, sound, syllable_counts
from constraints.spec import parse_spec
from constraints.spelled import spelled_out


def test_spelled_out_readings_are_found_from_letter_names():
    assert spelled_out("mit", "EH1 M AY1 T IY1") and spelled_out("tac", "T IY1 EY1 S IY1")
    assert spelled_out("tvs", "T IY1 V IY1 Z") and spelled_out("abc's", "EY1 B IY2 S IY2 Z")
    assert not spelled_out("mit", "M IH1 T") and not spelled_out("see", "S IY1")
    assert not spelled_out("bee", "B IY1")  # b-e-e would be B IY IY IY
    assert not spelled_out("i", "AY1") and not spelled_out("a", "EY1")  # words, not letters


def test_the_floor_refuses_company_names_acronyms_and_single_letters():
    lex = writer_lexicon()
    cmu = default_lexicon()
    # CMU lists them all; none is a word a writer is offered by default.
    for word in ("chronar", "sarff", "bunyard", "ercros",  # names, companies (zipf < 3)
                 "mit", "tac", "ibm", "fbi",  # acronyms CMU reads letter by letter
                 "b", "l", "x",  # single letters
                 "dr", "mr", "st",  # abbreviations (no vowel letter, read with vowels)
                 "ai", "ot"):  # two-letter fragments
        assert word in cmu and word not in lex, word
    for word in ("a", "i", "o", "sea", "thee", "wind", "autumn", "hmm", "by", "of"):
        assert word in lex, word
    assert {not_a_word(w) for w in ("b", "mit", "dr", "ot")} == {
        "a single letter", "an acronym read as letters", "an abbreviation", "a two-letter fragment"}
    assert not_a_word("sea") is None
    assert zipf("chronar") == 0 and zipf("the") > 7


def test_common_rule_check_and_options():
    c = parse_spec("common:3")
    assert isinstance(c, Common) and c.spec() == "common:3"
    assert c.word_ok("sea") and not c.word_ok("bough")  # zipf 2.7
    assert not c.word_ok("MIT") and parse_spec("common:3+letters").word_ok("MIT")
    [v] = c.check("The chronar sails")
    assert "'chronar' is rare" in v.message
    [v] = c.check("B sails")
    assert "a single letter" in v.message and "+letters" in v.message
    assert parse_spec("common:0").word_ok("bough") and parse_spec("common:0").word_ok("chronar")
    with pytest.raises(SpecError, match="not a number"):
        parse_spec("common:lots")
    with pytest.raises(SpecError, match="from 0 to 8"):
        parse_spec("common:9")


def test_the_default_floor_shapes_word_sets_not_checks():
    one = parse_spec("syllables:1")
    assert one.check("the scythe") == []  # zipf 2.78: the writer's word breaks nothing
    assert "scythe" not in allowed_words(one)  # but the masks do not offer it
    assert lexicon_settings(one) == (DEFAULT_FLOOR, False)
    rare = parse_spec("syllables:1 & common:0")
    assert lexicon_settings(rare) == (0.0, False) and "scythe" in allowed_words(rare)
    assert lexicon_settings(parse_spec("common:2 & common:4")) == (4.0, False)  # all must hold
    assert lexicon_settings(parse_spec("syllables:1+letters"))[1]
    assert lexicon_for(parse_spec("form:haiku;letters")).key == ("writer", DEFAULT_FLOOR, True)


def test_one_syllable_without_vowels_writes_words_not_letters():
    # The example wrote "B-L -": single letters passed as words of one syllable.
    words = allowed_words(parse_spec("syllables:1 & lipogram:aeiou"))
    assert {"by", "my", "sky", "why", "myth"} <= words
    assert not any(len(w) == 1 for w in words)
    assert not {"dr", "st", "mt", "ms"} & words


def test_letters_lose_their_sound_unless_asked():
    assert pronunciations("mit") == ("M IH1 T",)  # the spelled reading dropped
    assert "EH1 M AY1 T IY1" in pronunciations("mit", letters=True)
    assert syllable_counts("b") == set() and syllable_counts("b", Reading(letters=True)) == {1}
    assert not rhyme_keys("mit") & rhyme_keys("sea")  # "sea" / M-I-T no longer rhyme
    assert not parse_spec("syllables:1").word_ok("B")
    assert parse_spec("syllables:1+letters").word_ok("B")
    assert not parse_spec("syllables:1+estimate").word_ok("B")  # a letter, not a word to estimate
    [v] = parse_spec("rhymes:sea").check("IBM")
    assert "letter by letter" in v.message
    assert sound("i").syllables == {1} and sound("a").syllables == {1}  # words, not letters


def test_is_word_for_the_next_word_list():
    assert is_word("sea") and is_word("covid") and is_word("Chronar") is False
    assert not is_word("b") and not is_word("ot") and not is_word("xqzzt")
    assert is_word("I") and is_word("a")


def test_candidates_offer_only_words(tiny_engine):
    from studio.next_words import next_candidates

    cs = next_candidates(tiny_engine, "The sea", None, n=20, words=True)
    assert cs
    assert all(is_word(w) for c in cs for w in c.text.split() if w.isalpha())
    under = next_candidates(tiny_engine, "The sea", parse_spec("syllables:1"), n=20, words=True)
    lex = writer_lexicon()
    assert all(c.text.strip().lower() in lex for c in under if c.text.strip().isalpha())


def test_word_masks_draw_on_the_writer_lexicon(tiny_engine):
    from studio.decode.sampling import Settings
    from constraints.units import iter_words

    lex = writer_lexicon()
    c = parse_spec("syllables:1")
    for seed in range(3):
        r = tiny_engine.generate("The", c, Settings(max_new_tokens=24, seed=seed))
        assert c.check(r.text) == []
        words = [m.group().lower() for m in iter_words(r.text)]
        assert words and all(w in lex for w in words), r.text
