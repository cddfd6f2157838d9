"""Whole-text rules as constraints (no model): parsing, check(), errors, registry, presets."""

import pytest

from constraints.base import SpecError, entries
from constraints.sequence import PRESETS, TO_BE, Include, inflections
from constraints.spec import parse_spec


def messages(spec, text):
    return [v.message for v in parse_spec(spec).check(text)]


# ------------------------------------------------------------------ include


def test_include_parses_words_budget_and_round_trips():
    c = parse_spec("include:Lighthouse, orange,whisper@40")
    assert isinstance(c, Include)
    assert c.words == ("lighthouse", "orange", "whisper") and c.within == 40
    assert parse_spec(c.spec()) == c
    assert parse_spec("include:a,b").within is None


def test_include_check_needs_whole_words_in_any_order():
    spec = "include:orange,lighthouse"
    assert messages(spec, "The Lighthouse glowed orange.") == []
    assert messages(spec, "An oranges lighthouse") == ["never uses the word 'orange'"]
    assert messages(spec, "lighthousekeeper and orange") == ["never uses the word 'lighthouse'"]


def test_include_forms_accepts_inflections_only_when_asked():
    assert messages("include:sail,run", "They sailed and ran") == [
        "never uses the word 'sail'", "never uses the word 'run'"]
    assert messages("include-forms:sail,run", "They sailed and ran") == []
    assert {"stopped", "stopping", "stops"} <= inflections("stop")
    assert {"carried", "carries"} <= inflections("carry")
    assert "making" in inflections("make") and "children" in inflections("child")


@pytest.mark.parametrize("spec, fragment", [
    ("include:", "needs an argument"),
    ("include:,", "empty item"),
    ("include:sea,", "empty item"),
    ("include:two words", "not a word"),
    ("include:sea@0", "at least 1 token"),
    ("include:sea@many", "WORDS@N"),
])
def test_include_bad_input_is_refused_with_a_clear_message(spec, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(spec)


def test_include_refuses_an_empty_word_list_directly():
    with pytest.raises(SpecError, match="no words given"):
        Include([])


# ------------------------------------------------------------------ pangram


def test_pangram_check_and_spec():
    fox = "The quick brown fox jumps over the lazy dog"
    assert messages("pangram", fox) == []
    assert "never uses 'a'" in messages("pangram", fox.replace("a", ""))[0]
    assert parse_spec("pangram:XYZ").spec() == "pangram:xyz"
    assert messages("pangram:xyz", "zany oryx") == []
    with pytest.raises(SpecError):
        parse_spec("pangram:12")


# ------------------------------------------------------------------ rhopalism


def test_rhopalism_letters():
    assert messages("rhopalism", "I am the best rider") == []
    assert messages("rhopalism", "I am a cat") == ["'a' has 1 letter, needs 3",
                                                  "'cat' has 3 letters, needs 2"]


def test_rhopalism_counts_on_from_a_slip_and_restarts_only_when_asked():
    # The chain goes on from the word that slipped: "A" breaks it, "cat" does not again.
    assert messages("rhopalism", "I am the best rider. A to") == ["'A' has 1 letter, needs 6"]
    assert messages("rhopalism:letters+restart", "I am the best rider. A to") == []
    assert messages("rhopalism:restart", "I am. Go now!") == []
    assert parse_spec("rhopalism:restart").spec() == "rhopalism:letters+restart"


def test_rhopalism_syllables_and_unknown_words():
    assert messages("rhopalism:syllables", "I wonder happily") == []
    assert len(messages("rhopalism:syllables", "I wonder slowly")) == 1
    assert "syllables are unknown" in messages("rhopalism:syllables", "I zxqvw")[0]
    with pytest.raises(SpecError, match="letters or syllables"):
        parse_spec("rhopalism:words")


# ------------------------------------------------------------------ E-Prime, reverse lipogram


def test_e_prime_bans_every_form_of_to_be_and_its_contractions():
    text = "It's late. I'm here; you're there. He was, they were, we are. Being is."
    flagged = [text[v.start:v.end] for v in parse_spec("e-prime").check(text)]
    assert flagged == ["It's", "I'm", "you're", "was", "were", "are", "Being", "is"]
    assert messages("e-prime", "The cat’s toy lies here; it seems fine.") == []
    assert {"isn't", "wasn't", "ain't", "that's"} <= TO_BE
    assert messages("e-prime", "It’s") == ["'It’s' is a form of \"to be\""]


def test_reverse_lipogram_is_every_word_has_under_its_own_name():
    c = parse_spec("reverse-lipogram:e")
    assert c.spec() == "reverse-lipogram:e" and parse_spec(c.spec()) == c
    assert c.check("Every tree here") == []
    assert [v.message for v in c.check("Every dog")] == ["'dog' breaks every word has 'e'"]
    with pytest.raises(SpecError, match="reverse-lipogram"):
        parse_spec("reverse-lipogram:1")


# ------------------------------------------------------------------ transforms, registry


@pytest.mark.parametrize("spec, good, bad", [
    ("alphanumeric", "Room 101 waits", "Room 101!"),
    ("no-spaces", "wordsruntogether", "two words"),
    ("uppercase", "LOUD 1!", "Loud"),
    ("lowercase", "quiet 1!", "Quiet"),
    ("title-case", "Every Word Up", "Every word"),
    ("no-punctuation", "no marks at all", "marks, here"),
    ("letters-only", "only letters here", "not 1"),
])
def test_text_transforms_are_checkable_rules(spec, good, bad):
    assert parse_spec(spec).check(good) == []
    assert parse_spec(spec).check(bad) != []


def test_every_new_rule_is_registered_and_presets_parse():
    names = {e.name for e in entries()}
    assert {"include", "include-forms", "pangram", "rhopalism", "e-prime", "reverse-lipogram",
            "theme", "alphanumeric", "no-spaces"} <= names
    assert set(PRESETS) == {"Pangram", "E-Prime", "Rhopalism", "Theme"}
    for spec in PRESETS.values():
        assert parse_spec(spec).spec() == spec


def test_perec_check_knows_the_new_rules():
    from tests.test_cli import perec

    ok = perec("check", "-c", "include:fox,dog", "-c", "pangram", "-c", "e-prime",
               stdin="The quick brown fox jumps over the lazy dog")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = perec("check", "-c", "e-prime", stdin="It is late")
    assert bad.returncode == 1 and "is a form of" in bad.stdout
