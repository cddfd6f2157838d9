"""Structure masks on the tiny random llama (real tokenizer), and on random walks through
what the masks allow: every output passes check(), exact counts hold, the masker's own
counts agree with the independent splitters (Punkt + Treebank), composition with other
rules, and budgets too small for the counts refused before any text is written."""

import pytest
import torch

from constraints.base import ImpossibleConstraint
from constraints.spec import parse_spec
from constraints.units import abbreviations, collocations, counted_words, paragraphs, sentence_spans, sentences
from studio.decode.maskset import compile_masks
from studio.decode.sampling import Settings
from studio.masks.structure import OneWordMasker, StructureMasker
from studio.masks.structure_ends import sentence_ends
from studio.masks.structure_tokens import SLET


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
    # The generation is refused when it is built, before any text.
    with pytest.raises(ImpossibleConstraint, match="raise max_new_tokens"):
        tiny_engine.stream("Go.", parse_spec("sentences:10 & each-sentence:(words:>=5)"),
                           Settings(max_new_tokens=30, seed=0), mode="instruct")


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
    # A number ends its sentence with ! or ?, not a period (the trained Punkt keeps "1899.
    # Who ..." as one sentence: structure_ends.py).
    _, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2 & words:7", "It was 1899! The 3rd one won.")
    assert refused == []
    _, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2 & words:7", "It was 1899. The 3rd one won.")
    assert refused == ["."]


def test_contractions_keep_banned_words_out_of_the_splitters_units(tiny_engine, tokenizer):
    # Treebank reads "This'll" as "This" "'ll": under ban-words:this, COLLIE's units hold the
    # banned word, so the mask refuses the contraction ("It's" stays fine).
    spec = "sentences:1 & ban-words:this,is"
    _, refused = feed(tiny_engine.vocab, tokenizer, spec, "This'll do.")
    assert "'ll" in refused
    _, refused = feed(tiny_engine.vocab, tokenizer, spec, "It's fine.")
    assert refused == []


# ------------------------------------------------------------------ the trained Punkt


def _grammar_ends(text):
    """Where the mask's grammar ends sentences in free text: after each . ! or ?."""
    return [i + 1 for i, ch in enumerate(text) if ch in ".!?"]


def _punkt_ends(text):
    return [b for _a, b in sentence_spans(text)]


@pytest.mark.parametrize("seed", range(4))
def test_tiny_model_sentences_end_where_the_trained_punkt_splits(tiny_engine, seed):
    text, c = generate(tiny_engine, "sentences:3 & each-sentence:(words:5)", 60, seed)
    assert c.check(text) == [], text
    assert _grammar_ends(text) == _punkt_ends(text), text


def test_a_period_only_where_the_trained_punkt_surely_splits(tiny_engine, tokenizer):
    # "ok" is an abbreviation of the model: "ok. Then" is one sentence to it, so the mask
    # refuses the period there; "!" always splits.
    assert sentences("It is ok. Then we go.") == ["It is ok. Then we go."]
    _, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2", "It is ok. Then we go.")
    assert refused == ["."]
    masks, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2", "It is ok! Then we go.")
    assert refused == [] and masks.done_ok()
    _, refused = feed(tiny_engine.vocab, tokenizer, "sentences:2", "I met Mr. Day here.")
    assert "." in refused


NEXT_WORDS = ["The", "Who", "Business", "Then", "Sun", "I", "Xx", "Smith", "Magnin", "It", "However"]


def test_the_masks_period_rule_agrees_with_the_trained_punkt(tiny_engine):
    # Every word the mask may end a sentence after with a period is split after by the
    # trained Punkt before any capitalised word (the model's sentence starters, its
    # collocation partners, names, unknown words); and the rule refuses abbreviations,
    # initials and numbers.
    ends = sentence_ends()
    T = tiny_engine.vocab
    from studio.masks.structure_tokens import structure_tokens

    toks = structure_tokens(T)
    words = sorted({q for q, k in zip(toks.letters, toks.kind) if k == SLET})[::7]
    words += sorted(abbreviations()) + ["1899", "12", "3rd", "it's", "doesn't", "we'll", "a", "I"]
    words += [a for a, _b in collocations()]
    allowed = [w for w in words if ends.period_ends(w)]
    assert len(allowed) > 1000
    for w in allowed:
        for nxt in NEXT_WORDS:
            text = f"Aa {w}. {nxt} bb."
            assert len(sentences(text)) == 2, text
    assert not any(ends.period_ends(w) for w in ("mr", "Mr", "ok", "u.s", "1899", "a", "I", "Mr.", "b"))
    assert ends.period_ends("3rd") and ends.period_ends("doesn't")


def test_lower_case_never_splits_after_an_abbreviation():
    # What lets the mask write a given "Mr." inside a sentence: before a word in lower case
    # (or a digit), no abbreviation's period ends a sentence.
    ends = sentence_ends()
    for a in sorted(abbreviations()):
        if " " in a:
            continue
        assert ends.given_word_ok(a + ".")
        for nxt in ("the", "who", "day", "and", "smith", "business", "1899"):
            text = f"Aa {a}. {nxt} bb."
            assert len(sentences(text)) == 1, text
    assert not ends.given_word_ok("e.g.") and not ends.given_word_ok("J.")


@pytest.mark.parametrize("spec", ["word-at:3=Mr.,4=Day & sentences:2", "word-at:2=U.S. & sentences:2 & words:>=6",
                                  'sentences:2 & sentence-ends:["Mr.", "home"]'])
@pytest.mark.parametrize("seed", range(3))
def test_given_words_with_a_period_keep_their_sentence(tiny_engine, spec, seed):
    text, masks = walk(tiny_engine.vocab, spec, 50, seed)
    assert parse_spec(spec).check(text) == [], text
    m = next(x for x in masks if isinstance(x, StructureMasker))
    assert m.s.st == len(sentences(text)) == 2, text
    assert "Mr. Day" not in text  # the capital after "Mr." could start a sentence: "Mr. day"


@pytest.mark.parametrize("spec, why", [
    ("word-at:2=J. & sentences:1", "'J.' ends in a period that the sentence splitter may read"),
    ('paragraph-ends:["He met Dr.", "Then it ended."]', "ends with a period after 'Dr'"),
])
def test_given_text_the_splitter_could_cut_is_refused(tiny_engine, spec, why):
    with pytest.raises(ImpossibleConstraint, match=why):
        compile_masks(parse_spec(spec), tiny_engine.vocab)
