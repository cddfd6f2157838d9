"""Character-level constraints, their checkers, the spec language and And/Or/Not."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError, entries
from constraints.spec import parse_spec, parse_specs


def test_lipogram_check_finds_every_e_in_either_case():
    c = parse_spec("lipogram:e")
    text = "Eve met Bob"
    vs = c.check(text)
    assert [text[v.start:v.end] for v in vs] == ["E", "e", "e"]
    assert all(v.rule == "lipogram:e" for v in vs)
    assert c.check("A dog ran far away.") == []


def test_lipogram_bans_accented_forms():
    c = parse_spec("lipogram:e")
    assert not c.char_ok("é") and not c.char_ok("È")
    assert c.char_ok("a")


def test_banned_string_found_and_case_rules():
    assert [v.start for v in parse_spec("ban:the").check("The other")] == [0, 5]
    assert parse_spec("ban-exact:The").check("the other") == []


def test_character_classes():
    assert parse_spec("no-digits").check("a1b2") != []
    assert parse_spec("ascii-only").check("naïve") != []
    assert parse_spec("letters-only").check("hello world") == []
    assert parse_spec("letters-only").check("hello, world") != []
    assert parse_spec("lowercase").check("hello World") != []


def test_required_letters_check():
    c = parse_spec("require:xz")
    assert c.check("a fox and a zebra") == []
    (v,) = c.check("a fox")
    assert "'z'" in v.message


@pytest.mark.parametrize("spec", ["lipogram:e", "lipogram:e & ban:the,and", "!(starts-with:s | syllables:1)",
                                  "require:xz", "ascii-only & no-digits"])
def test_spec_round_trips(spec):
    c = parse_spec(spec)
    assert parse_spec(c.spec()).spec() == c.spec()


def test_every_registered_example_parses():
    for e in entries():
        c = parse_spec(e.example)
        assert parse_spec(c.spec()) == c, e.name


@pytest.mark.parametrize("bad, words", [
    ("lipogramm:e", "unknown constraint 'lipogramm'"),
    ("lipogram:", "needs an argument"),
    ("lipogram:e &", "a constraint is missing"),
    ("(lipogram:e", "missing ')'"),
    ("", "empty constraint spec"),
    ("ban:a,,b", "empty item"),
    ("ascii-only:x", "takes no argument"),
])
def test_bad_specs_name_the_problem(bad, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(bad)


def test_multiple_specs_join_with_and():
    c = parse_specs(["lipogram:e", "no-digits"])
    assert c.spec() == "lipogram:e & no-digits"
    assert len(c.check("e1")) == 2


def test_or_not_are_word_level_and_refuse_whole_text_rules():
    c = parse_spec("lipogram:e | no-digits")
    assert c.level == "word"
    assert c.word_ok("hello") and c.word_ok("dog")
    with pytest.raises(ImpossibleConstraint, match="whole-text rule"):
        parse_spec("!require:x")


def test_scopes_must_be_outermost():
    assert parse_spec("next:(syllables:1 | starts-with:s)").scope == "next"
    with pytest.raises(SpecError, match="must be outermost"):
        parse_spec("next:syllables:1 | starts-with:s")
    with pytest.raises(SpecError, match="must be outermost"):
        parse_spec("!line-end:rhymes:day")


def test_arguments_with_operators_are_quoted_and_round_trip():
    # Each quoted literal is one item: a comma inside the quotes is its text.
    c = parse_spec('ban:"a&b","c|d",e & lipogram:e')
    assert c.parts[0].strings == ("a&b", "c|d", "e")
    assert parse_spec(c.spec()) == c
    assert parse_spec('ban:"a&b,c|d"').strings == ("a&b,c|d",)
