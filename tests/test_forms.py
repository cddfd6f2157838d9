"""Poetic forms: parsing, validation, and the independent checker."""

import json

import pytest

from constraints.base import SpecError
from constraints.forms import BUILTINS, Form, FormError, check_form, parse_form, rhyme_candidates
from constraints.phonetics import Reading, rhyme_keys, syllable_counts

SHAKESPEARE_18_COUPLET = (
    "So long as men can breathe or eyes can see,\n"
    "So long lives this, and this gives life to thee."
)

HAIKU = "An old silent pond\nA frog jumps into the pond\nSplash! Silence again."

LIMERICK = """There was a young lady of Niger
Who smiled as she rode on a tiger;
They returned from the ride
With the lady inside,
And the smile on the face of the tiger."""


def test_builtins():
    assert parse_form("haiku").syllables == (5, 7, 5) and parse_form("haiku").rhyme == "---"
    assert parse_form("Limerick").rhyme == "AABBA"
    assert parse_form("limerick").syllables == (8, 8, 5, 5, 8)
    sonnet = parse_form("sonnet")
    assert sonnet.n_lines == 14 and sonnet.rhyme == "ABABCDCDEFEFGG" and sonnet.stress is None
    assert parse_form("quatrain").rhyme == "ABAB"
    iambic = parse_form("sonnet-iambic")
    assert iambic.stress == ("0101010101",) * 14
    assert parse_form("sonnet+iambic") == iambic == sonnet.iambic() == parse_form("sonnet", iambic=True)
    assert sonnet.rhyme_groups()["G"] == [12, 13]


@pytest.mark.parametrize("text", list(BUILTINS) + [
    "5-7-5/ABA", "custom:5-7-5/ABA", "7,7,7,7:AABB", "10x14/ABAB CDCD EFEF GG/iambic",
    "custom:3-3/AA/010,-", "8-8-5-5-8/aabba", "6-6/A.", "haiku+trochaic",
])
def test_form_spec_round_trips(text):
    form = parse_form(text)
    assert parse_form(form.spec()) == form


def test_custom_syntax():
    f = parse_form("7,7,7,7:AABB")
    assert f.syllables == (7, 7, 7, 7) and f.rhyme == "AABB"
    f = parse_form("10x14/ABAB CDCD EFEF GG/iambic")
    assert f.syllables == (10,) * 14 and f.stress_for(0) == "0101010101"
    f = parse_form("custom:3-3/AA/010,-")
    assert f.stress == ("010", None)
    assert parse_form("5-7-5").rhyme == "---"
    assert parse_form("4-4/x.").rhyme_groups() == {}


@pytest.mark.parametrize("text,needle", [
    ("hiaku", "unknown form 'hiaku' (did you mean 'haiku'?)"),
    ("", "empty form spec"),
    ("5-x-5", "'x' is not a number"),
    ("5-7/ABA", "has 3 letters for 2 lines"),
    ("-1,5", "line 1: syllable count must not be negative"),
    ("5-0-5/ABA", "line 2 has 0 syllables, so it cannot carry rhyme letter B"),
    ("5-0-5", "line 2 has 0 syllables"),
    ("5-5/A1", "'1' is not a letter"),
    ("5-5/AA/0101,01010", "stress pattern '0101' has 4 syllables, the line has 5"),
    ("3-3/AA/0a1,-", "must be 0s and 1s"),
    ("1x300/" + "A" * 300, "no 300 different words in the dictionary rhyme together"),
    ("5/A/B/C", "expected SYLLABLES"),
])
def test_bad_forms_are_refused_with_the_reason(text, needle):
    with pytest.raises(FormError, match=__import__("re").escape(needle)):
        parse_form(text)
    assert issubclass(FormError, SpecError)


def test_validate_on_a_hand_built_form():
    with pytest.raises(FormError, match="scheme 'AA' has 2 letters for 3 lines"):
        Form("x", [5, 5, 5], "AA").validate()
    assert Form("x", [5, 5], "AA").validate().rhyme == "AA"


def test_shakespeare_couplet_passes():
    report = check_form("couplet", SHAKESPEARE_18_COUPLET)
    assert report.ok, report.table()
    assert [ln.syllables for ln in report.lines] == [10, 10]
    assert [ln.rhyme for ln in report.lines] == ["A", "A"]
    assert report.lines[0].rhyme_key == report.lines[1].rhyme_key == "IY1"
    assert check_form("couplet-iambic", SHAKESPEARE_18_COUPLET).ok


