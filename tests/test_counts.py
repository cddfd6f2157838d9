"""Occurrence counts (count-text, count-word, count-letter, caps-words, placeholders,
highlights) and literal bans: check() on hand-made texts against IFEval's own counting,
the decoder's automata against check() on random texts, and the masks on the tiny model,
where every output passes check()."""

from __future__ import annotations

import collections
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constraints.base import ImpossibleConstraint, SpecError
from constraints.spec import parse_spec
from studio.decode.maskset import compile_masks
from studio.decode.settings import Settings
from studio.masks.counts import CountMasker
from studio.masks.occurrences import counter_for


def n_found(spec: str, text: str) -> int:
    return len(parse_spec(spec).spans(text))


# IFEval's counting, as lm_eval/tasks/ifeval/instructions.py writes it (the reference).
def ifeval_keyword(text, keyword):
    return len(re.findall(keyword, text, flags=re.IGNORECASE))


def ifeval_letter(text, letter):
    return collections.Counter(text.lower())[letter]


def ifeval_placeholders(text):
    return len(re.findall(r"\[.*?\]", text))


def ifeval_highlights(text):
    n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip())
    return n + sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", text) if h.removeprefix("**").removesuffix("**").strip())


# ------------------------------------------------------------------ check()

@pytest.mark.parametrize("text", ["The river, the RIVER and the riverbank.", "aaaa", "no match", "Rivers\nriver"])
def test_count_text_counts_as_ifeval_counts_a_keyword(text):
    for lit in ("river", "aa", "the"):
        assert n_found(f"count-text:{lit},>=0", text) == ifeval_keyword(text, lit)


def test_count_text_case_and_literals_of_any_character():
    assert n_found("count-text:The,1+case", "The the THE") == 1
    assert n_found('count-text:"[",2', "a [b] [c") == 2
    assert n_found('count-text:"a,b",1', "a,b a, b") == 1
    assert n_found('count-text:"\\"",1', 'say "hi"') == 2
    c = parse_spec('count-text:"P.S.",>=1')
    assert c.check("Bye.\n\nP.S. see you") == [] and c.check("Bye. PS") != []


def test_count_word_is_whole_words_in_any_case():
    text = "River rivers riverbank river's RIVER, river."
    assert n_found("count-word:river,>=0", text) == 3
    assert n_found("count-word:don't,>=0", "Don't, don’t, dont") == 2
    c = parse_spec("count-word:river,2")
    assert c.check("a river and a River") == [] and "4 uses" in c.check(text + " river")[0].message


@pytest.mark.parametrize("text", ["Oo o0 zoo", "", "ÖO ô", "No letters here? Some."])
def test_count_letter_counts_as_ifeval(text):
    assert n_found("count-letter:o,>=0", text) == ifeval_letter(text, "o")


def test_caps_words_are_the_word_tokens_written_in_all_caps():
    assert n_found("caps-words:>=0", "I am SO HAPPY, don't SHOUT.") == 4
    assert n_found("caps-words:>=0", "I'm fine. NASA's work, U.S.") == 3  # I, NASA, U.S
    c = parse_spec("caps-words:<4")
    assert c.check("WE ARE HERE") == [] and c.check("WE ARE ALL HERE") != []


@pytest.mark.parametrize("text", ["[name] at [address]\n[x", "[a[b]", "[]", "[a\nb] [c]", "none"])
def test_placeholders_count_as_ifeval(text):
    assert n_found("placeholders:>=0", text) == ifeval_placeholders(text)


@pytest.mark.parametrize("text", ["*a* **b** ** * * *c", "***a***", "*one*\n*two\nthree*", "**", "*x**y*"])
def test_highlights_count_as_ifeval(text):
    assert n_found("highlights:>=0", text) == ifeval_highlights(text)


def test_count_specs_round_trip_and_bad_ones_are_one_line():
    for s in ('count-text:"a,\\"b\\"\\n",2..4+case', "count-word:river,>=3", "count-letter:o,<6", "caps-words:0",
              "placeholders:>=2", "highlights:1", 'ban:",",";"', 'ban-exact:"&","|",")"'):
        c = parse_spec(s)
        assert parse_spec(c.spec()) == c and parse_spec(c.spec()).spec() == c.spec()
    for bad in ("count-text:a,b,2", "count-word:two words,2", "count-letter:é,2", "count-letter:ab,1",
                "caps-words:lots", 'count-text:"",1', 'count-text:"abc,2', "count-word:river"):
        with pytest.raises(SpecError) as e:
            parse_spec(bad)
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------ the automata agree with check()

def automaton_count(spec: str, text: str) -> int:
    counter = counter_for(parse_spec(spec))
    s, n = counter.start, 0
    for ch in text:
        s, h, _nice = counter.step(s, ch)
        n += h
    return n + counter.pending(s)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=list("rRiveaA[]*\n ,.'’xz"), max_size=30))
def test_the_decoders_counters_agree_with_check(text):
    for spec in ("count-text:river,>=0", "count-text:aa,>=0", "count-text:\"[*\",>=0", "count-word:river,>=0",
                 "count-word:a,>=0", "count-letter:r,>=0", "placeholders:>=0", "highlights:>=0"):
        assert automaton_count(spec, text) == n_found(spec, text), (spec, text)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from(["I", "AM", "am", "Am", "NASA", "x", "OK", "ok", "A"]), max_size=8),
       st.sampled_from([" ", ", ", ". ", "\n"]))
