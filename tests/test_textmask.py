"""Whole-text maskers on the tiny random llama (real tokenizer): must-use words, pangrams,
rhopalism, E-Prime through the word masks, text transforms as decoding constraints."""

import pytest

from constraints.base import ImpossibleConstraint
from studio.masks.include import IncludeMasker
from studio.decode.maskset import compile_masks
from studio.decode.settings import Settings
from constraints.spec import parse_spec
from studio.masks.include import forcing


def generate(engine, spec, n=40, seed=0, prompt="The old house", **kw):
    c = parse_spec(spec)
    g = engine.stream(prompt, c, Settings(max_new_tokens=n, seed=seed, **kw))
    pieces = list(g)  # streamed
    assert "".join(pieces) == g.result.text
    return g, c


def include_masker(engine, spec):
    ms = compile_masks(parse_spec(spec), engine.vocab).maskers
    return next(m for m in ms if isinstance(m, IncludeMasker)), ms


# ------------------------------------------------------------------ include


@pytest.mark.parametrize("seed", range(3))
def test_include_puts_every_word_in_sampled_streamed_text(tiny_engine, seed):
    g, c = generate(tiny_engine, "include:lighthouse,orange,whisper", n=40, seed=seed)
    assert c.check(g.result.text) == []
    m = next(m for m in g.masks if isinstance(m, IncludeMasker))
    assert not m.missing and m.forced <= g.result.tokens
    report = forcing(g)
    assert report["words"] == ["lighthouse", "orange", "whisper"]
    assert set(report["forced_words"]) <= set(report["words"]) and report["forced_tokens"] == m.forced


def test_include_budget_holds_within_the_first_n_tokens(tiny_engine):
    g, c = generate(tiny_engine, "include:lighthouse,orange@20", n=50, seed=4)
    first = tiny_engine.vocab.decode(g.result.token_ids[:20])
    assert c.check(first) == [], first


def test_include_forms_and_greedy_with_other_rules(tiny_engine):
    g, c = generate(tiny_engine, "include-forms:sail,storm & lipogram:z & syllables:<=2", n=40,
                    greedy=True)
    assert c.check(g.result.text) == []


def test_include_counts_tokens_per_word_and_forces_only_progress(tiny_engine):
    m, _ = include_masker(tiny_engine, "include:orange")
    tok = tiny_engine.tokenizer
    assert m.cost["orange"] == len(tok.encode(" orange", add_special_tokens=False))
    m.reset("")
    assert m.allowed(100) is None  # room to spare: only steering
    forced = m.allowed(m.cost["orange"])
    texts = [tiny_engine.vocab.texts[i] for i in forced.nonzero().flatten().tolist()]
    assert texts and all(t.strip().lower() and "orange".startswith(t.strip().lower()[:6]) for t in texts)
    assert " orange" in texts and " the" not in texts
    assert not bool(forced[tiny_engine.vocab.eos_ids[0]])  # never ends with a word missing


def test_include_state_follows_words_across_tokens(tiny_engine):
    m, _ = include_masker(tiny_engine, "include:lighthouse")
    tok = tiny_engine.tokenizer
    m.reset("")
    for t in tok.encode(" the lighthouse", add_special_tokens=False):
        m.advance(t)
    assert m.done_ok()  # the word in progress counts as finished at the end
    for t in tok.encode("keeper", add_special_tokens=False):
        m.advance(t)
    assert not m.done_ok() and m.missing == {"lighthouse"}
    snap = m.snapshot()
    for t in tok.encode(" lighthouse.", add_special_tokens=False):
        m.advance(t)
    assert not m.missing
    m.restore(snap)
    assert m.missing == {"lighthouse"}


def test_include_steers_toward_missing_words(tiny_engine):
    m, _ = include_masker(tiny_engine, "include:orange")
    m.reset("")
    early, late = m.bias(200), m.bias(12)
    i = tiny_engine.tokenizer.encode(" orange", add_special_tokens=False)[0]
    the = tiny_engine.tokenizer.encode(" the", add_special_tokens=False)[0]
    assert late[i] >= early[i] > 0 and early[the] == 0


