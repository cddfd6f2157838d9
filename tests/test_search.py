"""The line search (studio/decode/search.py) on the tiny random llama: K candidate lines in
one batch, the likeliest kept, every line held to the form."""

import math

import pytest

from constraints.spec import parse_spec
from studio.decode.search import LineSearch, resample_counts
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


# ---------------------------------------------------------------------- particles

def test_even_weights_are_not_resampled():
    assert resample_counts([0.0, 0.0, 0.0, 0.0], 0.3) is None
    assert resample_counts([-1.0, -1.1, -0.9, -1.0], 0.7) is None  # ESS near 4
    assert resample_counts([-5.0], 0.5) is None  # one particle: nothing to draw


def test_uneven_weights_are_drawn_again_systematically():
    # Weights 0.7, 0.1, 0.1, 0.1: ESS = 1 / (0.49 + 0.03) < 2, so resample.  Pointers at
    # (u + k) / 4 for u = 0.5: 0.125, 0.375, 0.625 fall in the first row's 0.7, 0.875 in
    # the third's [0.8, 0.9).
    logw = [math.log(0.7), math.log(0.1), math.log(0.1), math.log(0.1)]
    assert resample_counts(logw, 0.5) == [3, 0, 1, 0]
    assert resample_counts(logw, 0.0) == [3, 1, 0, 0]  # pointers 0, 0.25, 0.5, 0.75, 0.75 > 0.7 -> row 2
    # A row with no mass left gets no copy; the counts always sum to the rows.
    for u in (0.0, 0.2, 0.9):
        counts = resample_counts([0.0, float("-inf"), -8.0, -0.1], u)
        assert sum(counts) == 4 and counts[1] == 0


def test_kept_mass_is_the_allowed_share_of_the_models_own_distribution(tiny_engine):
    # A synthetic rule on the real vocabulary: tokens holding "e" are banned (lipogram:e is
    # character level, so the allowed set is known without the mask: every token with text
    # that has no e, accented or not, and end of text when the row may end).
    import unicodedata

    import torch
    from studio.decode.generation import Generation

    def no_e(t: str) -> bool:
        bare = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
        return bool(t) and "e" not in bare.lower()

    spec = parse_spec("lipogram:e")
    g = Generation(tiny_engine, "The sea", spec, Settings(max_new_tokens=3, seed=1))
    g.track_likelihood = g.track_kept_mass = True
    g.run()
    assert len(g.kept_mass) == g.result.tokens
    texts, eos = tiny_engine.vocab.texts, tiny_engine.vocab.eos_ids
    for (token, logits, *_), kept in zip(g.history, g.kept_mass):
        logp = torch.log_softmax(logits.float(), dim=-1)
        ok = torch.tensor([no_e(t) or i in eos for i, t in enumerate(texts)])
        free = torch.logsumexp(logp[ok], dim=-1)
        assert float(kept) <= 0 and abs(float(kept) - float(free)) < 1e-3
        assert float(logp[token]) <= float(kept) + 1e-6  # the token is inside the kept mass


@pytest.mark.parametrize("weight", ["likelihood", "mass"])
def test_particles_resample_a_costly_rule_and_every_row_keeps_it(tiny_engine, weight):
    spec = parse_spec("syllables:1 & lipogram:e")
    for seed in (1, 2):
        s = LineSearch(tiny_engine, "The sea", spec, Settings(max_new_tokens=40, seed=seed), width=4,
                       particle_weight=weight)
        r = s.run()
        assert spec.check(r.text) == [] and r.tokens > 0
        assert s.resamples > 0  # the rule's cost made the weights uneven
        assert all(len(t["candidates"]) == 4 + len(t["planned"]) for t in s.trace)  # K rows kept
        off = LineSearch(tiny_engine, "The sea", spec, Settings(max_new_tokens=40, seed=seed), width=4,
                         particles=False)
        assert spec.check(off.run().text) == [] and off.resamples == 0


def test_a_rule_that_masks_nothing_never_resamples_by_mass(tiny_engine):
    # The control: with no rule only the tokens no text may hold (special and empty ones) are
    # masked, so every mass weight is about log 1 and the rows stay as sampled.
    s = LineSearch(tiny_engine, "The sea", None, Settings(max_new_tokens=30, seed=3), width=4,
                   particle_weight="mass")
    s.run()
    kept = [float(m) for m in s.first[0].kept_mass]
    assert s.resamples == 0 and kept and all(-0.05 < m <= 1e-6 for m in kept)


def test_the_kept_mass_is_only_computed_for_the_mass_weight(tiny_engine):
    spec = parse_spec("lipogram:e")
    s = LineSearch(tiny_engine, "The sea", spec, Settings(max_new_tokens=12, seed=2), width=2)
    r = s.run()
    assert r.tokens > 0 and s.first[0].logprobs and s.first[0].kept_mass == []


def test_particle_settings_are_checked():
    with pytest.raises(ValueError, match="particle_weight must be one of likelihood, mass"):
        prepare(Request(prompt="x", search=2, particle_weight="beam"))
    with pytest.raises(ValueError, match="particles must be true or false"):
        prepare(Request(prompt="x", search=2, particles="yes"))
