"""Controllers on synthetic logits and a tiny random llama: the word bank follows words
across sub-word tokens, prompt contrast and DExperts compute their formulas, FUDGE probes
the right candidates, discriminators train and persist, and hard constraints still win."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from models.controllers import (
    DiscriminatorGuidance,
    ExpertAntiExpert,
    PromptContrast,
    SourcePlan,
    WordBank,
)
from models.discriminator import Discriminator, DiscriminatorError, read_csv
from models.sources import BASE, Row, SequenceSource
from studio.decode.settings import Settings


def tid(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def gen_after(engine, text: str, **kw):
    return SimpleNamespace(context=text, pieces=[], engine=engine, masks=(), settings=Settings(), **kw)


# ---------------------------------------------------------------------- word bank


def test_word_bank_follows_words_across_subword_tokens(tiny_engine, tokenizer):
    bank = WordBank(["moonlight", "sea"], strength=2.0)
    v = tiny_engine.vocab
    sea, Sea, moon, se, light, a = (tid(tokenizer, t) for t in (" sea", " Sea", " moon", " se", "light", "a"))
    b = bank.bias("I saw the", v)  # a new word may start
    assert b[sea] == 2.0 and b[Sea] == 2.0  # a whole bank word, any case
    assert b[moon] == pytest.approx(2.0 * 4 / 9)  # the start of 'moonlight'
    assert b[se] == pytest.approx(2.0 * 2 / 3)
    assert b[light] == 0 and b[tid(tokenizer, " the")] == 0
    b = bank.bias("I saw the moon", v)  # 'moon' is in progress
    assert b[light] == 2.0  # completes 'moonlight'
    assert b[a] == 0 and b[sea] == 2.0
    assert bank.bias("I saw the se", v)[a] == 2.0  # 'se' + 'a' = 'sea'
    assert bank.bias("I saw the cat", v)[light] == 0  # 'catlight' is no bank word
    assert WordBank(["sea"], strength=-3.0).bias("Look at the", v)[sea] == -3.0


def test_word_bank_adjust_reads_the_generation_and_never_edits_in_place(tiny_engine, tokenizer):
    bank = WordBank(["moonlight"], strength=1.5)
    scores = torch.zeros(tiny_engine.vocab.size)
    g = gen_after(tiny_engine, "I saw the")
    g.pieces = [" moon"]
    out = bank.adjust(scores, g)
    assert out[tid(tokenizer, "light")] == 1.5 and scores.abs().sum() == 0
    assert bank.share("The moonlight, the Moonlight and the sun.") == pytest.approx(2 / 7)


def test_word_bank_input_errors(tmp_path):
    with pytest.raises(ValueError, match="word bank is empty"):
        WordBank(["", "two words"])
    with pytest.raises(ValueError, match="no such word bank file"):
        WordBank.from_file(tmp_path / "missing.txt")
    f = tmp_path / "bank.txt"
    f.write_text("# sea words\nsea, ocean;wave\n")
    assert WordBank.from_file(f).words == {"sea", "ocean", "wave"}
    with pytest.raises(ValueError, match="finite"):
        WordBank(["sea"], strength=float("inf"))


# ---------------------------------------------------------------------- sources


def test_prompt_contrast_is_uncond_plus_gamma_times_difference(tiny_engine, tokenizer):
    pc = PromptContrast("A joyful story.", strength=2.5)
    ids = tokenizer.encode("The old house")
    src = pc.source(tiny_engine)
    assert [r.weight for r in src.rows] == [-1.5, 2.5] and len(src.rows) == 2
    got = [src.prefill(ids), src.step(42)]
    unc, cond = SequenceSource(tiny_engine.model), SequenceSource(tiny_engine.model)
    u = [unc.prefill(ids), unc.step(42)]
    c = [cond.prefill(list(pc.prefix(tokenizer)) + ids), cond.step(42)]
    for g, uu, cc in zip(got, u, c):
        torch.testing.assert_close(g, uu + 2.5 * (cc - uu), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="steer text must not be empty"):
        PromptContrast("  ")


def test_batched_source_crop_matches_a_fresh_run(tiny_engine, tokenizer):
    ids = tokenizer.encode("Once upon a time")
    src = SequenceSource(tiny_engine.model, [Row(BASE, (), 0.5), Row(BASE, (5, 6, 7), 0.5)])
    src.prefill(ids)
    src.step(10)
    src.step(11)
    src.crop(len(ids) + 1)  # back off the last token
    again = src.step(12)
    fresh = SequenceSource(tiny_engine.model, src.rows)
    fresh.prefill(ids)
    fresh.step(10)
    torch.testing.assert_close(again, fresh.step(12), atol=1e-4, rtol=1e-4)


def test_plan_uses_the_plain_source_when_nothing_is_steered(tiny_engine):
    assert SourcePlan().build(tiny_engine) is None
    plan = SourcePlan()
    PromptContrast("x", 1.0).configure(plan, tiny_engine)
    with pytest.raises(ValueError, match="only one --steer"):
        PromptContrast("y", 1.0).configure(plan, tiny_engine)


def test_expert_anti_expert_formula_and_nucleus():
    scores = torch.tensor([5.0, 4.0, 0.0, -5.0])
    e, a = torch.tensor([0.0, 1.0, 3.0, 2.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])
    src = SimpleNamespace(logits_of=lambda row: {"exp": e, "anti": a}[row.adapter])
    g = SimpleNamespace(source=src)
    bare = ExpertAntiExpert("exp", "anti", alpha=2.0, top_p=1.0).adjust(scores, g)
    torch.testing.assert_close(bare, scores + 2.0 * (e - a))
    # Base nucleus at 0.9: tokens 0 and 1 (p ~ .73, .27); the others keep their scores.
    nucleus = ExpertAntiExpert("exp", "anti", alpha=2.0, top_p=0.9).adjust(scores, g)
    torch.testing.assert_close(nucleus, torch.tensor([3.0, 6.0, 0.0, -5.0]))
    with pytest.raises(ValueError, match="top_p"):
        ExpertAntiExpert("e", "a", top_p=0)


# ---------------------------------------------------------------------- FUDGE


def fake_discriminator(hidden: int, layer: int = 1, seed: int = 0) -> Discriminator:
    g = torch.Generator().manual_seed(seed)
    return Discriminator(torch.randn(hidden, generator=g), 0.1, torch.zeros(hidden), torch.ones(hidden), layer)


def test_discriminator_guidance_reweights_exactly_the_top_k(tiny_engine, tokenizer):
    ids = tokenizer.encode("The old house")
    disc = fake_discriminator(tiny_engine.model.config.hidden_size)
    ctrl = DiscriminatorGuidance(disc, strength=2.0, top_k=5)
    plan = SourcePlan()
    ctrl.configure(plan, tiny_engine)
    feed = plan.build(tiny_engine)
    src = SequenceSource(feed.model, feed.rows)
    scores = src.prefill(ids)
    out = ctrl.adjust(scores, gen_after(tiny_engine, "The old house", source=src))
    top = scores.topk(5).indices.tolist()
    want = []
    with torch.inference_mode():
        for c in top:
            h = tiny_engine.model(input_ids=torch.tensor([ids + [c]]), output_hidden_states=True).hidden_states[1][0, -1]
            want.append(2.0 * torch.nn.functional.logsigmoid(disc.logit(h)))
    want = torch.stack(want)
    torch.testing.assert_close((out - scores)[top], want, atol=1e-4, rtol=1e-4)
    rest = torch.ones_like(scores, dtype=torch.bool)
    rest[top] = False
    assert torch.allclose((out - scores)[rest], want.min())
    # The probe left the cache as it was: the next step matches a plain source.
    ms = SequenceSource(tiny_engine.model)
    ms.prefill(ids)
    torch.testing.assert_close(src.step(7), ms.step(7), atol=1e-4, rtol=1e-4)


def test_discriminator_guidance_probes_only_what_constraints_allow(tiny_engine, tokenizer):
    from studio.decode.maskset import compile_masks
    from constraints.spec import parse_spec

    ids = tokenizer.encode("The old house")
    ctrl = DiscriminatorGuidance(fake_discriminator(tiny_engine.model.config.hidden_size), 1.0, top_k=8)
    plan = SourcePlan()
    ctrl.configure(plan, tiny_engine)
    feed = plan.build(tiny_engine)
    src = SequenceSource(feed.model, feed.rows)
    scores = src.prefill(ids)
    masks = compile_masks(parse_spec("lipogram:e"), tiny_engine.vocab)
    masks.reset("The old house")
    g = gen_after(tiny_engine, "The old house", source=src)
    g.masks = masks
    delta = ctrl.adjust(scores, g) - scores
    floor = delta.min()
    probed = ((delta - floor).abs() > 1e-4).nonzero().flatten().tolist()
    assert probed and all("e" not in tiny_engine.vocab.texts[i].lower() for i in probed)


def test_controllers_compose_with_hard_constraints(tiny_engine, tokenizer):
    from constraints.spec import parse_spec

    words = ["the", "here", "there", "everyone", "seven", "green", "sea"]
    ctrls = [WordBank(words, strength=8.0)]
    r = tiny_engine.generate("The old house", parse_spec("lipogram:e"), Settings(max_new_tokens=20, seed=1),
                             controllers=ctrls)
    assert r.tokens > 0 and "e" not in r.text.lower()


# ---------------------------------------------------------------------- discriminator training


def test_discriminator_trains_from_files_and_csv_and_persists(tiny_engine, tmp_path):
    a, b = tmp_path / "sunny.txt", tmp_path / "rainy.txt"
    a.write_text("\n".join(f"sun sun bright warm day number {i}" for i in range(6)))
    b.write_text("\n".join(f"rain rain cold wet night number {i}" for i in range(6)))
    d = Discriminator.from_files(tiny_engine, a, b)
    assert d.labels == ("sunny", "rainy") and d.report["train_accuracy"] > 0.8
    assert d.score_text(tiny_engine, "sun sun bright warm") > d.score_text(tiny_engine, "rain rain cold wet")
    d.save(tmp_path / "disc")
    d2 = Discriminator.load(tmp_path / "disc")
    h = torch.randn(3, tiny_engine.model.config.hidden_size)
    torch.testing.assert_close(d.logit(h), d2.logit(h))
    csv = tmp_path / "ex.csv"
    csv.write_text("text,label\n" + "".join(f"sun bright {i},pos\nrain cold {i},neg\n" for i in range(4)))
    pos, neg, t, o = read_csv(csv)
    assert (t, o, len(pos), len(neg)) == ("pos", "neg", 4, 4)
    assert Discriminator.from_csv(tiny_engine, csv).labels == ("pos", "neg")


def test_discriminator_input_errors(tiny_engine, tmp_path):
    three = tmp_path / "three.csv"
    three.write_text("a,x\nb,y\nc,z\n")
    with pytest.raises(DiscriminatorError, match="exactly two labels"):
        read_csv(three)
    which = tmp_path / "which.csv"
    which.write_text("a,cat\nb,dog\n")
    with pytest.raises(DiscriminatorError, match="say which label"):
        read_csv(which)
    assert read_csv(which, target="dog")[2:] == ("dog", "cat")
    with pytest.raises(DiscriminatorError, match="at least 2 target examples"):
        Discriminator.train(tiny_engine, ["one"], ["a", "b"])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n")
    with pytest.raises(DiscriminatorError, match="has no examples"):
        Discriminator.from_files(tiny_engine, empty, empty)
    with pytest.raises(DiscriminatorError, match="not a saved discriminator"):
        Discriminator.load(tmp_path)
