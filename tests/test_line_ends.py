"""Line ends a reader accepts (constraints/line_ends.py) and the end word planned before its
line is written (constraints.formspec.Planned, studio/decode/search.py)."""

import numpy as np
import pytest
import torch

import studio.decode.search as search_mod
from constraints.formspec import FormConstraint, FormPlan
from constraints.forms import check_form
from constraints.line_ends import CLOSED, is_fragment, may_end_line
from constraints.units import iter_words
from studio.decode.search import LineSearch
from studio.decode.settings import Settings
from studio.masks.forms import FormMasker
from studio.request import form_of, poem_prompt, with_form
from tests.test_formmask import SEE, random_poem


@pytest.mark.parametrize("word", ["the", "of", "my", "a", "and", "they're", "mer", "pas", "bis"])
def test_words_no_phrase_ends_on(word):
    assert not may_end_line(word)


@pytest.mark.parametrize("word", ["sea", "me", "thee", "be", "so", "night", "in", "love", "die", "sin"])
def test_words_a_line_may_end_on(word):
    assert may_end_line(word) and not is_fragment(word)


@pytest.mark.parametrize("name", ["haiku", "limerick", "sonnet-iambic"])
def test_plan_never_ends_a_line_on_a_function_word_or_fragment(name):
    rng = np.random.default_rng(11)
    fc = FormConstraint(name)
    plan = FormPlan(fc)
    for i in range(len(plan.lines)):
        ends = {plan.t.words[w] for w in plan.end_words(i, plan.rhymes0)}
        assert ends and not ends & CLOSED and not any(is_fragment(w) for w in ends)
    for _ in range(4):
        poem = random_poem(fc, rng)
        assert check_form(fc.form, poem).ok
        for line in poem.split("\n"):
            assert may_end_line([m.group() for m in iter_words(line)][-1].lower())


def test_enjamb_lets_a_line_end_anywhere():
    loose = FormPlan(FormConstraint("haiku", enjamb=True))
    assert "the" in {loose.t.words[w] for w in loose.end_words(0, loose.rhymes0)}
    assert FormConstraint.from_arg("haiku;enjamb").enjamb


def planned_walk(vocab, fc, seed, steps=600):
    """Tokens drawn uniformly from what the form's mask allows, each line's end word planned
    at random first: the poem, and the planned words."""
    m = FormMasker(fc, vocab)
    m.reset("")
    g = torch.Generator().manual_seed(seed)
    text, planned = "", []
    for _ in range(steps):
        words = m.end_words()
        if words:
            w = words[int(torch.randint(len(words), (1,), generator=g))]
            m.plan_end(w)
            planned.append(w)
        ids = m.allowed(10_000).nonzero().flatten()
        assert len(ids), f"dead end after {text!r}"
        t = int(ids[torch.randint(len(ids), (1,), generator=g)])
        if t in vocab.eos_ids:
            assert m.done_ok()
            return text, planned
        m.advance(t)
        text += vocab.texts[t]
    raise AssertionError(f"no end in {steps} tokens: {text!r}")


@pytest.mark.parametrize("name,given", [("haiku", ()), ("couplet", (SEE,)), ("limerick", ())])
def test_every_line_ends_on_its_planned_word(tiny_engine, name, given):
    fc = FormConstraint(name, list(given))
    for seed in range(3):
        text, planned = planned_walk(tiny_engine.vocab, fc, seed)
        text = text.lstrip("\n")
        lines = text.rstrip("\n").split("\n")
        assert len(lines) == len(planned) == fc.form.n_lines - len(given)
        for line, w in zip(lines, planned):
            assert [m.group() for m in iter_words(line)][-1].lower() == w
        assert fc.check(text) == [], (text, fc.check(text))


def test_a_word_that_cannot_end_the_line_is_refused(tiny_engine):
    m = FormMasker(FormConstraint("haiku"), tiny_engine.vocab)
    m.reset("")
    with pytest.raises(ValueError, match="cannot end line 1"):
        m.plan_end("the")


def test_the_search_replans_a_line_and_its_planned_rows_keep_their_word(tiny_engine, monkeypatch):
    # Every last word falls below a floor of 0 nats, so every line is written again planned.
    monkeypatch.setattr(search_mod, "END_WORD_FLOOR", 0.0)
    c = with_form(None, "haiku")
    prompt, budget = poem_prompt("autumn rain", form_of(c), "continue")
    s = LineSearch(tiny_engine, prompt, c, Settings(max_new_tokens=budget, seed=3), width=3)
    r = s.run()
    assert r.stop_reason == "eos" and c.check(r.text) == [], r.text
    assert s.replanned == len(s.trace) == 3
    for step in s.trace:
        assert step["planned"] and len(step["candidates"]) == 3 + len(step["planned"])
        for (line, ok, _), w in zip(step["candidates"][3:], step["planned"]):
            if ok:
                assert [m.group() for m in iter_words(line)][-1].lower() == w
    off = LineSearch(tiny_engine, prompt, c, Settings(max_new_tokens=budget, seed=3), width=3, plan_ends=False)
    off.run()
    assert off.replanned == 0 and all(not st["planned"] for st in off.trace)


@pytest.mark.real
def test_real_couplet_ends_where_a_phrase_can(real_engine):
    import studio

    fc = FormConstraint("couplet-iambic", ["Then let the winds of winter blow and freeze,"], ".?!")
    for seed in range(3):
        r = studio.generate("", form=fc, seed=seed, engine=real_engine)
        text = r.text.strip()
        assert fc.check(r.text) == [], text
        last = [m.group() for m in iter_words(text)][-1].lower()
        assert may_end_line(last) and not text.endswith(".."), text
