"""The line search (studio/decode/search.py) on the tiny random llama: K candidate lines in
one batch, the likeliest kept, every line held to the form."""

import pytest

from constraints.spec import parse_spec
from studio.decode.search import LineSearch
from studio.decode.settings import Settings
from studio.request import Request, form_of, poem_prompt, prepare, with_form


def haiku(prompt="autumn rain"):
    c = with_form(None, "haiku")
    text, budget = poem_prompt(prompt, form_of(c), "continue")
    return c, text, budget


@pytest.mark.parametrize("width", [1, 3])
def test_a_searched_poem_keeps_its_form(tiny_engine, width):
    c, prompt, budget = haiku()
    s = LineSearch(tiny_engine, prompt, c, Settings(max_new_tokens=budget, seed=4), width=width)
    r = s.run()
    assert r.stop_reason == "eos" and r.search == width
    assert c.check(r.text) == [], r.text
    assert s.lines_decided == 2  # lines 1 and 2 were chosen among candidates; line 3 ends it


def test_the_kept_line_is_the_likeliest_candidate(tiny_engine):
    c, prompt, budget = haiku()
    s = LineSearch(tiny_engine, prompt, c, Settings(max_new_tokens=budget, seed=2), width=4)
    pieces = list(s)
    assert "".join(pieces) == s.result.text
    lines = s.result.text.split("\n")
    for i, step in enumerate(s.trace):
        cands = step["candidates"]
        assert len(cands) == 4 + len(step["planned"])  # the K lines, then any planned again
        ranks = [(ok, end_ok, mean) for (_, ok, mean), end_ok in zip(cands, step["end_word_ok"])]
        assert all(ranks[step["kept"]] >= r for r in ranks)
        assert cands[step["kept"]][0].rstrip("\n") == lines[i]  # the kept candidate is the line in the poem


def test_search_width_through_the_request_path(tiny_engine):
    p = prepare(Request(prompt="autumn rain", form="haiku", settings={"seed": 1}), tiny_engine)
    assert p.search == 4  # a poem searches by default
    assert prepare(Request(prompt="The sea", constraints="lipogram:e")).search == 1
    r = p.generate(tiny_engine)
    assert r.search == 4 and form_of(p.constraint).check(r.text) == []
    with pytest.raises(ValueError, match="variants or a search width"):
        prepare(Request(prompt="x", variants=2, search=3))
    with pytest.raises(ValueError, match="search must be a positive integer"):
        prepare(Request(prompt="x", search=0))


def test_a_cancelled_search_stops_every_row(tiny_engine):
    c, prompt, budget = haiku()
    s = LineSearch(tiny_engine, prompt, c, Settings(max_new_tokens=budget, seed=3), width=3)
    s.cancel()
    r = s.run()
    assert r.stop_reason == "cancelled" and r.tokens == 0


def test_prose_search_ranks_by_line(tiny_engine):
    spec = parse_spec("lipogram:e")
    s = LineSearch(tiny_engine, "A list of things:\n", spec, Settings(max_new_tokens=30, seed=5), width=2)
    r = s.run()
    assert spec.check(r.text) == [] and r.tokens > 0
