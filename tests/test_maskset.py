"""The mask set on its own, over a synthetic vocabulary of a dozen tokens: composition,
end-of-text, back-off snapshots, forks, blame, and refusal before decoding."""

import pytest
import torch

from constraints.base import ImpossibleConstraint
from constraints.spec import parse_spec
from studio.decode.maskset import FAMILIES, MaskSet, compile_masks
from studio.decode.vocab import VocabIndex
from studio.masks.chars import CharMasker, PangramMasker, RequiredMasker
from studio.masks.words import WordMasker

PIECES = ["<eos>", "\u2581the", "\u2581cat", "\u2581dog", "s", "\u2581sat", ".", "\u2581a", "\u2581zoo",
          "\u2581qu", "iz", "\u2581mat", "e"]


class SyntheticTokenizer:
    """Just what VocabIndex reads of a tokenizer: SentencePiece-style pieces ('▁' is a
    space), one special end-of-text token."""

    eos_token_id = 0
    all_special_ids = [0]

    def __len__(self):
        return len(PIECES)

    def convert_ids_to_tokens(self, ids):
        return [PIECES[i] for i in ids]

    def get_vocab(self):
        return {p: i for i, p in enumerate(PIECES)}


@pytest.fixture(scope="module")
def vocab():
    return VocabIndex(SyntheticTokenizer())


def ids(*texts):
    return [PIECES.index(t.replace(" ", "\u2581")) for t in texts]


def allowed_texts(masks: MaskSet, steps_left=50, **kw) -> set[str]:
    m = masks.step_mask(steps_left, **kw)
    return {PIECES[i].replace("\u2581", " ") for i in m.nonzero().flatten().tolist()}


def test_vocabulary_reads_the_synthetic_tokens(vocab):
    assert vocab.texts[1] == " the" and vocab.special[0] and vocab.eos_ids == (0,)


def test_families_each_claim_their_constraints(vocab):
    masks = compile_masks(parse_spec("lipogram:e & syllables:1 & require:z & pangram:qz"), vocab)
    kinds = [type(m) for m in masks]
    assert PangramMasker in kinds and CharMasker in kinds and RequiredMasker in kinds and WordMasker in kinds
    # The pangram (a kind of required letters) is claimed by its own family, listed first.
    classes = [kind for kind, _ in FAMILIES]
    assert all(classes.index(a) < classes.index(b) for a in classes for b in classes
               if a is not b and issubclass(a, b))


def test_allowed_is_the_and_of_every_masker(vocab):
    masks = compile_masks(parse_spec("lipogram:e & starts-with:s"), vocab)
    masks.reset("")
    got = allowed_texts(masks)
    assert " the" not in got and " cat" not in got and " sat" in got and "e" not in got
    assert " mat" not in got  # a word that does not start with s


def test_end_of_text_only_when_every_rule_may_end(vocab):
    masks = compile_masks(parse_spec("require:z"), vocab)
    masks.reset("")
    assert "<eos>" not in allowed_texts(masks)
    masks.advance(ids(" zoo")[0])
    assert masks.done_ok() and "<eos>" in allowed_texts(masks)
    assert "<eos>" not in allowed_texts(masks, may_end=False)  # min_new_tokens not reached


def test_snapshot_restore_rewinds_every_masker(vocab):
    masks = compile_masks(parse_spec("require:z & ban:thes"), vocab)
    masks.reset("")
    before = masks.snapshot()
    for t in ids(" the"):
        masks.advance(t)
    assert "s" not in allowed_texts(masks)  # "the" + "s" would write the banned string
    masks.advance(ids(" zoo")[0])
    assert masks.done_ok()
    masks.restore(before)
    assert not masks.done_ok() and "s" in allowed_texts(masks)


def test_fork_shares_tables_but_not_state(vocab):
    masks = compile_masks(parse_spec("require:z & lipogram:e"), vocab)
    masks.reset("")
    twin = masks.fork()
    twin.advance(ids(" zoo")[0])
    assert twin.done_ok() and not masks.done_ok()
    assert all(a.static_mask() is b.static_mask() for a, b in zip(masks, twin))


def test_blocking_names_the_rule_that_allows_nothing(vocab):
    masks = compile_masks(parse_spec("word-bank:sat & require:q"), vocab)
    masks.reset("")
    for t in ids(" sat"):
        masks.advance(t)
    allowed = masks.step_mask(1)
    # One step left: require:q must force a q now, and the word bank allows no word with one.
    # Neither allows nothing alone, so both are named.
    assert not bool(allowed.any())
    assert set(masks.blocking(1)) == {"word-bank:sat", "require:q"}


def test_allows_agrees_with_the_full_mask(vocab):
    masks = compile_masks(parse_spec("lipogram:e & syllables:1"), vocab)
    masks.reset("")
    full = masks.allowed(10)
    assert [masks.allows(i, 10) for i in range(vocab.size)] == full.tolist()


def test_impossible_sets_are_refused_before_decoding(vocab):
    with pytest.raises(ImpossibleConstraint, match="needs the letter 'e'"):
        compile_masks(parse_spec("require:e & lipogram:e"), vocab)
    with pytest.raises(ImpossibleConstraint, match="every letter is banned"):
        compile_masks(parse_spec("lipogram:abcdefghijklmnopqrstuvwxyz"), vocab)


def test_no_constraint_is_an_empty_set_that_allows_all_text(vocab):
    masks = compile_masks(None, vocab)
    masks.reset("")
    assert len(masks) == 0 and masks.bias(5) is None and masks.done_ok()
    assert torch.equal(masks.allowed(5), vocab.text_mask())