def test_broken_couplet_flags_the_right_line():
    short = SHAKESPEARE_18_COUPLET.replace("and this gives", "and gives")
    report = check_form("couplet", short)
    assert not report.ok and report.lines[0].ok and not report.lines[1].ok
    [v] = report.violations
    assert "line 2 has 9 syllables, needs 10" in v.message
    unrhymed = SHAKESPEARE_18_COUPLET.replace("to thee", "to them")
    [v] = check_form("couplet", unrhymed).violations
    assert "'them' does not rhyme A" in v.message and unrhymed[v.start:v.end] == "them"
    same = SHAKESPEARE_18_COUPLET.replace("to thee", "to see")
    msgs = [v.message for v in check_form("couplet", same).violations]
    assert any("repeats the rhyme word of line 1" in m for m in msgs)


def test_line_count_is_checked():
    one = SHAKESPEARE_18_COUPLET.split("\n")[0]
    [v] = check_form("couplet", one).violations
    assert "has 1 line(s); couplet needs 2" in v.message
    three = SHAKESPEARE_18_COUPLET + "\nAnd more."
    msgs = [v.message for v in check_form("couplet", three).violations]
    assert any("line 3 is beyond the 2 lines" in m for m in msgs)


def test_haiku_and_limerick():
    assert check_form("haiku", HAIKU).ok
    assert check_form("haiku", HAIKU + "\n").ok and check_form("haiku", "\n" + HAIKU).ok
    report = check_form("limerick", LIMERICK)
    assert [ln.rhyme for ln in report.lines] == list("AABBA")
    assert report.lines[2].rhyme_key == report.lines[3].rhyme_key


def test_primary_pronunciation_counts_and_lenient_takes_any():
    # "fire" is F AY1 ER0 first (two syllables), F AY1 R second: the field counts the first.
    assert check_form("custom:4", "the fire burns").ok
    assert not check_form("custom:3", "the fire burns").ok
    lenient = Reading(lenient=True)  # form:...;lenient: either budget is met
    assert check_form("custom:3", "the fire burns", lenient).ok
    assert check_form("custom:4", "the fire burns", lenient).ok
    report = check_form("custom:6", "the fire burns", lenient)
    assert report.lines[0].syllables == 4 and report.lines[0].syllable_options == [3, 4]


def test_words_outside_cmu_are_flagged():
    [v] = check_form("custom:3", "the xqzzt cat").violations
    assert "'xqzzt' is not in the CMU dictionary" in v.message


def test_stress_tolerance():
    # Monosyllables bend to the metre; polysyllables must match their CMU stress.
    assert check_form("custom:4/-/iambic", "the cat and dog").ok
    assert check_form("custom:4/-/iambic", "again, again").ok
    report = check_form("custom:4/-/iambic", "river water")
    [v] = report.violations
    assert "stress 1010 does not fit 0101" in v.message


def test_stanza_breaks_are_ignored_and_report_serialises():
    sonnet18 = (
        "Shall I compare thee to a summer's day?\n"
        "Thou art more lovely and more temperate:\n"
        "Rough winds do shake the darling buds of May,\n"
        "And summer's lease hath all too short a date;\n\n"
    )
    report = check_form("quatrain", sonnet18.replace("Thou art more lovely and more temperate",
                                                     "Thou art more lovely, and more fair, I say")
                        .replace("Shall I compare thee", "Shall I compare you"))
    assert len(report.lines) == 4
    d = json.loads(json.dumps(report.to_dict()))
    assert d["form"] == "quatrain" and len(d["lines"]) == 4
    assert all(ln["syllables"] == 10 for ln in d["lines"])  # 10 found, 8 wanted
    assert "line 1 has 10 syllables, needs 8" in report.table()


def test_rhyme_candidates():
    key = next(iter(rhyme_keys("day")))
    one = rhyme_candidates(key, 1)
    assert "may" in one and "play" in one and "away" not in one
    two = rhyme_candidates(key, 2)
    assert "away" in two and set(one) <= set(two)
    assert all(min(syllable_counts(w)) <= 2 for w in two)
    assert rhyme_candidates("NO SUCH KEY", 3) == []
