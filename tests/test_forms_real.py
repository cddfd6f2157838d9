"""The real embedded model writes forms and word-level text; the independent checkers judge.

Kept short (a haiku, a limerick, a couplet line, one-syllable prose): a minute or two
on a laptop CPU.
"""

import pytest

import sys
from pathlib import Path

import studio
from constraints.formspec import FormConstraint
from constraints.forms import check_form

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from judges.fudge import judge  # noqa: E402  (the field's metric, independent of constraints/)

pytestmark = pytest.mark.real

SEE = "So long as men can breathe or eyes can see,"


def test_haiku(real_engine):
    r = studio.generate("autumn rain", form="haiku", engine=real_engine, seed=2)
    assert r.stop_reason == "eos", r.message
    report = check_form("haiku", r.text)
    assert report.ok, report.table()
    assert [ln.syllables for ln in report.lines] == [5, 7, 5]
    assert studio.check(r.text, "form:haiku") == []


def test_limerick_in_instruct_mode(real_engine):
    r = studio.generate("Write a limerick about a cat.", form="limerick", mode="instruct",
                        engine=real_engine, seed=1)
    assert r.stop_reason == "eos", r.message
    report = check_form("limerick", r.text)
    assert report.ok, report.table()
    assert len(r.text.split("\n")) == 5
    assert report.lines[0].rhyme_key == report.lines[1].rhyme_key == report.lines[4].rhyme_key


def test_couplet_continues_a_given_line(real_engine):
    r = studio.generate("", form="couplet-iambic;end=.?!", given=[SEE], engine=real_engine, seed=3)
    assert "\n" not in r.text and r.text.rstrip()[-1] in ".?!"
    assert FormConstraint("couplet-iambic", [SEE], ".?!").check(r.text) == []
    report = check_form("couplet-iambic", SEE + "\n" + r.text)
    assert report.ok, report.table()
    assert report.lines[1].syllables == 10 and report.lines[1].rhyme_key == "IY1"


@pytest.mark.parametrize("line13,seed", [
    (SEE, 3),  # sonnet 18
    ("Make thee another self, for love of me,", 10),  # sonnet 10
])
def test_couplet_passes_the_fudge_judge(real_engine, line13, seed):
    fc = FormConstraint("couplet-iambic", [line13], ".?!")
    r = studio.generate("", form=fc, engine=real_engine, seed=seed)
    assert fc.check(r.text) == []
    verdict = judge(line13, r.text.strip())
    assert verdict.ok, (r.text, verdict.reasons)


def test_haiku_continues_an_unfinished_first_line(real_engine):
    fc = FormConstraint("haiku", partial="Autumn wind")  # a draft's line without its break
    r = studio.generate("", form=fc, engine=real_engine, seed=4)
    assert r.prompt == "Autumn wind"
    poem = "Autumn wind" + r.text
    report = check_form("haiku", poem)
    assert report.ok, report.table()
    first = poem.split("\n")[0]
    assert first.startswith("Autumn wind") and len(first.split()) > 2  # line 1 goes on: 3 + 2 syllables
    assert len(poem.split("\n")) == 3


def test_one_syllable_prose(real_engine):
    r = studio.generate("The old house on the hill", "syllables:1", engine=real_engine, seed=1,
                        max_new_tokens=40)
    assert len(r.text.split()) >= 5
    assert studio.check(r.text, "syllables:1") == []
