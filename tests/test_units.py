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
