"""Structure rules with the real embedded model: a sentence family (exact word count with
given words at positions) and a paragraph family (exact sentences, each starting with a
given word), judged by check() and by the splitters' own counts."""

import pytest

from constraints.spec import parse_spec
from constraints.units import counted_words, sentences
from studio.decode.sampling import Settings
from tests.conftest import streamed_and_checked

pytestmark = pytest.mark.real


def test_sentence_of_twelve_words_with_given_words_at_4_and_8(real_engine):
    c = parse_spec("sentences:1 & words:12 & word-at:4=river,8=stone")
    text, _ = streamed_and_checked(real_engine, "Please generate a sentence with exactly 12 words, with the 4th and "
                                   "8th words being 'river' and 'stone'.", c, Settings(max_new_tokens=40, seed=1))
    words = counted_words(text)
    assert len(words) == 12 and words[3].lower() == "river" and words[7].lower() == "stone", text
    assert len(sentences(text)) == 1


def test_paragraph_of_three_sentences_each_starting_with_a_given_word(real_engine):
    c = parse_spec("sentences:3 & each-sentence:(starts-with-word:She & words:6..14)")
    r = real_engine.generate("Please generate a paragraph about a lighthouse keeper with exactly 3 sentences, "
                             "each starting with 'She'.", c, Settings(max_new_tokens=80, seed=2), mode="instruct")
    assert c.check(r.text) == [], r.text
    got = sentences(r.text)
    assert len(got) == 3 and all(s.split()[0] == "She" for s in got), r.text
    assert all(6 <= len(counted_words(s)) <= 14 for s in got), r.text
