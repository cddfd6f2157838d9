"""The CMU lexicon, allowed_words, the prefix trie, and the lexical constraints."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constraints.base import SpecError
from constraints.lexicon import (
    FUNCTION_WORDS,
    Lexicon,
    PrefixTrie,
    allowed_words,
    default_lexicon,
)
from constraints.spec import parse_spec


def test_default_lexicon_is_lowercase_words_only_and_fast():
    default_lexicon.cache_clear()
    t = time.perf_counter()
    lex = default_lexicon()
    assert time.perf_counter() - t < 2.0
    assert len(lex) > 100_000
    assert list(lex.words) == sorted(lex.words)
    assert "brown" in lex and "Brown" in lex and "don’t" in lex  # case and curly apostrophe
    assert "o'er" in lex  # an extra word CMU lacks
    assert "a.m." not in lex and "'bout" not in lex  # not letters-with-inner-apostrophes
    assert all(w == w.lower() for w in lex.words[:5000])


def test_is_prefix_and_words_with_prefix():
    lex = Lexicon(["brow", "brown", "browning", "cat"])
    assert lex.is_prefix("bro") and lex.is_prefix("brown") and lex.is_prefix("")
    assert not lex.is_prefix("brx") and not lex.is_prefix("catz")
    assert lex.words_with_prefix("brow") == ["brow", "brown", "browning"]
    assert lex.words_with_prefix("z") == []


def test_allowed_words_filters_and_caches_per_spec():
    c = parse_spec("syllables:1 & starts-with:br")
    words = allowed_words(c)
    assert "brown" in words and "browning" not in words and "cat" not in words
    assert allowed_words(parse_spec("syllables:1 & starts-with:br")) is words  # same spec, same set


def test_allowed_words_tries_capitalized_forms_for_case_rules():
    lex = Lexicon(["cat", "dog"])
    assert allowed_words(parse_spec("title-case"), lex) == {"cat", "dog"}
    assert allowed_words(parse_spec("title-case & starts-with:c"), lex) == {"cat"}


def test_dictionary_constraint():
    c = parse_spec("dictionary")
    assert c.word_ok("Brown") and not c.word_ok("xqzzt")
    [v] = c.check("The brown xqzzt, 42 times.")
    assert "xqzzt" in v.message and v.rule == "dictionary"


def test_word_bank_with_and_without_function_words():
    bank = parse_spec("word-bank:sea,salt,Wind")
    assert bank.word_ok("sea") and bank.word_ok("wind") and not bank.word_ok("the")
    assert bank.spec() == "word-bank:sea,salt,wind"
    plus = parse_spec("word-bank:sea,salt+function")
    assert plus.word_ok("the") and plus.word_ok("Of") and not plus.word_ok("wind")
    assert parse_spec(plus.spec()) == plus
    assert plus.check("the salt of the sea, the wind") and not plus.check("The salt of the sea.")
    assert 130 <= len(FUNCTION_WORDS) <= 250
    assert {"the", "a", "of", "and", "is", "they", "would"} <= FUNCTION_WORDS


def test_ban_words_is_whole_word_and_case_insensitive():
    c = parse_spec("ban-words:cat,very")
    assert not c.word_ok("Cat") and c.word_ok("catch")
    vs = c.check("Very nice: a cat, a catch.")
    assert [v.start for v in vs] == [0, 13]


@pytest.mark.parametrize("spec,needle", [
    ("word-bank:", "needs an argument"),
    ("ban-words:cat,,dog", "empty item"),
    ("word-bank:cat,d0g", "'d0g' is not a word"),
    ("dictionary:x", "takes no argument"),
])
def test_lexical_spec_errors_name_the_problem(spec, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(spec)


# ---------------------------------------------------------------- trie properties

words_st = st.lists(st.text(alphabet="abcde'", min_size=1, max_size=8), max_size=40)


@settings(max_examples=150, deadline=None)
@given(words_st)
def test_trie_finds_every_inserted_word_and_prefix(words):
    trie = PrefixTrie(words)
    assert len(trie) == len(set(words))
    for w in words:
        assert trie.contains(w) and w in trie
        for i in range(1, len(w) + 1):
            assert trie.is_prefix(w[:i])


@settings(max_examples=150, deadline=None)
@given(words_st, st.text(alphabet="abcdef'", min_size=1, max_size=9))
def test_trie_agrees_with_a_plain_set(words, probe):
    trie = PrefixTrie(words)
    assert trie.contains(probe) == (probe in set(words))
    assert trie.is_prefix(probe) == any(w.startswith(probe) for w in words)
    assert trie.words_with_prefix(probe) == sorted({w for w in words if w.startswith(probe)})
    assert trie.next_letters(probe) == {w[len(probe)] for w in words
                                        if w.startswith(probe) and len(w) > len(probe)}


@settings(max_examples=100, deadline=None)
@given(words_st)
def test_trie_and_sorted_lexicon_agree(words):
    lowered = [w.lower() for w in words]
    trie, lex = PrefixTrie(lowered), Lexicon(lowered)
    for w in lowered:
        for i in range(len(w) + 1):
            assert trie.is_prefix(w[:i]) == lex.is_prefix(w[:i])
            assert trie.words_with_prefix(w[:i]) == lex.words_with_prefix(w[:i])
