"""Settings → Model on a Space: only the allow-list loads (refused before any download),
at most PEREC_MAX_MODELS stay loaded (least recently used unloaded, never one in use), each
model loads under its own lock, and one failed load is the asker's failure only.  Tiny
random llamas saved to local folders (no hub anywhere)."""

import gc
import threading
import weakref

import pytest

import models.loading as loading
from constraints.limits import LimitError
from models.loading import PROGRESS, ModelLoadError, load_model
from studio.ui.config import UiConfig, model_list
from studio.ui.work import SettingsIn, Studio, UserError

from conftest import make_tiny_lm
from test_fair_share import Gate


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tokenizer):
    """Three tiny models, each a folder a server could list."""
    out = []
    for seed in (11, 12, 13):
        d = tmp_path_factory.mktemp(f"tiny-{seed}")
        lm = make_tiny_lm(tokenizer, seed=seed)
        lm.model.save_pretrained(d)
        tokenizer.save_pretrained(d)
        out.append(str(d))
    return out


@pytest.fixture
def space(tmp_path, tiny_engine, model_dirs, monkeypatch):
    monkeypatch.delenv("PEREC_MAX_MODELS", raising=False)
    studio = Studio(UiConfig.from_env(space=True, data=tmp_path, models=tuple(model_dirs)), engine=tiny_engine)
    yield studio
    for eng in [studio.models.get(n) for n in studio.models.names()]:
        loading.unload(eng.lm)


def test_the_setting_lists_names():
    assert model_list(" a/b, ,c ,a/b") == ("a/b", "c")
    assert UiConfig(space=False, models=("x",)).allowed_models is None  # a writer's machine: any model
    assert UiConfig(space=True, models=("x",)).allowed_models == {"x"}


def test_a_model_off_the_list_is_refused_before_anything_is_fetched(space, monkeypatch):
    def no_fetch(*a, **k):
        raise AssertionError("nothing may be resolved or fetched for a refused model")

    monkeypatch.setattr(loading, "resolve", no_fetch)
    before = loading.loaded()
    for name in ("gpt2", "HuggingFaceTB/SmolLM2-1.7B", "/tmp", "../models"):
        with pytest.raises(UserError) as info:
            space.engine(name)
        msg = str(info.value)
        assert "not offered here" in msg and "PEREC_MODELS" in msg and "\n" not in msg
    assert loading.loaded() == before and space.models.names() == []
    # The embedded default is always offered (here: the studio's default engine).
    assert space.engine("") is space.default_engine


def test_listed_models_load_and_the_least_recently_used_idle_one_goes(space, model_dirs):
    a, b = model_dirs[:2]
    ea = space.engine(a)
    assert space.models.names() == [a] and a in loading.loaded()
    # The cap (2) holds the default and one more: loading b unloads a, which is idle.
    weights = weakref.ref(ea.model)
    eb = space.engine(b)
    assert space.models.names() == [b] and space.models.evictions == 1
    assert a not in loading.loaded() and ea is not eb
    del ea
    gc.collect()
    assert weights() is None  # nothing else held a's weights: their memory is back
    assert space.engine(b) is eb  # kept: no second load
    gen, _, _ = space.start("The old house", [], "", SettingsIn(model=b, max_new_tokens=4, seed=1))
    assert list(space.stream(gen, "A"))[-1] == gen.result.text and gen.engine is eb


def test_a_model_in_use_is_never_unloaded(space, model_dirs):
    a, b = model_dirs[:2]
    gate = Gate()
    gen, _, _ = space.start("The old house", [], "", SettingsIn(model=a, max_new_tokens=6, seed=1))
    gen.controllers.append(gate)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("texts", list(space.stream(gen, "A"))))
    t.start()
    try:
        assert gate.entered.wait(60)  # a's generation is running
        with pytest.raises(LimitError) as info:
            space.engine(b)
        msg = str(info.value)
        assert "models kept loaded" in msg and "PEREC_MAX_MODELS" in msg and "in use" in msg
        assert space.models.names() == [a] and b not in loading.loaded()
    finally:
        gate.open.set()
        t.join(60)
    assert out["texts"][-1] == gen.result.text  # it ran to its end on its model
    space.engine(b)  # idle now: a makes room
    assert space.models.names() == [b]


def test_a_prepared_generation_whose_model_went_is_refused_in_one_line(space, model_dirs):
    a, b = model_dirs[:2]
    gen, _, _ = space.start("The old house", [], "", SettingsIn(model=a, max_new_tokens=4, seed=1))
    space.engine(b)  # nothing ran on a yet: it is idle, and goes
    with pytest.raises(ModelLoadError, match="unloaded to make room"):
        next(space.stream(gen, "A"))
    assert space.shares.running("A") == 0


def test_more_models_kept_when_the_setting_allows(space, model_dirs, monkeypatch):
    monkeypatch.setenv("PEREC_MAX_MODELS", "3")
    a, b, c = model_dirs
    space.engine(a), space.engine(b)
    assert space.models.names() == [a, b] and space.models.evictions == 0
    space.engine(a)  # used again: b is now the least recently used
    space.engine(c)
    assert space.models.names() == [a, c] and space.models.evictions == 1


def test_a_failed_load_is_the_askers_failure_only(tmp_path, tiny_engine, model_dirs):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    studio = Studio(UiConfig.from_env(space=True, data=tmp_path, models=(str(broken),)), engine=tiny_engine)
    PROGRESS.set("ready", loading.EMBEDDED_NAME)
    with pytest.raises(UserError, match="Could not load the model"):
        studio.engine(str(broken))
    # The studio's status is the default model's, still ready, and everyone else goes on.
    assert PROGRESS.phase == "ready" and studio.engine_ready("")
    gen, _, _ = studio.start("The old house", [], "", SettingsIn(max_new_tokens=4, seed=1))
    assert list(studio.stream(gen, "B"))[-1] == gen.result.text
    assert studio.models.names() == []


def test_each_model_loads_under_its_own_lock(model_dirs, monkeypatch):
    """A slow load of one model (a download) holds back neither another model nor the
    callers of the default one; a second caller of the same model waits for the first
    load instead of repeating it."""
    slow, other = model_dirs[2], model_dirs[1]
    real_load = loading._load
    inside, release, calls = threading.Event(), threading.Event(), []

    def held_load(name, key, dev, dt, allow_local):
        calls.append(key[0])
        if key[0] == slow:
            inside.set()
            assert release.wait(60)
        return real_load(name, key, dev, dt, allow_local)

    monkeypatch.setattr(loading, "_load", held_load)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", load_model(slow)))
    second = threading.Thread(target=lambda: results.setdefault("second", load_model(slow)))
    first.start()
    try:
        assert inside.wait(60)
        second.start()
        lm = load_model(other)  # not held back by the slow one
        assert lm.name == other
    finally:
        release.set()
        first.join(60)
        second.join(60)
    assert results["first"] is results["second"] and calls.count(slow) == 1
    for lm in (results["first"], lm):
        loading.unload(lm)
    assert slow not in loading.loaded()
