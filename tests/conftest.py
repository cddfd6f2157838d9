"""Shared fixtures: one real embedded model per test session, and a tiny random llama
with the real SmolLM2 tokenizer for fast unit tests (no download anywhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ARTIFACTS = ROOT / "artifacts"

os.environ.setdefault("PEREC_CACHE", str(ROOT / ".cache" / "perec"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def real_engine():
    """The embedded SmolLM2-135M-Instruct (converted once into PEREC_CACHE)."""
    import studio

    return studio.load()


def streamed_and_checked(engine, prompt: str, constraint, settings):
    """An instruct-mode answer under ``constraint``: the streamed text, which must be the
    returned text and pass the rule's own check, and the stream (for its result)."""
    g = engine.stream(prompt, constraint, settings, mode="instruct")
    text = "".join(g)
    assert text == g.result.text and constraint.check(text) == [], text
    return text, g


def allowed_after(engine, spec: str, text: str, steps: int = 100):
    """What the masks of ``spec`` allow once ``text`` is written (each of its tokens must
    be allowed on the way)."""
    from constraints.spec import parse_spec
    from studio.decode.maskset import compile_masks

    masks = compile_masks(parse_spec(spec), engine.vocab)
    masks.reset("")
    for t in engine.tokenizer.encode(text, add_special_tokens=False):
        assert masks.allows(t, steps), (spec, text, engine.vocab.texts[t])
        masks.advance(t)
    return masks.allowed(steps)


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from models.loading import embedded_path

    path, _ = embedded_path()
    return AutoTokenizer.from_pretrained(str(path))


def make_tiny_lm(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64):
    """A randomly initialised llama in SmolLM2's shape, small enough for unit tests."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from models.loading import LoadedModel

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    return LoadedModel(model, tokenizer, f"tiny-random-{seed}", torch.device("cpu"), torch.float32)


@pytest.fixture(scope="session")
def tiny_lm(tokenizer):
    return make_tiny_lm(tokenizer)


@pytest.fixture(scope="session")
def tiny_engine(tiny_lm):
    from studio.decode.engine import Engine

    return Engine(tiny_lm)


@pytest.fixture
def studio_local(tmp_path, tiny_engine):
    """A studio with local rules on the tiny model, its drafts in the test's own folder."""
    from studio.ui.config import UiConfig
    from studio.ui.work import Studio

    return Studio(UiConfig.from_env(space=False, data=tmp_path / "local"), engine=tiny_engine)


@pytest.fixture
def studio_space(tmp_path, tiny_engine):
    """The same studio with a Space's rules and caps."""
    from studio.ui.config import UiConfig
    from studio.ui.work import Studio

    return Studio(UiConfig.from_env(space=True, data=tmp_path / "space"), engine=tiny_engine)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
