"""Each controller moves its measure the intended way on the embedded model (fixed seeds,
the same prompts with and without it): the share of bank words for the word bank, the
joyful-vs-gloomy discriminator's score for prompt contrast, DExperts and FUDGE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.controllers import DiscriminatorGuidance, ExpertAntiExpert, WordBank
from models.discriminator import Discriminator, read_lines
from tests.conftest import ROOT

pytestmark = pytest.mark.real

DATA = ROOT / "models" / "data"
PROMPTS = ["The old house on the hill", "She opened the letter and", "When the train stopped"]
TOKENS = 20


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread while these tests run.  On this 2-core machine, shared with other
    test runs, two threads thrash: a decode step was measured 3x slower with 2 threads
    than with 1 under load (and a LoRA training step 10x+).  Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(engine, **kw) -> list[str]:
    import studio

    return [studio.generate(p, engine=engine, max_new_tokens=TOKENS, seed=i, **kw).text
            for i, p in enumerate(PROMPTS)]


def mean_score(judge, engine, texts) -> float:
    return sum(judge.score_text(engine, t, context=p) for p, t in zip(PROMPTS, texts)) / len(texts)


@pytest.fixture(scope="module")
def judge(real_engine):
    """Joyful (target) vs gloomy, from the two example files shipped in models/data."""
    last = real_engine.model.config.num_hidden_layers  # the layer the bench's selection picks
    return Discriminator.from_files(real_engine, DATA / "joyful.txt", DATA / "gloomy.txt", layers=[last])


@pytest.fixture(scope="module")
def plain(real_engine):
    return run(real_engine)


@pytest.fixture(scope="module")
def plain_score(judge, real_engine, plain):
    return mean_score(judge, real_engine, plain)


@pytest.fixture(scope="module")
def experts(real_engine, artifacts):
    """Joyful and gloomy LoRA adapters on the embedded model (20 SFT steps each).  They
    live in artifacts/; a later session resumes from their last checkpoint instantly."""
    from models.train import TrainingData, train_adapter

    out = {}
    for name in ("joyful", "gloomy"):
        td = TrainingData("text", [{"text": t} for t in read_lines(DATA / f"{name}.txt")], [name])
        s = train_adapter(td, artifacts / "adapters" / name, max_steps=20, batch_size=4, max_length=40,
                          learning_rate=1e-3, rank=8, save_steps=20, echo=None, bar=False)
        assert s["final_loss"] < s["first_loss"]
        out[name] = Path(s["path"])
    return out


def test_word_bank_raises_the_share_of_bank_words(real_engine, plain):
    bank = WordBank.from_file(DATA / "sea.txt", strength=4.0)
    before = sum(bank.share(t) for t in plain) / len(plain)
    after_texts = run(real_engine, bank=bank)
    after = sum(bank.share(t) for t in after_texts) / len(after_texts)
    assert after > before + 0.05, (before, after, after_texts)


def test_prompt_contrast_moves_toward_the_description(real_engine, judge, plain_score):
    texts = run(real_engine, steer="A joyful, happy, cheerful story full of laughter.:2")
    assert mean_score(judge, real_engine, texts) > plain_score + 0.1, texts


def test_expert_anti_expert_moves_toward_the_expert(real_engine, judge, plain_score, experts):
    texts = run(real_engine, controllers=[ExpertAntiExpert(experts["joyful"], experts["gloomy"], alpha=2.0)])
    assert mean_score(judge, real_engine, texts) > plain_score + 0.1, texts


def test_discriminator_guidance_moves_toward_the_attribute(real_engine, judge, plain_score):
    texts = run(real_engine, controllers=[DiscriminatorGuidance(judge, strength=3.0, top_k=8)])
    assert mean_score(judge, real_engine, texts) > plain_score + 0.1, texts


def test_cli_generate_with_bank_and_steer(real_engine, capsys):
    from studio.cli import main

    rc = main(["generate", "--prompt", "The harbour at dawn", "--max-new-tokens", "8", "--seed", "1",
               "--bank", f"{DATA / 'sea.txt'}:4", "--steer", "A story about sailors.:1.5", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert json.loads(out.out)["tokens"] == 8
    assert main(["generate", "--prompt", "x", "--expert", str(DATA)]) == 2
    assert "--expert and --anti-expert go together" in capsys.readouterr().err
