"""The FUDGE couplet judge (bench/judges/fudge.py, independent of constraints/) on
hand-made 14th lines: one that passes, and one for each way to fail."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from judges.fudge import count_syllables, is_iambic, judge, metre, rhyme_group  # noqa: E402

L13 = "So long as men can breathe or eyes can see,"


def test_shakespeares_own_line_passes():
    v = judge(L13, "So long lives this, and this gives life to thee.")
    assert v.ok and v.iambic and v.rhymes and v.end and v.syllables == 10
    assert v.metre == "2222022222"  # one-syllable stressed words fit either beat


@pytest.mark.parametrize("line,reason", [
    ("So long lives this, and this gives life to thee", "does not end with . ? or !"),
    ("So long lives this, and this gives life to night.", "no perfect rhyme: 'night' / 'see'"),
    ("So long lives this, and xqzzt gives life to thee.", "not iambic: 'xqzzt' is not in CMU"),
    ("So long lives this, and xqzzt gives life to thee.", "11 syllables, not 10"),
    ("My love, the sun is burning in the sea.", "not iambic: 2202210002"),
    ("So long lives this - and this gives life to thee.", "not iambic: '' is not in CMU"),
    ("So long lives this and gives life to thee.", "9 syllables, not 10"),
])
def test_each_failure_is_named(line, reason):
    v = judge(L13, line)
    assert not v.ok and reason in v.reasons, v.reasons


def test_first_pronunciation_and_unstressed_monosyllables():
    # "the" is DH AH0 first: on a strong beat (odd position) the line is not iambic.
    assert metre("the sea") == "02" and not is_iambic("love the") and is_iambic("the love")
    # "fire" counts by its first pronunciation, F AY1 ER0: two syllables.
    assert count_syllables("fire") == 2
    # A word CMU lacks counts round(len / 3) syllables.
    assert count_syllables("xqzzt") == 2


def test_phyme_rhyme_groups():
    assert rhyme_group("see") == rhyme_group("thee") and "sea" in rhyme_group("see")
    assert rhyme_group("see") != rhyme_group("night")
    assert rhyme_group("xqzzt") is None
