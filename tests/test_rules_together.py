"""Rules that must all be met in one budget: counts beside counts, a layout, a grammar and
word rules (studio/decode/maskset.py MaskSet.budgets, the layout's last slot, the
grammar's closing).  Each used to leave no allowed token near the end (a dead end) on
IFEval prompts; on the tiny model every output now ends in time and passes check()."""

from __future__ import annotations

import pytest

from constraints.base import ImpossibleConstraint
from constraints.spec import parse_spec
from studio.decode.maskset import compile_masks
from studio.decode.settings import Settings
from tests.conftest import streamed_and_checked
from tests.test_counts import generate


@pytest.mark.parametrize("spec", [
    "count-text:war,>=3 & count-text:peace,>=3",
    "count-text:atlantis,>=1 & count-text:constable,>=1 & count-text:bill,>=1",
    'count-text:skyscraper,>=3 & ends-with-text:"Is there anything else I can help with?"',
    'count-text:river,>=2 & postscript:"P.S."',
    "include:stone & count-text:moon,>=2",
])
@pytest.mark.parametrize("seed", range(3))
def test_counts_and_layouts_share_the_budget(tiny_engine, spec, seed):
    text, c, g = generate(tiny_engine, spec, n=48, seed=seed)
    assert g.result.stop_reason != "dead_end", (spec, g.result.message)
    assert c.check(text) == [], (spec, text)


def test_two_counts_never_force_at_once(tiny_engine):
    # Write " the" whenever it is allowed (no progress at all), else what the masks force.
    vocab = tiny_engine.vocab
    filler = vocab.texts.index(" the")
    ms = compile_masks(parse_spec("count-text:war,>=2 & count-text:peace,>=2"), vocab)
    ms.reset("")
    first, second = ms.budgets(30)
    assert second < first  # the later one plans with what the earlier keeps: it forces first
    for steps in range(30, 0, -1):
        allowed = ms.step_mask(steps)
        assert bool(allowed.any()), steps
        assert sum(m._forcing for m in ms) <= 1, steps
        ms.advance(filler if bool(allowed[filler]) else int(allowed.nonzero()[0]))
    assert ms.done_ok()


def test_a_count_under_uppercase_is_forced_in_capitals(tiny_engine):
    for seed in range(3):
        text, c, g = generate(tiny_engine, "uppercase & count-text:sneaker,>=2", n=48, seed=seed)
        assert g.result.stop_reason != "dead_end", g.result.message
        assert c.check(text) == [] and text.count("SNEAKER") >= 2, text


def test_a_word_count_is_forced_where_a_word_starts(tiny_engine):
    # Forcing " river" after "ove" would write "overiver": every forced one stands alone.
    for seed in range(3):
        text, c, _g = generate(tiny_engine, "count-text:river,>=3", n=20, seed=seed)
        assert c.check(text) == []
        assert text.lower().count("river") == len([w for w in text.lower().split() if w.strip(".,;:!?\"'").startswith("river")]), text


def test_sentences_open_in_lower_case_under_lowercase(tiny_engine):
    for seed in range(2):
        text, c, g = generate(tiny_engine, "lowercase & sentences:2", n=60, seed=seed)
        assert g.result.stop_reason != "dead_end", g.result.message
        assert c.check(text) == [] and text == text.lower(), text


def test_a_json_answer_waits_for_its_counts(tiny_engine):
    for seed in range(3):
        text, c, g = generate(tiny_engine, "json & count-text:moon,>=2", n=64, seed=seed)
        assert g.result.stop_reason != "dead_end", g.result.message
        assert c.check(text) == [], text


def test_the_layouts_own_words_pass_word_rules(tiny_engine):
    # "P.S." is not in the English word list: the layout writes it, the word rule lets it.
    text, c, g = generate(tiny_engine, 'language:en & postscript:"P.S."', n=48)
    assert g.result.stop_reason != "dead_end", g.result.message
    assert c.check(text) == [] and "\n\nP.S. " in text, text


@pytest.mark.parametrize("spec", [
    'wrap:"\\"" & count-letter:l,>=3',
    "title & caps-words:>=2",
    "bullets:2 & count-letter:j,>=1",
    "json & count-text:medalist,>=1",
    'starts-with-text:"Write about moms." & count-text:mother,>=1',
])
def test_a_required_occurrence_is_probed_where_free_text_starts(tiny_engine, spec):
    compile_masks(parse_spec(spec), tiny_engine.vocab)  # not refused
    text, c, g = generate(tiny_engine, spec, n=64)
    assert g.result.stop_reason != "dead_end", g.result.message
    assert c.check(text) == [], text


def test_a_literal_over_a_count_is_refused(tiny_engine):
    spec = 'starts-with-text:"Always right, right?" & count-text:right,<=1'
    with pytest.raises(ImpossibleConstraint, match="already writes 2"):
        compile_masks(parse_spec(spec), tiny_engine.vocab)


def test_real_model_meets_two_counts_and_a_closing_phrase(real_engine):
    # The embedded model on an IFEval-like request: both words often enough, the closing
    # phrase last, in one budget (these used to dead-end a few tokens from the end).
    c = parse_spec('count-text:war,>=3 & count-text:peace,>=3 & ends-with-text:"Is there anything else?"')
    text, g = streamed_and_checked(real_engine, "Write a short essay about war and peace.", c,
                                   Settings(max_new_tokens=120, seed=0))
    assert g.result.stop_reason != "dead_end" and text.endswith("Is there anything else?"), text
