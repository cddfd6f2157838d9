"""Word-level masks (studio/wordmask.py): every word the decoder finishes is an allowed word.

Generation runs on the tiny random llama (it writes noise, so any word it finishes is
there only because the mask let it through), and the independent ``check`` judges it.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constraints.units import iter_words
from constraints.lexicon import normalize
from studio.decode.settings import Settings
from constraints.spec import parse_spec
from studio.decode.vocab import vocab_index
from constraints.units import is_word_char
from studio.masks.words import WordSet, token_words

SPECS = ["syllables:1", "rhymes:day", "starts-with:s", "syllables:<=2 & starts-with:b", "!starts-with:t"]


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return vocab_index(tokenizer, len(tokenizer))


@pytest.mark.parametrize("spec", SPECS)
def test_every_generated_word_obeys(tiny_engine, spec):
    c = parse_spec(spec)
    for seed in range(4):
        r = tiny_engine.generate("The old house", c, Settings(max_new_tokens=20, seed=seed))
        assert r.stop_reason != "dead_end", r.message
        words = [m.group() for m in iter_words(r.text)]
        assert words, r.text
        assert c.check(r.text) == [], (seed, r.text)


@pytest.mark.parametrize("spec", ["syllables:1", "length:<6"])
def test_words_keep_a_sane_letter_case(tiny_engine, spec):
    # The tiny model picks tokens at random: without the case masks "seto" + "N" would
    # pass (rules judge lower-cased words).  Every word is lower, Capitalized or CAPS.
    from studio.masks.words import case_shape

    for seed in range(4):
        r = tiny_engine.generate("The old house", parse_spec(spec), Settings(max_new_tokens=30, seed=seed))
        words = [m.group() for m in iter_words(r.text)]
        assert words, r.text
        assert all(case_shape(w) for w in words), (seed, r.text)


def test_a_word_cannot_be_assembled_from_sub_words(vocab):
    # The CTGS bug: " Brow" passes a filter that judges tokens as words, then "n" makes
    # "brown".  Here a token that would finish a word outside the set is masked.
    ws = WordSet(["brow", "brows", "sun"], vocab, "test-brow")
    tok = vocab.tokenizer
    n_id = tok.convert_tokens_to_ids("n")
    s_id = tok.convert_tokens_to_ids("s")
    m = ws.mask("brow")
    assert not bool(m[n_id]) and bool(m[s_id])
    # "brow" is a word, so a boundary may follow it; after "bro" it may not.
    space = tok.encode(" sun", add_special_tokens=False)[0]
    assert bool(ws.mask("brow")[space]) and not bool(ws.mask("bro")[space])


WORDS = ["a", "an", "and", "ant", "the", "then", "there", "sun", "sunny", "sing", "song",
         "so", "sea", "see", "seen", "day", "days", "dog", "do", "done", "i", "in", "it", "is"]


def _finished_words(text: str) -> list[str]:
    """Words followed by a boundary (the last word may still be in progress)."""
    out, cur = [], ""
    for ch in text:
        if is_word_char(ch):
            cur += ch
        else:
            if cur:
                out.append(normalize(cur))
            cur = ""
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.sets(st.sampled_from(WORDS), min_size=1, max_size=8),
       picks=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=25))
def test_property_accepted_token_sequences_only_finish_allowed_words(vocab, words, picks):
    ws = WordSet(words, vocab, "prop-" + ",".join(sorted(words)))
    tw = token_words(vocab)
    eos = set(vocab.eos_ids)
    p, ids = "", []
    for pick in picks:
        allowed = ws.mask(p).nonzero().flatten().tolist()
        assert allowed  # a word set always leaves a way on
        tid = allowed[pick % len(allowed)]
        if tid in eos:
            assert p == "" or p in ws.set  # the text may only end on a whole word
            break
        ids.append(tid)
        p = ws.advance(p, tid)
        assert p == "" or ws.is_prefix(p)
    text = vocab.decode(ids)
    for w in _finished_words(text):
        assert w in ws.set, (w, text)
    # The tokens' own decomposition agrees with the text.
    assert all(not tw.middles[t] or all(m in ws.set for m in tw.middles[t]) for t in ids)


def test_word_split_agrees_with_the_checker_on_every_vocabulary_character(vocab):
    # The mask and check() split words independently; they must agree on what a letter
    # is, or a word the mask saw as two ("baby" "¹" "ball") is one unknown word to check.
    import re

    chars = {ch for t in vocab.texts for ch in t}
    for ch in chars:
        in_word = bool(re.fullmatch(r"[^\W\d_]", ch)) or ch in "'’"
        assert is_word_char(ch) == in_word, repr(ch)