@pytest.mark.parametrize("spec, conflict", [
    ("include:elephant & lipogram:e", "'lipogram:e'"),
    ("include:cat,elephant & syllables:1", "'syllables:1'"),
    ("include:elephant & starts-with:c", "'starts-with:c'"),
    ("include:Elephant & no-spaces & lowercase & lipogram:p", "'lipogram:p'"),
])
def test_include_refuses_a_word_the_other_rules_make_impossible(tiny_engine, spec, conflict):
    with pytest.raises(ImpossibleConstraint) as e:
        tiny_engine.stream("The old house", parse_spec(spec))
    assert "elephant" in str(e.value) and conflict in str(e.value)


def test_include_refuses_a_budget_too_small_for_its_words(tiny_engine):
    with pytest.raises(ImpossibleConstraint, match=r"at least \d+ tokens, more than the budget @2"):
        tiny_engine.stream("The old house", parse_spec("include:lighthouse,orange,whisper@2"))


def test_include_works_with_uppercase_words(tiny_engine):
    g, c = generate(tiny_engine, "include:orange,sky & uppercase", n=30, seed=2)
    assert c.check(g.result.text) == [] and "ORANGE" in g.result.text


# ------------------------------------------------------------------ pangram


def test_pangram_within_200_tokens(tiny_engine):
    g, c = generate(tiny_engine, "pangram", n=200, seed=1)
    assert c.check(g.result.text) == []


def test_pangram_with_a_word_rule(tiny_engine):
    g, c = generate(tiny_engine, "pangram:qxzj & syllables:1", n=40, seed=0)
    assert c.check(g.result.text) == []


def test_pangram_and_lipogram_on_the_same_letter_are_refused(tiny_engine):
    with pytest.raises(ImpossibleConstraint, match="'pangram' needs the letter 'e' but 'lipogram:e'"):
        tiny_engine.stream("The old house", parse_spec("pangram & lipogram:e"))


# ------------------------------------------------------------------ rhopalism


@pytest.mark.parametrize("spec", ["rhopalism", "rhopalism:letters+restart", "rhopalism:syllables"])
def test_rhopalism_output_obeys_check(tiny_engine, spec):
    c = parse_spec(spec)
    r = tiny_engine.generate("The old house", c, Settings(max_new_tokens=30, seed=3))
    assert r.tokens > 5
    assert c.check(r.text) == [], r.text


def test_rhopalism_masks_follow_the_chain(tiny_engine):
    from studio.masks.rhopalism import RhopalismMasker

    (m,) = compile_masks(parse_spec("rhopalism"), tiny_engine.vocab).maskers
    assert isinstance(m, RhopalismMasker)
    tok, texts = tiny_engine.tokenizer, tiny_engine.vocab.texts
    m.reset("")
    for t in tok.encode(" I am", add_special_tokens=False):
        m.advance(t)
    allowed = m.allowed(50)
    ok = {texts[i] for i in allowed.nonzero().flatten().tolist()}
    # "am" is done (2 letters): the next word has 3, " a" may still become "and".
    assert {" the", " was", " a", "."} <= ok and not {" them", " that", " which"} & ok


# ------------------------------------------------------------------ E-Prime


def test_e_prime_blocks_contractions_split_across_tokens(tiny_engine):
    (m,) = compile_masks(parse_spec("e-prime"), tiny_engine.vocab).maskers
    tok = tiny_engine.tokenizer
    s = tok.encode("'s", add_special_tokens=False)
    assert len(s) == 1
    m.reset("")
    for t in tok.encode(" it", add_special_tokens=False):
        m.advance(t)
    assert not bool(m.allowed(50)[s[0]])  # "it" + "'s" = "it's"
    m.reset("")
    for t in tok.encode(" cat", add_special_tokens=False):
        m.advance(t)
    assert bool(m.allowed(50)[s[0]])  # "cat's" is fine
    g, c = generate(tiny_engine, "e-prime", n=40, seed=5)
    assert c.check(g.result.text) == []


# ------------------------------------------------------------------ transforms


@pytest.mark.parametrize("spec", ["uppercase", "lowercase", "title-case", "no-punctuation",
                                  "letters-only", "alphanumeric", "no-spaces",
                                  "reverse-lipogram:a"])
def test_text_transforms_constrain_what_is_generated(tiny_engine, spec):
    g, c = generate(tiny_engine, spec, n=25, seed=6)
    assert g.result.tokens > 0 and c.check(g.result.text) == [], g.result.text
