"""Old and unknown spellings heard as a reader hears them (constraints/spelling.py), and
a given line that ends in one rhymed with by the plan, the masks and the checker."""

import numpy as np
import pytest

from constraints.formspec import FormConstraint, FormPlan
from constraints.forms import check_form
from constraints.phonetics import sound
from constraints.spelling import by_analogy, heard_rhymes, read_unknown, respelt
from tests.test_formmask import random_poem


@pytest.mark.parametrize("old, modern", [
    ("fynd", "find"), ("loue", "love"), ("sweete", "sweet"), ("minde", "mind"), ("starre", "star"),
    ("beautie", "beauty"), ("vnto", "unto"), ("ioy", "joy"), ("sence", "sense"), ("deceiue", "deceive"),
    ("prick'd", "pricked"), ("spright", "sprite"), ("yeeld", "yield"), ("teares", "tears"),
    ("growne", "grown"), ("fayre", "fair"), ("mynde", "mind"), ("abhorre", "abhor"),
])
def test_old_spellings_are_respelt(old, modern):
    assert not sound(old).rhymes  # CMU lacks each: that is why it needs reading
    r = read_unknown(old)
    assert r is not None and r.how == "respelt" and r.as_word == modern
    assert r.rhymes == sound(modern).rhymes


def test_a_final_e_that_lengthens_the_vowel_is_not_dropped():
    # "clime" is not "clim": with one vowel and one consonant before it, the e is heard.
    assert respelt("clime", lambda w: bool(sound(w).rhymes)) != "clim"
    assert heard_rhymes("clime") == sound("time").rhymes


def test_unknown_words_are_read_by_analogy_or_not_at_all():
    assert by_analogy("bewaile") == "EY1 L"  # like "-aile" words
    assert by_analogy("xqzzt") is None  # no CMU word ends so
    assert read_unknown("xqzzt") is None and heard_rhymes("xqzzt") == frozenset()
    # Words that disagree ("love", "move", "cove") give no reading.
    assert by_analogy("jove") is None
    # A word CMU has only as letters is left to the reading that asks for letters.
    assert read_unknown("ibm") is None


def test_a_given_old_spelling_is_rhymed_with():
    fc = FormConstraint("couplet", ["Alas, I seek and seek but cannot fynd"])
    assert fc.given_rhymes["A"][0] == sound("find").rhymes
    assert any("'fynd'" in n and "'find'" in n for n in fc.notes())
    # The checker hears it the same way: "mind" rhymes, "day" does not.
    assert fc.check("The peace I lost so long ago of mind") == []
    assert any("does not rhyme" in v.message for v in fc.check("The peace I lost so long ago today"))
    report = check_form("couplet", "Alas, I seek and seek but cannot fynd\nThe peace I lost so long ago of mind")
    assert [v.message for ln in report.lines for v in ln.violations] == ["'fynd' is not in the CMU dictionary"]


def test_the_plan_rhymes_every_new_line_with_the_old_spelling():
    fc = FormConstraint("quatrain", ["My loue is like a starre", "That shines upon the sea"])
    plan = FormPlan(fc)
    assert plan.rhymes0  # the given rhymes reach the plan
    rng = np.random.default_rng(3)
    for _ in range(4):
        poem = random_poem(fc, rng)
        assert fc.check(poem) == [], poem
        line3 = poem.split("\n")[0]
        assert heard_rhymes(line3.split()[-1].strip(",.;:!?").lower()) & sound("star").rhymes


def test_the_tiny_model_rhymes_with_an_old_spelling(tiny_engine):
    import studio

    fc = FormConstraint("couplet", ["And all my hope is turn'd to raine and fynd"])
    for seed in range(3):
        r = studio.generate("", form=fc, seed=seed, engine=tiny_engine)
        assert fc.check(r.text) == [], r.text
        last = r.text.strip().split()[-1].strip(",.;:!?").lower()
        assert sound(last).rhymes & sound("find").rhymes, r.text
