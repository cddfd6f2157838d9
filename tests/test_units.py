"""The one definition of a word (constraints/units.py): the checkers' regex and the
decoder's character test agree, and digits separate words everywhere."""

import re

from constraints.units import WORD_RE, is_boundary, is_letter, is_word_char, iter_words

_LETTER = re.compile(r"[^\W\d_]")


def test_letter_test_matches_the_regex_on_every_code_point():
    for cp in range(0x30000):
        ch = chr(cp)
        assert is_letter(ch) == bool(_LETTER.fullmatch(ch)), hex(cp)


def test_digits_and_underscores_separate_words():
    assert [m.group() for m in iter_words("route66 a_b 3rd don't o'er naïve")] == \
        ["route", "a", "b", "rd", "don't", "o'er", "naïve"]
    assert is_boundary("6") and is_boundary("_") and not is_boundary("'") and is_word_char("é")


def test_apostrophes_join_only_letters():
    assert WORD_RE.findall("'tis the dogs' ball") == ["tis", "the", "dogs", "ball"]


# ------------------------------------------------------------------ sentences: the trained Punkt


def test_sentences_split_with_the_trained_english_punkt():
    from constraints.units import abbreviations, sentences

    # Known abbreviations keep the sentence going before a name or a lower-case word.
    assert sentences("I met Mr. Day at noon. He left.") == ["I met Mr. Day at noon.", "He left."]
    assert sentences("The U.S. Army came. It left.") == ["The U.S. Army came.", "It left."]
    # ... and end it before a word the model saw start sentences ("The").
    assert sentences("He lives in the U.S. The end.") == ["He lives in the U.S.", "The end."]
    # "e.g" is no abbreviation of the model: its period ends a sentence, even before "in".
    assert "e.g" not in abbreviations() and {"mr", "dr", "u.s", "ok"} <= abbreviations()
    assert sentences("It was cold, e.g. in Maine. Yes.") == ["It was cold, e.g.", "in Maine.", "Yes."]
    # A number's period ends a sentence except before the model's number collocations.
    assert sentences("It was 1899. Then we went.") == ["It was 1899.", "Then we went."]
    assert sentences("It was 1899. Who knew?") == ["It was 1899. Who knew?"]
    # ! and ? always end one; a blank line alone does not.
    assert sentences("It was Mr! Then we went.") == ["It was Mr!", "Then we went."]
    assert len(sentences("He met Dr.\n\nSun shone.")) == 1


def test_sentence_checks_count_with_the_trained_punkt():
    from constraints.spec import parse_spec

    assert parse_spec("sentences:2").check("I met Mr. Day at noon. He left.") == []
    assert parse_spec("sentences:3").check("It was cold, e.g. in Maine. Yes.") == []
    assert parse_spec("sentences:1").check("The U.S. Army came home.") == []
    words5 = parse_spec("sentences:2 & each-sentence:(words:5)")
    assert words5.check("Mr. Day came home late. Dr. Who saw him go.") == []
    assert words5.check("Mr. Day came home. Late he saw him go.") != []
