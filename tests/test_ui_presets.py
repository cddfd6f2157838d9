"""The studio's presets for the rules writers state in words (issue 17): each fills the
agreed spec in from the writer's N, word or phrase, through the studio's own callback (the
handler a preset button calls), and the spec it adds parses.  Where a preset's rule is not
on this checkout yet, the parse half skips by name; the spec it fills in is checked still."""

from __future__ import annotations

import pytest

from constraints.base import SpecError
from constraints.spec import parse_spec
from studio.ui import rules
from studio.ui.callbacks import Handlers
from studio.ui.session import Session

# (preset, what the writer typed in the box, the spec it fills in)
CASES = [
    ("No commas", "", 'ban:","'),
    ("N paragraphs", "3", "paragraphs:3"),
    ("A bulleted list of N", " 4 ", "bullets:4"),
    ("A title", "", "title"),
    ("End with…", 'Is there anything else? Say "yes", or no.', 'ends-with-text:"Is there anything else? Say \\"yes\\", or no."'),
    ("Use the word … N times", "river 3", "count-word:river,3"),
    ("Use the word … N times", "river, >=3", "count-word:river,>=3"),
    ("Answer in JSON", "", "json"),
]


def _parses(spec: str) -> str | None:
    """Why ``spec`` does not parse on this checkout (its rule not here yet), or None."""
    try:
        parse_spec(spec)
    except SpecError as e:
        return str(e)
    return None


@pytest.mark.parametrize("label, arg, want", CASES)
def test_a_preset_fills_in_the_agreed_spec(label, arg, want):
    assert label in rules.PRESETS
    assert rules.preset_spec(label, arg) == want


@pytest.mark.parametrize("label, arg, want", CASES)
def test_a_preset_button_adds_its_rule_through_the_callback(studio_local, label, arg, want):
    why = _parses(want)
    if why:
        pytest.skip(f"not on this checkout yet: {why}")
    h, session = Handlers(studio_local), Session()
    out = h.preset(label, "t", rules.DEFAULT_WORD_BANK, arg, session)
    assert out[-1] == ""  # no warning
    spec = parse_spec(want).spec()
    assert session.active == [spec] and parse_spec(out[2])
    # Pressed again, the preset replaces its own rule: it never piles up.
    h.preset(label, "t", rules.DEFAULT_WORD_BANK, arg, session)
    assert session.active == [spec]


@pytest.mark.parametrize("label, arg, words", [
    ("N paragraphs", "  ", "give a number"),
    ("End with…", "", "give the closing phrase"),
    ("Use the word … N times", "river", "give a word and a count"),
])
def test_a_preset_with_an_empty_box_says_what_it_needs(studio_local, label, arg, words):
    with pytest.raises(rules.RuleError, match=words):
        rules.preset_spec(label, arg)
    # Through the callback: the rule set is unchanged and the page says why, in one line.
    h, session = Handlers(studio_local), Session()
    out = h.preset(label, "t", rules.DEFAULT_WORD_BANK, arg, session)
    assert session.active == [] and words in str(out[-1])


def test_every_preset_has_its_own_button_and_endpoint():
    slugs = [rules.preset_slug(label) for label in rules.PRESETS]
    assert len(set(slugs)) == len(slugs)
    # The names the page and the API already use stay as they were.
    assert rules.preset_slug("Lipogram (no e)") == "lipogram" and rules.preset_slug("Haiku") == "haiku"
    assert rules.preset_slug("N paragraphs") == "n_paragraphs" and rules.preset_slug("A title") == "a_title"


def test_the_page_has_a_button_and_an_endpoint_per_preset(tiny_engine, tmp_path):
    from studio.ui import build_app
    from studio.ui.config import UiConfig

    demo = build_app(tiny_engine, config=UiConfig.from_env(space=False, data=tmp_path))
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    for label in rules.PRESETS:
        assert "studio_preset_" + rules.preset_slug(label) in names, label
