"""Structure masks on the tiny random llama (real tokenizer), and on random walks through
what the masks allow: every output passes check(), exact counts hold, the masker's own
counts agree with the independent splitters (Punkt + Treebank), composition with other
rules, and budgets too small for the counts refused before any text is written."""

import pytest
import torch

from constraints.base import ImpossibleConstraint
from constraints.spec import parse_spec
from constraints.units import counted_words, paragraphs, sentences
from studio.decode.maskset import compile_masks
from studio.decode.sampling import Settings
from studio.masks.structure import OneWordMasker, StructureMasker


def walk(vocab, spec, n, seed, context=""):
    """A text drawn uniformly from what the masks allow, step by step (no model: every
    allowed token is as likely, so the walk visits corners a model would avoid)."""
    masks = compile_masks(parse_spec(spec), vocab)
    masks.reset(context)
    g = torch.Generator().manual_seed(seed)
    text = ""
    for step in range(n):
        ids = masks.step_mask(n - step).nonzero().flatten()
        assert len(ids), f"dead end after {text!r}"
        t = int(ids[torch.randint(len(ids), (1,), generator=g)])
        if t in vocab.eos_ids:
            break
        masks.advance(t)
        piece = vocab.texts[t]
        if not text and context.endswith(" ") and piece.startswith(" "):
            piece = piece[1:]  # as the engine drops it
        text += piece
    assert masks.done_ok(), text
    return text, masks


WALKS = [
    ("sentences:3", 60),
    ("sentences:5 & each-sentence:(words:3..5)", 60),
    ("each-sentence:(starts-with-word:He) & sentences:3", 60),
    ("sentences:3 & paragraphs:2", 60),
    ("each-paragraph:(sentences:2 & starts-with-word:Then) & paragraphs:2", 60),
    ("sentences:>=2 & each-sentence:(words:>=5)", 60),
    ("words:17 & word-at:4=aids,8=positioners,11=nests & sentences:1", 60),
    ('sentences:3 & sentence-ends:["sympathy","republicanism","type"]', 60),
    ('paragraph-ends:["In April 1982, the 3rd Division (XPCC) was restored", "It was renamed."] & '
     "each-paragraph:(sentences:>=2)", 90),
    ("chars:60 & sentences:1", 60),
    ("chars:100..110 & sentences:2", 80),
    ("word-at:-1=end & words:>=8", 60),
    ("paragraphs:2 & each-paragraph:(words:5..8)", 60),
    ("starts-with-word:Once & ends-with-word:night & sentences:2", 60),
]


@pytest.mark.parametrize("spec, n", WALKS)
@pytest.mark.parametrize("seed", range(3))
def test_random_walks_pass_check_and_agree_with_the_splitters(tiny_engine, spec, n, seed):
    text, masks = walk(tiny_engine.vocab, spec, n, seed)
    assert parse_spec(spec).check(text) == [], text
    m = next(x for x in masks if isinstance(x, StructureMasker))
    # The mask's own counts are the independent splitters' counts.
    assert m.s.wt == len(counted_words(text)), text
    assert m.s.st == len(sentences(text)), text
    assert m.s.g + 1 == len(paragraphs(text)), text
    assert m.c == len(text)


@pytest.mark.parametrize("context", ["Once upon a time", "It begins: ", "Title\n\n"])
def test_walks_after_a_prompt_in_continue_mode(tiny_engine, context):
    for spec in ("sentences:2", "chars:50 & sentences:1", "each-sentence:(starts-with-word:He) & sentences:2"):
        text, _ = walk(tiny_engine.vocab, spec, 50, 1, context)
        assert parse_spec(spec).check(text) == [], (context, text)
        assert not text.startswith(" ") or context[-1:].isalpha()  # a space only after a word


@pytest.mark.parametrize("spec", ["one-word & chars:>=11", "one-word & chars:12 & char-at:4=o,8=s,11=r",
                                  "one-word & chars:11 & char-at:-1=x", "one-word & chars:12 & char-at:4=i,8=i,11=a"])
@pytest.mark.parametrize("seed", range(3))
def test_one_word_walks(tiny_engine, spec, seed):
    text, masks = walk(tiny_engine.vocab, spec, 12, seed)
    assert parse_spec(spec).check(text) == [], text
    assert isinstance(masks.maskers[0], OneWordMasker)


def test_one_word_prefers_dictionary_words(tiny_engine):
    masks = compile_masks(parse_spec("one-word & chars:12 & char-at:4=i,8=i,11=a"), tiny_engine.vocab)
    words = masks.maskers[0].word_set()
    assert words is not None and "motivational" in words.set and all(len(w) == 12 for w in words.words)
    # No dictionary word has o, s, r at 4, 8, 11 in 12 letters: letters are placed instead.
    masks = compile_masks(parse_spec("one-word & chars:12 & char-at:4=o,8=s,11=r"), tiny_engine.vocab)
    assert masks.maskers[0].word_set() is None


# ------------------------------------------------------------------ the tiny model


def generate(engine, spec, n, seed, prompt="Write a short text.", mode="instruct"):
    c = parse_spec(spec)
    g = engine.stream(prompt, c, Settings(max_new_tokens=n, seed=seed), mode=mode)
    pieces = list(g)
    assert "".join(pieces) == g.result.text
    return g.result.text, c


