"""Forms heard as the field hears them (primary pronunciations, perfect rhyme), and the
writer's own text: an unfinished last line is continued, unknown words are estimated."""

import numpy as np
import pytest

from constraints.formspec import FormConstraint, FormPlan, split_draft
from constraints.forms import check_form
from constraints.phonetics import Reading, metres
from constraints.spec import parse_spec
from studio.decode.sampling import Settings
from studio.masks.forms import form_index
from studio.request import Request, form_of, poem_prompt, prepare, with_form
from tests.test_formmask import random_poem

LENIENT = Reading(lenient=True)


def test_metre_by_primary_pronunciation():
    # One-syllable words CMU stresses take either beat; unstressed ones ("the": AH0) a weak beat.
    assert metres("love") == {"2"} and metres("the") == {"0"}
    assert check_form("custom:4/-/iambic", "the cat and dog").ok
    report = check_form("custom:2/-/iambic", "love the")
    assert not report.ok and "does not fit 01" in report.violations[0].message
    assert check_form("custom:2/-/iambic", "love the", LENIENT).ok  # any one-syllable word bends
    # A secondary stress fits either beat (FUDGE's reading): "understand" is 2 0 1.
    assert metres("understand") == {"201"}
    assert check_form("custom:4/-/iambic", "we understand").ok
    assert not check_form("custom:4/-/iambic", "understand it").ok  # the 0 lands on a strong beat
    # "again" is AH0 G EH1 N first: two syllables, iambic.
    assert check_form("custom:2/-/iambic", "again").ok and not check_form("custom:2/-/trochaic", "again").ok


def test_perfect_rhyme_by_primary_pronunciation():
    # "again" rhymes from its last stressed vowel, primary reading EH1 N: "then", not "rain".
    assert check_form("custom:2-2/AA", "again\nand then").ok
    report = check_form("custom:2-2/AA", "again\nthe rain")
    assert not report.ok and "does not rhyme" in report.violations[0].message
    assert check_form("custom:2-2/AA", "again\nthe rain", LENIENT).ok
    # Identical from the last stressed vowel on: "motion" / "ocean" (OW1 SH AH0 N), not "nation".
    assert check_form("custom:2-2/AA", "motion\nocean").ok
    assert not check_form("custom:2-2/AA", "motion\nnation").ok


def test_strict_form_plan_agrees_with_the_strict_check():
    rng = np.random.default_rng(11)
    for spec in ("couplet-iambic", "limerick", "custom:2-2/AA"):
        fc = FormConstraint(spec)
        for _ in range(4):
            poem = random_poem(fc, rng)
            assert check_form(fc.form, poem).ok, check_form(fc.form, poem).table()
    lenient = FormConstraint("couplet-iambic", reading=LENIENT)
    for _ in range(4):
        poem = random_poem(lenient, rng)
        assert check_form(lenient.form, poem, LENIENT).ok


def test_given_line_with_an_unknown_word_is_accepted():
    # Sonnet 104's 13th line ends in "unbred", which CMU lacks: not refused, and heard like
    # the words that end in "-bred" (constraints/spelling.py).
    fc = FormConstraint("couplet-iambic", ["For fear of which, hear this, thou age unbred;"], ".?!")
    assert fc.given_rhymes["A"][0] == frozenset({"EH1 D"})
    assert "'unbred'" in " ".join(fc.notes())
    # A word no reading can hear leaves the rhyme unknown.
    fc = FormConstraint("couplet-iambic", ["For fear of which, hear this, thou age xqzzt;"], ".?!")
    assert "A" not in fc.given_rhymes
    notes = " ".join(fc.notes())
    assert "'xqzzt'" in notes and "rhyme is" in notes and "unknown" in notes
    rng = np.random.default_rng(5)
    for _ in range(3):
        line = random_poem(fc, rng)
        assert [v for v in fc.check(line + ".") if "rhyme" in v.message] == []
    report = check_form("couplet", "The xqzzt sits upon the mat all day\nAnd thinks of nothing more than how to play")
    [line1] = [ln for ln in report.lines if ln.estimated]
    assert line1.estimated == ["xqzzt"] and "~ estimated from spelling" in report.table()


def test_given_rhyme_word_outside_the_common_words_is_kept():
    # Sonnet 14's 13th line ends in "prognosticate" (zipf < 3): not in the writer's table,
    # but its rhyme is known, so the new line rhymes with it from the common words.
    fc = FormConstraint("couplet", ["Or else of thee this I prognosticate:"])
    plan = FormPlan(fc)
    assert "prognosticate" not in plan.t.index and plan.rhymes0[0][0] == "A"
    line = random_poem(fc, np.random.default_rng(1))
    assert fc.check(line) == []