def test_caps_counter_agrees_with_check_on_words(words, sep):
    text = sep.join(words)
    assert automaton_count("caps-words:>=0", text) == n_found("caps-words:>=0", text), text


# ------------------------------------------------------------------ masks on the tiny model

def generate(engine, spec, n=40, seed=0, prompt="The old house", **kw):
    c = parse_spec(spec)
    g = engine.stream(prompt, c, Settings(max_new_tokens=n, seed=seed, **kw))
    assert "".join(g) == g.result.text
    return g.result.text, c, g


@pytest.mark.parametrize("spec", [
    'count-word:river,>=3 & ban:","', 'count-text:"P.S.",>=1', "count-letter:z,>=4", "caps-words:>=2",
    "placeholders:>=2", "highlights:>=2", "count-letter:e,<=3", "caps-words:0", "count-text:the,<=1 & count-word:and,1..2",
    "count-word:river,2 & sentences:2", 'count-text:"ab",0 & include:stone',
])
@pytest.mark.parametrize("seed", range(2))
def test_every_output_passes_check(tiny_engine, spec, seed):
    text, c, _g = generate(tiny_engine, spec, seed=seed)
    assert c.check(text) == [], (spec, text)


def test_lower_bound_is_forced_in_before_the_budget_runs_out(tiny_engine):
    text, c, g = generate(tiny_engine, "count-word:river,>=3", n=24, seed=3)
    m = next(m for m in g.masks if isinstance(m, CountMasker))
    assert c.check(text) == [] and m.n + m.counter.pending(m.state) >= 3
    assert m.forced > 0  # a random model does not write "river" three times by itself


def test_placeholder_forced_with_the_model_writing_its_inside(tiny_engine):
    for seed in range(3):
        text, c, _g = generate(tiny_engine, "placeholders:>=2", n=16, seed=seed)
        assert c.check(text) == [], text
        assert all(p.strip("[] ") for p in re.findall(r"\[.*?\]", text)[-2:]), text


def test_upper_bound_masks_an_occurrence_split_across_tokens(tiny_engine):
    ms = compile_masks(parse_spec('count-text:"lighthouse",0'), tiny_engine.vocab)
    tok = tiny_engine.tokenizer
    ms.reset("")
    for t in tok.encode(" the light", add_special_tokens=False):
        ms.advance(t)
    allowed = ms.allowed(100)
    vocab = tiny_engine.vocab
    assert not bool(allowed[vocab.texts.index("house")]) and bool(allowed[vocab.texts.index("ning")])


def test_no_commas_never_writes_one(tiny_engine):
    ms = compile_masks(parse_spec('ban:","'), tiny_engine.vocab)
    static = ms.static_mask()
    assert not any(static[i] for i, t in enumerate(tiny_engine.vocab.texts) if "," in t)
    for seed in range(3):
        text, c, _g = generate(tiny_engine, 'ban:","', seed=seed)
        assert "," not in text and c.check(text) == []


@pytest.mark.parametrize("spec, why", [
    ("count-letter:e,>=3 & lipogram:e", "lipogram:e"),
    ('count-text:"[",>=1 & ban:"["', "ban"),
    ("count-word:café,<=2", "ASCII"),
])
def test_impossible_counts_are_refused_before_decoding(tiny_engine, spec, why):
    with pytest.raises(ImpossibleConstraint, match=re.escape(why)) as e:
        compile_masks(parse_spec(spec), tiny_engine.vocab)
    assert "\n" not in str(e.value)


def test_a_lower_bound_past_the_budget_is_refused(tiny_engine):
    with pytest.raises(ImpossibleConstraint, match="max_new_tokens"):
        generate(tiny_engine, "count-word:river,>=30", n=20)  # a token per word at best


def test_argument_helpers_honour_quoted_literals():
    from constraints.base import quote_item, split_items, unquote

    assert split_items('"a,b" , c,"\\"",x"&"y') == ["a,b", "c", '"', "x&y"]
    assert split_items('3;sep="***"', sep=";") == ["3", "sep=***"]  # options of a rule
    assert unquote('" spaced "') == " spaced " and unquote(" bare ") == "bare"
    for item in ["a,b", " x", "", '"', "[", "&|()", "\n", "plain"]:
        assert split_items(quote_item(item)) == [item]


@pytest.mark.parametrize("spec, open_, close", [("placeholders:>=1", "[", "]"), ("highlights:>=1", "*", "*")])
def test_a_stand_in_keeps_what_it_stands_for(spec, open_, close):
    # Tokens are tabled by stand-in characters: a letter inside must still read as a
    # letter (worth forcing), a sign as a sign (counted, not forced).
    counter = counter_for(parse_spec(spec))
    opened, _h, _n = counter.step(counter.start, open_)
    for ch, worth in (("x", 1), ("7", 1), ("!", 0)):
        inside, _h, _n = counter.step(opened, counter.kind(ch))
        _s, hits, nice = counter.step(inside, close)
        assert (hits, nice) == (1, worth), ch