@pytest.mark.parametrize("spec, n", [
    ("sentences:3 & each-sentence:(words:4..6)", 60),
    ("words:12 & word-at:4=river,8=stone & sentences:1", 40),
    ('sentences:2 & sentence-ends:["night","day"]', 60),
    ("each-paragraph:(sentences:2) & paragraphs:2 & each-sentence:(starts-with-word:It)", 80),
    ("chars:70 & sentences:1", 50),
    ("one-word & chars:>=10", 10),
])
@pytest.mark.parametrize("seed", range(3))
def test_tiny_model_outputs_pass_check(tiny_engine, spec, n, seed):
    text, c = generate(tiny_engine, spec, n, seed)
    assert text and c.check(text) == [], text


def test_exact_counts_on_the_tiny_model(tiny_engine):
    text, _ = generate(tiny_engine, "sentences:4 & each-sentence:(words:3) & paragraphs:2", 60, 5)
    assert len(sentences(text)) == 4 and len(paragraphs(text)) == 2
    assert [len(counted_words(s)) for s in sentences(text)] == [3, 3, 3, 3]
    text, _ = generate(tiny_engine, "chars:55 & sentences:1", 50, 6)
    assert len(text) == 55 and len(sentences(text)) == 1


@pytest.mark.parametrize("spec", [
    "lipogram:e & sentences:3",
    "include:lighthouse,orange & sentences:1",
    "ban-words:the,and,is & sentences:4 & each-sentence:(words:3..6)",
    "words:>=12 & sentences:1 & length:<=6",
    "syllables:1 & sentences:2",
])
@pytest.mark.parametrize("seed", range(2))
def test_composes_with_existing_rules(tiny_engine, spec, seed):
    text, c = generate(tiny_engine, spec, 60, seed)
    assert c.check(text) == [], text


def test_continue_mode_on_the_tiny_model(tiny_engine):
    for prompt in ("Once upon a time", "The story begins: "):
        text, c = generate(tiny_engine, "sentences:2 & each-sentence:(words:3..8)", 40, 0, prompt, "continue")
        assert c.check(text) == [], text


def test_forks_keep_their_own_state(tiny_engine):
    masks = compile_masks(parse_spec("sentences:2 & include:stone"), tiny_engine.vocab)
    masks.reset("")
    twin = masks.fork()
    m, t = masks.maskers, twin.maskers
    s_m = next(x for x in m if isinstance(x, StructureMasker))
    s_t = next(x for x in t if isinstance(x, StructureMasker))
    assert all(p in t for p in s_t.peers) and not any(p in m for p in s_t.peers)
    assert all(p in m for p in s_m.peers)


# ------------------------------------------------------------------ refusals


def test_budget_too_small_is_refused_before_any_text(tiny_engine):
    masks = compile_masks(parse_spec("sentences:10 & each-sentence:(words:>=5)"), tiny_engine.vocab)
    with pytest.raises(ImpossibleConstraint, match=r"needs at least 60 tokens, more than the 30 allowed"):
        masks.check_budget(30)
    masks.check_budget(200)
    g = tiny_engine.stream("Go.", parse_spec("sentences:10 & each-sentence:(words:>=5)"),
                           Settings(max_new_tokens=30, seed=0), mode="instruct")
    with pytest.raises(ImpossibleConstraint, match="raise max_new_tokens"):
        g.run()
    assert g.text == ""


@pytest.mark.parametrize("spec, why", [
    ("each-sentence:(words:4) & words:13", "sentences of exactly 4 words cannot make exactly 13 words"),
    ("sentences:1 & chars:5 & include:encyclopaedia", "'encyclopaedia'"),
    ("words:5 & word-at:8=river & sentences:1", "allows at most 5 words"),
    ('sentences:3 & sentence-ends:["a","b","c","d"]', "names 4 sentences"),
])
def test_impossible_targets_are_refused_when_compiling(tiny_engine, spec, why):
    with pytest.raises(ImpossibleConstraint, match=why):
        compile_masks(parse_spec(spec), tiny_engine.vocab)


def feed(vocab, tokenizer, spec, text):
    """Write ``text`` token by token (the tokenizer's own split) through the masks; return
    the mask set and the tokens the masks refused."""
    masks = compile_masks(parse_spec(spec), vocab)
    masks.reset("")
    ids = tokenizer.encode(text, add_special_tokens=False)
    refused = []
    for k, t in enumerate(ids):
        if not masks.allows(t, len(ids) - k + 5):
            refused.append(vocab.texts[t])
        masks.advance(t)
    return masks, refused


def test_contractions_count_as_the_splitter_counts_them(tiny_engine, tokenizer):
    text = "He doesn't know, it's fine. They're here!"
    assert len(counted_words(text)) == 10  # He does n't know it 's fine They 're here
    masks, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2 & words:10", text)
    assert refused == [] and masks.done_ok()
    m = masks.maskers[0]
    assert (m.s.wt, m.s.st) == (10, 2)
    # 't only after a word ending in n (Treebank splits n't, not 't); no other punctuation;
    # digits are word characters ("3rd" is one word to Treebank).
    masks, refused = feed(tiny_engine.vocab, tokenizer, "sentences:1", "It't is (not) 3rd - fine.")
    assert "'t" in refused and " (" in refused and " -" in refused
    _, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2 & words:7", "It was 1899. The 3rd one won.")
    assert refused == []