def test_unfinished_line_is_continued_by_the_plan():
    fc = FormConstraint("haiku", partial="Autumn wind")
    plan = FormPlan(fc)
    line, U = plan.opening()
    assert line == 0 and U == frozenset({3})  # three of the first line's five syllables
    rng = np.random.default_rng(2)
    for _ in range(4):
        rest = " " + random_poem(fc, rng)  # two more syllables on line 1, then lines 2 and 3
        assert fc.check(rest) == [] and check_form("haiku", "Autumn wind" + rest).ok
    lines, partial = split_draft("An old silent pond\nA frog jumps")
    assert lines == ("An old silent pond",) and partial == "A frog jumps"
    full = FormConstraint("haiku", partial="An old silent pond")  # nothing left to add
    assert full.partial == "" and full.given == ("An old silent pond",)
    assert "already has 5 syllables" in full.notes()[0]


@pytest.mark.parametrize("form,given,partial", [
    ("haiku", [], "Autumn wind"),
    ("haiku", [], "Autumn wind,"),
    ("couplet", ["So long as men can breathe or eyes can see,"], "So long lives"),
    ("limerick", ["There once was a man from the sea"], "Who"),
])
def test_tiny_model_continues_an_unfinished_line(tiny_engine, form, given, partial):
    c = form_of(with_form(None, FormConstraint(form, given, partial=partial)))
    prompt, budget = poem_prompt("", c, "continue")
    assert prompt.endswith(partial) and not prompt.endswith("\n")
    for seed in range(3):
        r = tiny_engine.generate(prompt, c, Settings(max_new_tokens=budget, seed=seed))
        assert r.stop_reason == "eos", (r.stop_reason, r.message, r.text)
        assert c.check(r.text) == [], (r.text, c.check(r.text))
        poem = "".join(ln + "\n" for ln in given) + partial + r.text
        assert check_form(form, poem).ok, check_form(form, poem).table()
        assert not r.text.startswith("\n")  # the unfinished line goes on
        assert len(poem.strip().split("\n")) == c.form.n_lines


def test_a_given_string_without_a_last_line_break_is_continued():
    p = prepare(Request(form="haiku", given="Autumn wind"))
    assert p.form.partial == "Autumn wind" and p.prompt == "Autumn wind"
    p = prepare(Request(form="haiku", given="Autumn wind\n"))
    assert p.form.partial == "" and p.form.given == ("Autumn wind",) and p.prompt == "Autumn wind\n"
    p = prepare(Request(form="haiku", given=["Autumn wind"]))  # a list holds complete lines
    assert p.form.partial == "" and p.prompt == "Autumn wind\n"


def test_studio_continues_the_draft_s_unfinished_line(tmp_path, tiny_engine):
    from studio.ui.config import UiConfig
    from studio.ui.work import SettingsIn, Studio

    studio = Studio(UiConfig.from_env(space=False, data=tmp_path), engine=tiny_engine)
    req, base = studio.request("Autumn wind", [], "haiku", SettingsIn(seed=1))
    assert req.given == "Autumn wind" and base == "Autumn wind"  # no line break added
    gen, _note, base = studio.start("Autumn wind", [], "haiku", SettingsIn(seed=1))
    text = gen.run().text
    assert check_form("haiku", base + text).ok, base + text
    _req, base = studio.request("Autumn wind\n", [], "haiku", SettingsIn(seed=1))
    assert base == "Autumn wind\n"


def test_form_index_opens_inside_the_unfinished_line(tiny_engine):
    fc = FormConstraint("haiku", partial="Autumn wind")
    fi = form_index(fc, tiny_engine.vocab)
    st = fi.start("Autumn wind")
    assert st.line == 0 and st.U == frozenset({3})
    m = fi.mask(st)
    newline = tiny_engine.vocab.texts.index("\n")
    assert not bool(m[newline])  # two syllables are still owed
    space = tiny_engine.vocab.texts.index(" ")
    assert bool(m[space])


def test_form_options_in_the_spec_language():
    c = parse_spec("form:couplet-iambic;end=.?!;lenient")
    assert c.reading == LENIENT and c.end == ".?!"
    assert c.spec() == "form:couplet-iambic;end=.?!;lenient"
    assert parse_spec(c.spec()) == c
