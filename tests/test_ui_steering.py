"""The studio's Steering tab on a tiny random llama: the table of adapters on disk lists one
trained from an upload (with progress), a chosen adapter and a word bank really steer
Generate, bad adapters and bad uploads give clear messages that leave the draft and the
adapters on disk alone, and each writer keeps their own steering."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from studio.ui import UiConfig
from studio.ui.callbacks import Handlers
from studio.ui.session import Session
from studio.ui.steering import SteeringHandlers, SteeringIn, parse_mix
from studio.ui.work import SettingsIn, Studio, UserError

from test_adapters import make_adapter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning toasts, outside a page

PROMPT = "The old house on the hill"
BANK = ["sea", "ship", "salt", "wave", "storm"]
TEXT = ("It was a bright cold day in April, and the clocks were striking thirteen. "
        "Winston Smith slipped quickly through the glass doors. ") * 6
# The settings panel, in layout order: model, mode, temperature, top_k, top_p, rep, max tokens, seed
PANEL = ["", "continue", 0.8, 50, 0.95, 1.15, 12, 3]
# The steering panel, in layout order (see steering.layout: ui.steering_inputs)
OFF = dict(mix=[], extra="", bank_words="", bank_file=None, bank_strength=3.0, steer_text="",
           steer_strength=1.5, expert=None, anti=None, alpha=2.0, disc_a=None, disc_b=None,
           disc_target="", disc_strength=2.0)


def panel(**over) -> list:
    return list(dict(OFF, **over).values())


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("adapters")


@pytest.fixture(scope="module")
def studio(tiny_engine, root, tmp_path_factory):
    from models.adapters import adapters_for

    cfg = UiConfig.from_env(space=False, data=tmp_path_factory.mktemp("data"))
    yield Studio(cfg, engine=tiny_engine, adapter_root=root)
    s = adapters_for(tiny_engine)  # other test modules share the tiny model's adapter set
    for name in list(s.adapters):
        s.unload(name)


@pytest.fixture(scope="module")
def trained(studio, root, tmp_path_factory):
    """An adapter trained through the panel from an uploaded text file (2 steps)."""
    data = tmp_path_factory.mktemp("upload") / "story.txt"
    data.write_text(TEXT)
    seen = []
    summary = SteeringHandlers(studio).train_adapter(
        data, "sea shanty", 2, 4, "", progress=lambda p, desc=None: seen.append((p, desc)))
    return summary, seen


def run(studio, steering=None, seed=3, n=30) -> str:
    gen, _note, _base = studio.start(PROMPT, [], "", SettingsIn(max_new_tokens=n, seed=seed), steering=steering)
    return "".join(gen)


def share(text: str) -> float:
    words = re.findall(r"[a-z]+", text.lower())
    return sum(w in BANK for w in words) / max(1, len(words))


# ----------------------------------------------------------------- adapters


def test_train_from_upload_reports_progress_and_the_table_lists_it(studio, trained, root):
    summary, seen = trained
    assert summary["steps"] == 2 and summary["path"].endswith("sea_shanty")
    assert seen[0][0] == 0.0 and [p for p, _ in seen[1:]] == [(1, 2), (2, 2)]
    assert not list(root.glob("sea_shanty/.partial-*"))
    h = SteeringHandlers(studio)
    table, mix, expert, anti = h.refresh([])
    assert [r[0] for r in table] == ["sea_shanty"]
    row = table[0]
    assert row[1] == studio.default_engine.name and row[3] == 4 and row[4] == 2 and row[-1] == ""
    assert mix == [[False, "sea_shanty", 1.0]]
    assert "sea_shanty" in [c[0] if isinstance(c, tuple) else c for c in expert.choices]
    # The writer's ticks and weights survive a refresh.
    _, mix, _, _ = h.refresh([[True, "sea_shanty", 0.5]])
    assert mix == [[True, "sea_shanty", 0.5]]


def test_a_chosen_adapter_mixes_into_generate(studio, root, tiny_lm):
    make_adapter(tiny_lm, root / "loud", seed=1)
    plain = run(studio)
    s = SteeringHandlers(studio).collect(*panel(mix=[[True, "loud", 1.0], [False, "sea_shanty", 1.0]]))
    assert s.adapters == [("loud", 1.0)]
    gen, note, _ = studio.start(PROMPT, [], "", SettingsIn(max_new_tokens=30, seed=3), steering=s)
    steered = "".join(gen)
    assert "loud ×1" in note and steered != plain
    assert run(studio) == plain  # the plain engine is unchanged
    assert run(studio, SteeringIn(adapters=[("loud", 0.0)])) == plain  # weight 0: the base alone


def test_missing_and_corrupt_adapters_are_clear_and_leave_the_draft(studio, root, tmp_path):
    with pytest.raises(UserError, match="no adapter '/nowhere/lost-adapter'"):
        run(studio, SteeringIn(adapters=[("/nowhere/lost-adapter", 1.0)]))
    with pytest.raises(UserError, match="no adapter 'gone'"):
        run(studio, SteeringIn(adapters=[("gone", 1.0)]))
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    (bad / "adapter_model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(UserError, match="corrupt or unreadable"):
        run(studio, SteeringIn(adapters=[(str(bad), 1.0)]))
    # Through the page's handlers: the session gets the panel, Generate says what is wrong.
    page, sh, session = Handlers(studio), SteeringHandlers(studio), Session()
    sh.sync(session, *panel(extra="/nowhere/lost-adapter:0.5"))
    out = list(page.generate(None, PROMPT, "", session, *PANEL))
    assert len(out) == 1 and out[0][0] == gr.skip()  # the draft is left as it was
    assert "/nowhere/lost-adapter" in out[0][1] and out[0][1].startswith("⚠")
    sh.sync(session, *panel(mix=[[True, "loud", "lots"]]))
    out = list(page.generate(None, PROMPT, "", session, *PANEL))
    assert len(out) == 1 and "weight of adapter 'loud' must be a number" in out[0][1]


def test_space_mode_uses_only_the_adapter_folder_and_refuses_training(tiny_engine, root, tmp_path):
    cfg = UiConfig.from_env(space=True, data=tmp_path)
    st = Studio(cfg, engine=tiny_engine, adapter_root=root)
    with pytest.raises(UserError, match="no adapter named"):
        run(st, SteeringIn(adapters=[(str(root / "loud"), 1.0)]))
    h = SteeringHandlers(st)
    with pytest.raises(UserError, match="Training is off on this shared Space"):
        h.train_adapter(tmp_path / "x.txt", "x", 1, 4, "")
    status, table, *_ = h.train(None, "x", 1, 4, "", [])
    assert status.startswith("⚠") and "shared Space" in status
    assert h.collect(*panel(extra="/some/where")).adapters == []  # no folders outside it


# ----------------------------------------------------------------- training input


def test_empty_upload_or_bad_name_fails_clearly_and_leaves_adapters(studio, trained, root, tmp_path):
    out = root / "sea_shanty"
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    h = SteeringHandlers(studio)
    with pytest.raises(UserError, match="is empty"):
        h.train_adapter(empty, "sea shanty", 2, 4, "")
    status, table, *_ = h.train(str(empty), "sea shanty", 2, 4, "", [])
    assert status.startswith("⚠") and "is empty" in status
    assert "sea_shanty" in [r[0] for r in table if not r[-1]]
    status, *_ = h.train(str(empty), "brand_new", 2, 4, "", [])
    assert "is empty" in status and not (root / "brand_new").exists()
    status, *_ = h.train(None, "x", 2, 4, "", [])
    assert "upload a training file" in status.lower()
    data = tmp_path / "ok.txt"
    data.write_text(TEXT)
    status, *_ = h.train(str(data), " / ", 2, 4, "", [])
    assert "give the adapter a name" in status.lower()
    status, *_ = h.train(str(data), "x", 0, 4, "", [])
    assert "max steps must be between" in status.lower() and not (root / "x").exists()
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


# ----------------------------------------------------------------- controllers


def test_word_bank_steers_generate(studio, tmp_path):
    plain = [share(run(studio, None, seed)) for seed in range(3)]
    strong = SteeringIn(bank_words="sea, ship salt\nwave;storm", bank_strength=10)
    steered = [share(run(studio, strong, seed)) for seed in range(3)]
    assert max(plain) < 0.1 and min(steered) > 0.5
    listed = tmp_path / "bank.txt"
    listed.write_text("# the sea\nsea ship\nsalt, wave storm\n")
    assert min(share(run(studio, SteeringIn(bank_file=str(listed), bank_strength=10), s)) for s in range(2)) > 0.5
    assert run(studio, SteeringIn(bank_words="sea ship", bank_strength=0)) == run(studio)  # 0: off
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(UserError, match="has no words"):
        run(studio, SteeringIn(bank_file=str(empty)))


def test_prompt_contrast_dexperts_and_discriminator(studio, root, tiny_lm, tmp_path):
    from models.controllers import DiscriminatorGuidance, ExpertAntiExpert, PromptContrast

    make_adapter(tiny_lm, root / "quiet", seed=2)
    kw = SteeringIn(steer_text="A story about the sea.", steer_strength=2.0).kwargs(studio.default_engine, root=root)
    assert isinstance(kw["controllers"][0], PromptContrast) and kw["feed"] is not None
    s = SteeringHandlers(studio).collect(*panel(expert="loud", anti="quiet", alpha=1.5))
    kw = s.kwargs(studio.default_engine, root=root)
    assert isinstance(kw["controllers"][0], ExpertAntiExpert) and kw["controllers"][0].alpha == 1.5
    assert run(studio, s) != run(studio)
    with pytest.raises(UserError, match="both an expert and an anti-expert"):
        run(studio, SteeringIn(expert="loud"))
    a, b = tmp_path / "sunny.txt", tmp_path / "rainy.txt"
    a.write_text("the sun is bright\nwarm golden light\na clear blue sky\nsunshine on the hill\n")
    b.write_text("grey rain falls\nwet cold puddles\nstorm clouds gather\na dark drizzle\n")
    s = SteeringIn(disc_a=str(a), disc_b=str(b), disc_strength=3.0)
    first = s.kwargs(studio.default_engine, root=root)["controllers"][0]
    assert isinstance(first, DiscriminatorGuidance) and first.strength == 3.0
    assert first.disc.labels == ("sunny", "rainy")
    assert s.kwargs(studio.default_engine, root=root)["controllers"][0].disc is first.disc  # trained once
    assert run(studio, s, n=8)
    with pytest.raises(UserError, match="needs file B"):
        run(studio, SteeringIn(disc_a=str(a)))


# ----------------------------------------------------------------- sessions and the page


def test_each_writer_keeps_their_own_steering(studio):
    sh = SteeringHandlers(studio)
    one, two = Session(), Session()
    sh.sync(one, *panel(bank_words="sea ship", bank_strength=-4, mix=[[True, "loud", "0.5"]]))
    sh.sync(two, *panel(steer_text="rain"))
    assert one.steering.bank_words == "sea ship" and one.steering.bank_strength == -4
    assert one.steering.adapters == [("loud", 0.5)] and not one.steering.steer_text
    assert two.steering.steer_text == "rain" and two.steering.adapters == [] and not two.steering.bank_words
    sh.sync(one, *panel())
    assert one.steering.is_off() and two.steering.steer_text == "rain"


def test_parse_mix_reads_what_dataframes_send():
    import pandas as pd

    df = pd.DataFrame([[True, "a", 0.5], ["false", "b", None], [True, "c", ""], [None, None, None]],
                      columns=["use", "adapter", "weight"])
    assert parse_mix(df) == [(True, "a", 0.5), (False, "b", 1.0), (True, "c", 1.0)]
    assert parse_mix({"headers": ["use", "adapter", "weight"], "data": [["true", "a", "2"]]}) == [(True, "a", 2.0)]


def test_the_page_has_the_steering_tab(tiny_engine, root, tmp_path):
    from studio.ui import build_app

    demo = build_app(tiny_engine, config=UiConfig.from_env(space=False, data=tmp_path), adapter_root=root)
    labels = [c.get("props", {}).get("label") for c in demo.config["components"]]
    assert "Steering" in labels and "Adapters on disk" in labels
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert {"studio_generate", "studio_adapters", "studio_train_adapter"} <= names
    assert demo.studio.adapter_root == root
