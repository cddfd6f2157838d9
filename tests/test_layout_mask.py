"""Layout masks on the tiny random llama (real tokenizer), and on random walks through what
the masks allow: every output passes check(), alone and composed with other rules, the
literals are written before the budget runs out, and budgets too small are refused."""

import re

import pytest
import torch

from constraints.base import ImpossibleConstraint
from constraints.spec import parse_spec
from studio.decode.maskset import compile_masks
from studio.decode.sampling import Settings
from studio.masks.layout import LayoutMasker
from tests.conftest import allowed_after


def walk(vocab, constraint, n, seed, context=""):
    """A text drawn uniformly from what the masks allow (no model: corners a model avoids)."""
    masks = compile_masks(constraint, vocab)
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
            piece = piece[1:]
        text += piece
    assert masks.done_ok(), text
    return text


QUOTED_END = parse_spec('wrap:"\\"" & ends-with-text:"Is there anything else?"')
SPECS = [
    parse_spec("bullets:3"),
    parse_spec("bullets:3 & lipogram:e"),
    parse_spec('title & paragraphs:2;sep="***"'),
    QUOTED_END,
    parse_spec("numbered:4 & syllables:1"),
    parse_spec("sections:SECTION,3 & postscript:P.S."),
    parse_spec('paragraphs:2;sep="******"'),
    parse_spec("lines:3 & each-line:(wrap:<<,>>)"),
    parse_spec("starts-with-text:Dear reader & ends-with-text:Yours"),
    parse_spec("bullets:>=2 & title & no-digits"),
]


@pytest.mark.parametrize("constraint", SPECS, ids=lambda c: c.spec())
@pytest.mark.parametrize("seed", range(2))
def test_random_walks_pass_check(tiny_engine, constraint, seed):
    text = walk(tiny_engine.vocab, constraint, 60, seed)
    assert constraint.check(text) == [], text


@pytest.mark.parametrize("extra", [0, 1, 6])
@pytest.mark.parametrize("seed", range(2))
def test_short_budgets_still_write_every_literal(tiny_engine, extra, seed):
    c = parse_spec("sections:PART,2 & ends-with-text:The end. & syllables:1")
    least = compile_masks(c, tiny_engine.vocab).of_type(LayoutMasker)[0].least_tokens()
    text = walk(tiny_engine.vocab, c, least + extra, seed)
    assert c.check(text) == [], text


def test_after_a_prompt_in_continue_mode(tiny_engine):
    c = parse_spec("bullets:2")
    text = walk(tiny_engine.vocab, c, 40, 0, context="A list: ")
    assert c.check(text) == [], text


def generate(engine, constraint, n, seed, prompt="Write a short list."):
    g = engine.stream(prompt, constraint, Settings(max_new_tokens=n, seed=seed), mode="instruct")
    pieces = list(g)
    assert "".join(pieces) == g.result.text
    return g.result.text


@pytest.mark.parametrize("constraint", [SPECS[1], SPECS[2], QUOTED_END, SPECS[5]], ids=lambda c: c.spec())
@pytest.mark.parametrize("seed", range(2))
def test_tiny_model_outputs_pass_check(tiny_engine, constraint, seed):
    text = generate(tiny_engine, constraint, 80, seed)
    assert text and constraint.check(text) == [], text


def test_every_slot_holds_text(tiny_engine):
    """A list met by empty items does not count: each bullet has words of its own."""
    text = generate(tiny_engine, parse_spec("bullets:4"), 80, 1)
    items = re.findall(r"^\* (.*)$", text, flags=re.MULTILINE)  # items may stand a blank line apart
    assert len(items) == 4 and all(any(ch.isalpha() for ch in it) for it in items), text


def test_forks_keep_their_own_state(tiny_engine):
    vocab = tiny_engine.vocab
    masks = compile_masks(parse_spec("bullets:2"), vocab)
    masks.reset("")
    star = vocab.texts.index("*")
    masks.step_mask(40)
    masks.advance(star)
    twin = masks.fork()
    space = vocab.texts.index(" ")
    masks.step_mask(39)
    masks.advance(space)
    layout, other = masks.of_type(LayoutMasker)[0], twin.of_type(LayoutMasker)[0]
    assert layout.st[0] == 1 and other.st[1] == " "  # one is in the slot, the fork still owes the space


def test_budget_too_small_is_refused_before_any_text(tiny_engine):
    masks = compile_masks(parse_spec("sections:SECTION,5 & ends-with-text:Is there anything else?"),
                          tiny_engine.vocab)
    with pytest.raises(ImpossibleConstraint, match="needs at least"):
        masks.check_budget(10)


def test_a_title_holds_neither_of_its_marks(tiny_engine):
    # "<<A<<B>>" would pass IFEval's check as one title, and a reader would see two.
    texts = tiny_engine.vocab.texts
    allowed = allowed_after(tiny_engine, "title", "<<Rain")
    assert not any(bool(allowed[i]) for i, t in enumerate(texts) if "<<" in t)
    assert any(bool(allowed[i]) for i, t in enumerate(texts) if t == " and")
