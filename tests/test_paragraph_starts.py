"""paragraph-starts:I=WORD: IFEval's first-word check on hand-made texts, and the
structure masks writing the word at the start of paragraph I (walks and the tiny model)."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.spec import parse_spec
from constraints.structure import ParagraphStarts
from studio.decode.maskset import compile_masks
from tests.conftest import allowed_after
from tests.test_layout_mask import generate, walk


def test_first_word_as_ifeval_reads_it():
    r = ParagraphStarts({2: "then"})
    assert r.check("One.\n\nThen it rained.") == []
    assert r.check('One.\n\n"Then," she said.') == []  # quotes stripped, cut at the comma
    assert r.check("One.\n\nThen's the time.") == []  # cut at the apostrophe, as IFEval does
    assert r.check("One.\n\nAnd then.")
    assert r.check("Only one paragraph.")
    assert r.check("One.\n\n\n\nThen.")  # paragraph 2 is empty


def test_spec_round_trip_and_bad_arguments():
    c = parse_spec("paragraph-starts:2=Then,1=Once")
    assert parse_spec(c.spec()).spec() == c.spec() == "paragraph-starts:1=Once,2=Then"
    for bad in ("paragraph-starts:0=Then", "paragraph-starts:2=two words", "paragraph-starts:Then"):
        with pytest.raises(SpecError):
            parse_spec(bad)


@pytest.mark.parametrize("spec, why", [
    ("paragraphs:2 & paragraph-starts:3=Then", "at most 2"),
    ("paragraph-starts:2=Then & lipogram:e", "breaks 'lipogram:e'"),
    ("paragraph-starts:2=Then & each-paragraph:(starts-with-word:So)", "must start with"),
])
def test_impossible_starts_are_refused(tiny_engine, spec, why):
    with pytest.raises(ImpossibleConstraint, match=why):
        compile_masks(parse_spec(spec), tiny_engine.vocab)


@pytest.mark.parametrize("spec", ["paragraphs:3 & paragraph-starts:2=Then",
                                  "paragraph-starts:1=Once,3=Finally & sentences:4"])
@pytest.mark.parametrize("seed", range(2))
def test_walks_pass_check(tiny_engine, spec, seed):
    c = parse_spec(spec)
    text = walk(tiny_engine.vocab, c, 60, seed)
    assert c.check(text) == [], text


def test_tiny_model_output_passes_check(tiny_engine):
    c = parse_spec("paragraphs:2 & paragraph-starts:2=However")
    text = generate(tiny_engine, c, 60, 0)
    assert c.check(text) == [], text


def test_the_given_first_word_is_not_run_on_by_a_colon(tiny_engine):
    # IFEval reads "Booster:" as the first word: after the given word, a comma or a
    # space may follow, not ":" or ";".
    texts = tiny_engine.vocab.texts
    allowed = allowed_after(tiny_engine, "paragraphs:2 & paragraph-starts:1=Booster", "Booster", 200)
    assert not any(bool(allowed[i]) for i, t in enumerate(texts) if t in (":", ";"))
    assert any(bool(allowed[i]) for i, t in enumerate(texts) if t == ",")
