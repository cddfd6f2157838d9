"""Training adapters with trl on a tiny random llama: SFT and DPO run, the result loads at
once, a second run resumes, and bad input fails clearly without touching a good adapter."""

from __future__ import annotations

import json

import pytest
import torch

from models.adapters import AdapterSet
from models.train import TrainingData, TrainingError, chunk_text, read_training_data, train_adapter

TEXT = ("It was a bright cold day in April, and the clocks were striking thirteen. "
        "Winston Smith slipped quickly through the glass doors. ") * 12
QUIET = dict(echo=None, bar=False, batch_size=2, max_length=32, rank=4)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "story.txt"
    p.write_text(TEXT)
    return p


@pytest.fixture(scope="module")
def sft_adapter(tiny_lm, text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sft"
    steps = []
    summary = train_adapter(text_file, out, model=tiny_lm, max_steps=3, save_steps=2,
                            progress=lambda step, total, loss: steps.append((step, total)), **QUIET)
    return out, summary, steps


def test_sft_runs_reports_progress_and_loads_at_once(tiny_lm, sft_adapter, tokenizer):
    out, summary, steps = sft_adapter
    assert summary["steps"] == 3 and summary["method"] == "sft"
    assert summary["base_model"] == tiny_lm.name and summary["final_loss"] > 0
    assert [s for s, _ in steps] == [1, 2, 3] and all(t == 3 for _, t in steps)
    assert (out / "adapter_model.safetensors").is_file()
    assert not list(out.glob("*.bin")) and not list(out.glob(".partial-*"))
    s = AdapterSet(tiny_lm.model, tiny_lm.name)
    info = s.load(out)
    assert info.meta["steps"] == 3
    ids = torch.tensor([tokenizer.encode("It was a bright cold day")])
    with torch.inference_mode():
        assert s.peft(input_ids=ids, adapter_names=[info.name]).logits.shape[-1] == tiny_lm.vocab_size


def test_second_run_resumes_from_the_last_checkpoint(tiny_lm, sft_adapter, text_file):
    out, _, _ = sft_adapter
    lines = []
    summary = train_adapter(text_file, out, model=tiny_lm, max_steps=4, save_steps=2,
                            **dict(QUIET, echo=lines.append))
    assert any("resuming from checkpoint-3" in ln for ln in lines)
    assert summary["steps"] == 4
    assert json.loads((out / "perec_adapter.json").read_text())["steps"] == 4


def test_a_different_run_never_continues_anothers_checkpoints(tiny_lm, sft_adapter, tmp_path):
    out, _, _ = sft_adapter
    other = tmp_path / "other.txt"
    other.write_text("Completely different words about the sea and ships. " * 20)
    before = (out / "adapter_model.safetensors").read_bytes()
    with pytest.raises(TrainingError, match="holds checkpoints of a different run .*data"):
        train_adapter(other, out, model=tiny_lm, max_steps=4, **QUIET)
    assert (out / "adapter_model.safetensors").read_bytes() == before


def test_dpo_from_chosen_rejected_pairs(tiny_lm, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": "The cat", "chosen": " sat on a mat.",
                                           "rejected": " ate the cheese."}) for _ in range(6)))
    summary = train_adapter(pairs, tmp_path / "dpo", model=tiny_lm, max_steps=2, **QUIET)
    assert summary["method"] == "dpo" and summary["steps"] == 2
    assert AdapterSet(tiny_lm.model, tiny_lm.name).load(tmp_path / "dpo").meta["method"] == "dpo"


