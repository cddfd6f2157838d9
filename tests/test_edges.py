"""The edges: long drafts (a window for the model, the whole text for the rules), Space
caps, the first start (what the page says while the model loads), and scoring under
steering."""

from __future__ import annotations

import pytest
import torch

from constraints.spec import parse_spec
from models.loading import PROGRESS
from studio.decode.settings import Settings
from studio.scoring import score_text
from studio.ui.callbacks import Handlers
from studio.ui.config import UiConfig
from studio.ui.work import SettingsIn, Studio, UserError

NOVEL = ("The old house on the hill had stood empty for years, and the village told stories "
         "about it. ") * 2200  # about 200,000 characters


# ---------------------------------------------------------------------- long drafts


def test_a_long_draft_is_read_through_a_window(tiny_engine):
    assert len(NOVEL) > 190_000
    ids, context, _ = tiny_engine.encode_prompt(NOVEL, "continue", budget=40)
    assert len(ids) <= tiny_engine.window and context == NOVEL
    # The window is the draft's end, token for token.
    tail = tiny_engine.tokenizer.encode(NOVEL.rstrip(" ")[-2000:], add_special_tokens=False)  # a trailing space is dropped
    assert ids[-50:] == tail[-50:]


def test_rules_still_see_the_whole_draft(tiny_engine):
    # The draft ends mid-word: a word rule may not continue the writer's word, however
    # long the draft (the masks see the full text, not the model's window).
    g = tiny_engine.stream(NOVEL + "the hil", parse_spec("syllables:1"), Settings(max_new_tokens=8, seed=1))
    r = g.run()
    assert r.text == "" or not r.text[0].isalpha()
    assert parse_spec("syllables:1").check(r.text) == []


def test_space_caps_drafts_and_uploads(tmp_path, tiny_engine):
    cfg = UiConfig.from_env(space=True, data=tmp_path)
    assert cfg.max_chars and cfg.max_upload
    studio = Studio(cfg, engine=tiny_engine)
    with pytest.raises(UserError, match="too long: .*cap is 50,000; setting PEREC_MAX_CHARS"):
        studio.start("x " * cfg.max_chars, [], "", SettingsIn(max_new_tokens=5))
    with pytest.raises(UserError, match="too long"):
        studio.candidates("word " * cfg.max_chars, [], "", SettingsIn())
    local = Studio(UiConfig.from_env(space=False, data=tmp_path / "local"), engine=tiny_engine)
    assert local.config.max_chars == 1_000_000  # limits.TEXT_CHARS: a novel, on the writer's own machine
    gen, _note, _base = local.start(NOVEL, [], "", SettingsIn(max_new_tokens=4, seed=1))
    shown = list(local.stream(gen, "s"))  # the text so far, after each piece
    assert shown[-1] == gen.result.text and gen.result.tokens == 4


# ---------------------------------------------------------------------- the first start


def test_the_page_says_what_the_loader_does_and_stays_usable(tmp_path, tiny_engine, monkeypatch):
    studio = Studio(UiConfig.from_env(space=False, data=tmp_path), engine=None)
    h = Handlers(studio)
    monkeypatch.setattr(PROGRESS, "phase", "converting")
    monkeypatch.setattr(PROGRESS, "started", PROGRESS.started or 1.0)
    banner, timer = h.model_status()
    assert banner.visible and "converting the embedded model" in banner.value and "%" in banner.value
    # Meanwhile the page works without the model: the check, and the next-word list says why it waits.
    assert studio.check("A cat sat.", ["lipogram:e"], "").ok
    out = h.candidates(None, "The sea", "", _session(), *SettingsIn().__dict__.values())
    assert "once the model has loaded" in out[1]
    monkeypatch.setattr(PROGRESS, "phase", "failed")
    monkeypatch.setattr(PROGRESS, "error", "the embedded model is not installed")
    assert "not installed" in h.model_status()[0].value
    studio.default_engine = tiny_engine  # loaded: the banner hides, the timer stops
    banner, timer = h.model_status()
    assert banner.visible is False and timer.active is False


def _session():
    from studio.ui.session import Session

    return Session()


# ---------------------------------------------------------------------- scoring steered


def test_score_under_a_word_bank_favours_bank_text(tiny_engine):
    from studio.steer import steering

    text = " sea sea salt wind sea"
    plain = score_text(tiny_engine, text, prompt="The")
    banked = score_text(tiny_engine, text, prompt="The", steer=steering(tiny_engine, bank=["sea", "salt", "wind"]))
    assert banked.perplexity < plain.perplexity and "WordBank" in banked.steering


def test_score_under_an_adapter_is_the_adapter_models_perplexity(tiny_engine, tmp_path):
    from models.sources import BASE
    from studio.steer import steering
    from test_adapters import make_adapter

    path = make_adapter(tiny_engine.lm, tmp_path / "a", seed=3)
    text = " the old house on the hill"
    steer = steering(tiny_engine, adapter=str(path))
    steered = score_text(tiny_engine, text, prompt="Once", steer=steer)
    # By hand: the adapter's own logits over the same tokens.
    (name,) = [r.adapter for r in steer["feed"].rows if r.adapter != BASE]
    model = steer["feed"].model
    ids = tiny_engine.tokenizer.encode("Once") + tiny_engine.tokenizer.encode(text, add_special_tokens=False)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids]), adapter_names=[name]).logits[0].float()
    n0 = len(tiny_engine.tokenizer.encode("Once"))
    logp = torch.log_softmax(logits[n0 - 1:-1], -1)[torch.arange(len(ids) - n0), torch.tensor(ids[n0:])]
    assert steered.perplexity == pytest.approx(float(torch.exp(-logp.mean())), rel=1e-4)
    assert "adapters" in steered.steering


def test_score_refuses_a_discriminator(tiny_engine):
    from models.controllers import DiscriminatorGuidance
    from test_controllers import fake_discriminator

    ctrl = DiscriminatorGuidance(fake_discriminator(tiny_engine.model.config.hidden_size), 1.0)
    with pytest.raises(ValueError, match="cannot be replayed"):
        score_text(tiny_engine, " a text to score", prompt="The", steer={"feed": None, "controllers": [ctrl]})


# ---------------------------------------------------------------------- budgets


def test_counts_get_a_budget_with_room_when_none_is_asked(tiny_engine):
    from studio.request import Request, prepare

    def budget(spec, **settings):
        return prepare(Request(prompt="Write.", constraints=spec, settings=settings), tiny_engine).settings.max_new_tokens

    assert budget("lipogram:e") == 80 and budget("sentences:3") == 80
    long = "sentences:5 & each-sentence:(words:11..15)"  # at least 55 words
    assert budget(long) == 160 and budget(long, max_new_tokens=70) == 70  # what is asked wins
    r = prepare(Request(prompt="Write.", constraints="sentences:2 & each-sentence:(words:6)"), tiny_engine).generate(tiny_engine)
    assert parse_spec("sentences:2 & each-sentence:(words:6)").check(r.text) == [], r.text
    with pytest.raises(ValueError, match="max_new_tokens"):
        prepare(Request(prompt="Write.", constraints=long, settings={"max_new_tokens": 20}), tiny_engine).stream(tiny_engine)
