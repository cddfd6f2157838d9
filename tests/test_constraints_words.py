"""Word-level letter rules, scopes, the And / Or / Not algebra over words, and
spec round-trips for every word-level constraint registered by this package."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constraints.base import And, Not, Or, SpecError, entries
from constraints.words import Scoped, scope_of
from constraints.spec import parse_spec


def ok(spec, *words):
    c = parse_spec(spec)
    return [c.word_ok(w) for w in words]


def test_starts_ends_contains():
    assert ok("starts-with:S", "sun", "Sea", "ash") == [True, True, False]
    assert ok("ends-with:ing", "Browning", "sing", "singe") == [True, True, False]
    assert ok("contains:oo", "moon", "BOOK", "mono") == [True, True, False]
    assert ok("ends-with:n't", "don't", "don’t", "done") == [True, True, False]


def test_letter_at_and_length():
    assert ok("letter-at:2=a", "cat", "Bat", "crab", "a") == [True, True, False, False]
    assert ok("letter-at:-1=s", "cats", "gas", "cat") == [True, True, False]
    assert ok("length:3", "cat", "don't", "cats") == [True, False, False]
    assert ok("length:4", "don't") == [True]  # apostrophes are not letters
    assert ok("length:<4", "cat", "cats") == [True, False]
    assert ok("length:>=4", "cat", "cats") == [False, True]
    [v] = parse_spec("length:<=3").check("a cat sat, quietly.")
    assert "quietly" in v.message and "7 letters" in v.message


def test_palindrome_anagram_isogram():
    assert ok("palindrome", "Level", "noon", "a", "moon") == [True, True, True, False]
    assert ok("anagram:listen", "silent", "Enlist", "listen", "list") == [True, True, False, False]
    assert ok("partial-anagram:wordsmith", "word", "shot", "moth", "wood") == [True, True, True, False]
    assert ok("isogram", "subdermatoglyphic", "letter", "don't") == [True, False, True]
    assert ok("reverse-isogram", "deed", "intestines", "teammate", "teams") == [True, True, True, False]


def test_edit_distance_and_every_word_has_and_title_case():
    assert ok("edit-distance:cat,1", "bat", "cats", "at", "dog", "cat") == [True, True, True, False, True]
    assert ok("edit-distance:cat,2", "cut", "coat", "dog") == [True, True, False]
    assert parse_spec("edit-distance:cat<=2") == parse_spec("edit-distance:cat,2")
    assert parse_spec("edit-distance:cat").spec() == "edit-distance:cat,1"
    assert ok("every-word-has:e", "tree", "Eel", "cat") == [True, True, False]
    assert ok("every-word-has:ae", "tea", "tee") == [True, False]
    assert ok("title-case", "Cat", "cat", "O'Neil") == [True, False, True]


def test_word_rules_let_punctuation_digits_and_space_through():
    c = parse_spec("starts-with:s")
    assert c.check("Sun, sea -- 42 salt!\n\nsky.") == []
    [v] = c.check("Sun, sea and salt.")
    assert (v.start, v.end) == (9, 12)


# ---------------------------------------------------------------- scopes


def test_scoped_next_and_line_end():
    nxt = parse_spec("next:syllables:1")
    assert isinstance(nxt, Scoped) and nxt.scope == "next" and scope_of(nxt) == "next"
    assert nxt.word_ok("brown") and not nxt.word_ok("browning")
    assert nxt.check("brown browning") == []
    assert len(nxt.check("browning brown")) == 1
    end = parse_spec("line-end:rhymes:day")
    assert end.scope == "line-end" and end.inner == parse_spec("rhymes:day")
    text = "I went out to play\nthe sun was hot,\n\nand so I say"
    [v] = end.check(text)
    assert text[v.start:v.end] == "hot"
    assert scope_of(parse_spec("syllables:1")) == "every"


def test_scoped_spec_wraps_compound_inner():
    c = parse_spec("next:(syllables:1 & starts-with:s)")
    assert c.spec() == "next:(syllables:1 & starts-with:s)"
    assert parse_spec(c.spec()) == c
    assert isinstance(parse_spec("next:!starts-with:s").inner, Not)


@pytest.mark.parametrize("spec,needle", [
    ("next:next:palindrome", "cannot wrap another scope"),
    ("next:require:x", "whole-text rule"),
    ("next", "needs a constraint after it"),
])
def test_scope_errors(spec, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(spec)


@pytest.mark.parametrize("spec,needle", [
    ("letter-at:0=a", "0 is not a position"),
    ("letter-at:2", "expected POS=LETTER"),
    ("letter-at:2=ab", "not a single letter"),
    ("length:-2", "must not be negative"),
    ("length:0", "allows no word"),
    ("length:five", "expected N"),
    ("edit-distance:cat,-1", "must not be negative"),
    ("edit-distance:c4t,1", "not a word"),
    ("starts-with:4", "must be letters"),
    ("anagram:", "needs an argument"),
    ("palindrome:x", "takes no argument"),
    ("every-word-has:3", "needs letters"),
])
def test_letter_spec_errors_name_the_problem(spec, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(spec)


# ---------------------------------------------------------------- round trips

OURS = ("constraints.words", "constraints.lexicon", "constraints.phonetics")


def test_every_registered_word_constraint_round_trips():
    mine = [e for e in entries() if e.factory.__module__ in OURS]
    names = {e.name for e in mine}
    assert {"syllables", "rhymes", "stress", "metre-of", "sounds-like", "alliterate", "dictionary",
            "word-bank", "ban-words", "starts-with", "ends-with", "contains", "letter-at", "length",
            "palindrome", "anagram", "partial-anagram", "isogram", "reverse-isogram",
            "edit-distance", "every-word-has", "title-case", "next", "line-end"} <= names
    for e in mine:
        assert e.level == "word"
        c = parse_spec(e.example)
        assert parse_spec(c.spec()) == c, e.name
        assert c.describe()
        assert isinstance(c.check("Some words, and 42 more!\nAnother line."), list)


# ---------------------------------------------------------------- algebra

SPECS = ["syllables:1", "starts-with:s", "length:<=4", "rhymes:day", "isogram", "title-case",
         "every-word-has:e", "palindrome"]
WORDS = ["sun", "Sea", "day", "away", "browning", "noon", "sleep", "Say", "cat", "xqzzt",
         "level", "stay", "tree", "fire", "don't"]

spec_st = st.sampled_from(SPECS).map(parse_spec)
word_st = st.sampled_from(WORDS) | st.text(alphabet="abcdeilnorsty", min_size=1, max_size=7)


@settings(max_examples=200, deadline=None)
@given(spec_st, spec_st, word_st)
def test_word_algebra(a, b, w):
    assert Not(Not(a)).word_ok(w) == a.word_ok(w)
    assert Not(And(a, b)).word_ok(w) == Or(Not(a), Not(b)).word_ok(w)
    assert Not(Or(a, b)).word_ok(w) == And(Not(a), Not(b)).word_ok(w)
    assert And(a, b).word_ok(w) == (a.word_ok(w) and b.word_ok(w))
    assert Or(a, b).word_ok(w) == (a.word_ok(w) or b.word_ok(w))
    assert Or(a, Not(a)).word_ok(w) and not And(a, Not(a)).word_ok(w)


@settings(max_examples=60, deadline=None)
@given(spec_st, spec_st)
def test_composed_specs_round_trip(a, b):
    for c in (And(a, b), Or(a, b), Not(And(a, b)), Not(Or(a, b)), Scoped(Or(a, b), "line-end")):
        assert parse_spec(c.spec()) == c