def test_bad_training_input_fails_clearly_and_leaves_the_adapter(tiny_lm, sft_adapter, tmp_path):
    out, _, _ = sft_adapter
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(TrainingError, match="empty.txt' is empty"):
        train_adapter(empty, out, model=tiny_lm, max_steps=2, **QUIET)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{oops\n')
    with pytest.raises(TrainingError, match=r"bad.jsonl:2: not valid JSON"):
        train_adapter(bad, out, model=tiny_lm, max_steps=2, **QUIET)
    half = tmp_path / "half.jsonl"
    half.write_text('{"chosen": "yes"}\n')
    with pytest.raises(TrainingError, match="needs 'chosen' and 'rejected'"):
        read_training_data(half)
    with pytest.raises(TrainingError, match="no training data at"):
        train_adapter(tmp_path / "missing.txt", out, model=tiny_lm, **QUIET)
    with pytest.raises(TrainingError, match="max_steps must be an integer >= 1"):
        train_adapter(empty, out, model=tiny_lm, max_steps=0, **QUIET)
    with pytest.raises(TrainingError, match="dpo training needs preference pairs"):
        train_adapter(TrainingData("text", [{"text": "a b c"}]), out, model=tiny_lm, method="dpo", **QUIET)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_reading_a_directory_and_chunking(tmp_path):
    (tmp_path / "a.txt").write_text("One. Two. Three.\n\nFour five six.")
    (tmp_path / "b.jsonl").write_text('{"text": "from jsonl"}\n')
    (tmp_path / "ignored.py").write_text("print('not data')")
    td = read_training_data(tmp_path, chunk_words=3)
    assert td.kind == "text" and [r["text"] for r in td.records] == ["One. Two. Three.", "Four five six.", "from jsonl"]
    assert chunk_text("a b c d e f g. h i.", chunk_words=4) == ["a b c d e f g.", "h i."]
    (tmp_path / "c.jsonl").write_text('{"chosen": "x", "rejected": "y"}\n')
    with pytest.raises(TrainingError, match="mixes plain text and preference pairs"):
        read_training_data(tmp_path)


def test_cli_train_adapter(tiny_lm, text_file, tmp_path, capsys):
    from studio.cli import main

    model_dir = tmp_path / "tiny-model"
    tiny_lm.model.save_pretrained(model_dir)
    tiny_lm.tokenizer.save_pretrained(model_dir)
    out = tmp_path / "cli-adapter"
    rc = main(["train-adapter", "--data", str(text_file), "--out", str(out), "--max-steps", "2",
               "--rank", "4", "--max-length", "32", "--model", str(model_dir), "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and "loss" in captured.err
    assert (out / "adapter_model.safetensors").is_file()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train-adapter", "--data", str(empty), "--out", str(out)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_studio_panel_functions(tiny_lm, text_file, tmp_path):
    from studio.steer import adapter_table, train_from_upload

    seen = []
    s = train_from_upload(text_file, "sea shanty!", root=tmp_path, model=tiny_lm, max_steps=1,
                          progress=lambda step, total, loss: seen.append((step, total)), rank=4, max_length=32)
    assert seen == [(1, 1)] and s["path"].endswith("sea_shanty_")
    rows = adapter_table(tmp_path)
    assert [r["name"] for r in rows] == ["sea_shanty_"] and rows[0]["error"] == "" and rows[0]["steps"] == 1
    from models.adapters import AdapterError

    with pytest.raises(AdapterError, match="give the adapter a name"):
        train_from_upload(text_file, " / ", root=tmp_path, model=tiny_lm)


def test_distil_a_constraint_into_an_adapter(tiny_engine, tiny_lm, tmp_path):
    from models.adapters import adapters_for
    from studio.distill import distill, measure
    from constraints.spec import parse_spec

    c = parse_spec("lipogram:e")
    s = distill(tiny_engine, c, tmp_path / "d", prompts=["The old house", "A dog ran"], per_prompt=1,
                tokens=8, max_steps=2, model=tiny_lm, **QUIET)
    recs = [json.loads(ln) for ln in (tmp_path / "d" / "distilled.jsonl").read_text().splitlines()]
    assert s["examples"] == len(recs) == 2 and s["steps"] == 2
    assert all(set(r) == {"prompt", "completion", "eos"} and "e" not in r["completion"].lower() for r in recs)
    rep = measure(tiny_engine, c, s["path"], ["Once upon a time"], tokens=6)
    assert rep["base"]["violations"] == 0 == rep["adapter"]["violations"]
    assert rep["base"]["perplexity_under_base"] > 1 and rep["adapter"]["tokens_scored"] > 0
    aset = adapters_for(tiny_engine)
    for name in list(aset.adapters):
        aset.unload(name)


def test_prompt_completion_jsonl(tmp_path):
    f = tmp_path / "pc.jsonl"
    f.write_text('{"prompt": "The sea", "completion": " was calm."}\n')
    assert read_training_data(f).records == [{"prompt": "The sea", "completion": " was calm."}]
    f.write_text('{"prompt": "The sea", "completion": " was calm."}\n{"text": "plain"}\n')
    with pytest.raises(TrainingError, match="mixes plain text and prompt/completion"):
        read_training_data(f)


def test_end_of_text_only_where_an_example_ends(tokenizer, tmp_path):
    from models.train import pretokenize

    (tmp_path / "book.txt").write_text("One two three. Four five six.")
    (tmp_path / "lines.jsonl").write_text('{"text": "A whole example."}\n')
    chunk = read_training_data(tmp_path / "book.txt").records
    whole = read_training_data(tmp_path / "lines.jsonl").records
    eos = tokenizer.eos_token_id
    assert pretokenize(chunk, tokenizer, 64)[0]["input_ids"][-1] != eos  # a piece of a longer text
    assert pretokenize(whole, tokenizer, 64)[0]["input_ids"][-1] == eos
    pc = pretokenize([{"prompt": "The sea", "completion": " was calm", "eos": False}], tokenizer, 64)[0]
    n_prompt = len(tokenizer.encode("The sea"))
    assert pc["labels"][:n_prompt] == [-100] * n_prompt and pc["labels"][n_prompt:] == pc["input_ids"][n_prompt:]
