"""Occurrence counts with the real embedded model: a word used at least three times with no
comma anywhere (IFEval's keyword frequency and no-commas instructions), judged by check()
and by IFEval's own way of counting."""

import re

import pytest

from constraints.spec import parse_spec
from studio.decode.sampling import Settings
from tests.conftest import streamed_and_checked

pytestmark = pytest.mark.real


def test_river_three_times_and_no_commas(real_engine):
    c = parse_spec('count-word:river,>=3 & ban:","')
    text, _ = streamed_and_checked(real_engine, "Write a short story about a river. Use the word 'river' at least "
                                   "3 times and do not use any commas.", c, Settings(max_new_tokens=80, seed=1))
    assert "," not in text
    assert len(re.findall(r"\briver\b", text, flags=re.IGNORECASE)) >= 3, text
    assert len(text.split()) >= 20, text  # an answer, not just the forced words
