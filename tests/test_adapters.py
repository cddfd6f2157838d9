"""LoRA adapters on a tiny random llama: mixing by hand, enable / disable / re-weight,
isolation from the plain engine, and clear errors that leave loaded adapters alone."""

from __future__ import annotations

import copy
import json
import shutil
import warnings

import pytest
import torch

from models.adapters import (
    AdapterError,
    AdapterSet,
    inspect_adapter,
    list_adapters,
    mix_rows,
    shared_copy,
)
from models.sources import BASE, Row, SequenceSource

from conftest import make_tiny_lm

PROMPT = "The old house on the hill"


def make_adapter(lm, path, seed: int, targets=("q_proj", "v_proj", "down_proj"), rank: int = 4,
                 meta: bool = True):
    """A LoRA adapter with random (non-zero) A and B, saved as peft saves it."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    with warnings.catch_warnings():  # a transformers deprecation note raised inside peft
        warnings.simplefilter("ignore", FutureWarning)
        pm = get_peft_model(copy.deepcopy(lm.model), LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules=list(targets), init_lora_weights=False))
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # big enough that every adapter visibly moves the logits
    pm.save_pretrained(str(path))
    if meta:
        (path / "perec_adapter.json").write_text(json.dumps({"base_model": lm.name, "method": "test"}))
    return path


@pytest.fixture(scope="module")
def two_adapters(tiny_lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return make_adapter(tiny_lm, root / "a", 1), make_adapter(tiny_lm, root / "b", 2)


@pytest.fixture
def aset(tiny_lm):
    return AdapterSet(tiny_lm.model, tiny_lm.name)


def logits(model, ids, adapter=None):
    with torch.inference_mode():
        x = torch.tensor([ids])
        kw = {"adapter_names": [adapter]} if adapter else {}
        return model(input_ids=x, **kw).logits[0, -1].float()


def test_mix_matches_hand_computed_combination(tiny_lm, aset, two_adapters, tokenizer):
    a, b = (aset.load(p) for p in two_adapters)
    ids = tokenizer.encode(PROMPT)
    base = logits(tiny_lm.model, ids)
    la, lb = logits(aset.peft, ids, a.name), logits(aset.peft, ids, b.name)
    assert (la - base).abs().max() > 1e-2 and (lb - base).abs().max() > 1e-2
    src = SequenceSource(aset.peft, mix_rows([(a.name, 0.7), (b.name, -0.4)]), config=tiny_lm.model.config)
    got = src.prefill(ids)
    want = base + 0.7 * (la - base) - 0.4 * (lb - base)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # ...and it stays right over cached steps.
    got2 = src.step(42)
    ids2 = ids + [42]
    base2, la2, lb2 = logits(tiny_lm.model, ids2), logits(aset.peft, ids2, a.name), logits(aset.peft, ids2, b.name)
    torch.testing.assert_close(got2, base2 + 0.7 * (la2 - base2) - 0.4 * (lb2 - base2), atol=1e-4, rtol=1e-4)


def test_single_adapter_at_weight_one_is_that_adapter(aset, two_adapters):
    a = aset.load(two_adapters[0])
    assert mix_rows([(a.name, 1.0)]) == [Row(a.name, (), 1.0)]
    assert mix_rows([]) == [Row(BASE, (), 1.0)]


def test_enable_disable_reweight_without_reloading(aset, two_adapters):
    a, b = (aset.load(p) for p in two_adapters)
    peft_before = aset.peft
    aset.set_weight(a.name, 0.25)
    aset.disable(b.name)
    assert aset.active() == [(a.name, 0.25)]
    aset.enable(b.name)
    assert aset.active() == [(a.name, 0.25), (b.name, 1.0)]
    assert aset.load(two_adapters[0]) is a  # same directory: found, not reloaded
    assert aset.peft is peft_before
    with pytest.raises(AdapterError, match="no adapter named 'nope'"):
        aset.set_weight("nope", 1.0)
    with pytest.raises(AdapterError, match="finite"):
        aset.set_weight(a.name, float("nan"))
    aset.unload(b.name)
    assert [n for n, _ in aset.active()] == [a.name]


def test_loading_never_changes_the_plain_model(tiny_lm, aset, two_adapters, tokenizer):
    ids = tokenizer.encode(PROMPT)
    before = logits(tiny_lm.model, ids)
    for p in two_adapters:
        aset.load(p)
    assert not any("lora" in n for n, _ in tiny_lm.model.named_modules())
    torch.testing.assert_close(logits(tiny_lm.model, ids), before)


def test_shared_copy_shares_weights(tiny_lm):
    c = shared_copy(tiny_lm.model)
    assert c is not tiny_lm.model
    for (n1, p1), (n2, p2) in zip(tiny_lm.model.named_parameters(), c.named_parameters()):
        assert n1 == n2 and p1 is p2


def test_generate_through_the_api_with_an_adapter(tiny_engine, two_adapters):
    from models.adapters import adapters_for
    from studio.decode.settings import Settings
    from studio.steer import steering

    plain = tiny_engine.generate(PROMPT, None, Settings(max_new_tokens=8, seed=3))
    kw = steering(tiny_engine, adapter=f"{two_adapters[0]}:1.0")
    steered = tiny_engine.generate(PROMPT, None, Settings(max_new_tokens=8, seed=3), **kw)
    assert steered.tokens == 8 and steered.token_ids != plain.token_ids
    again = tiny_engine.generate(PROMPT, None, Settings(max_new_tokens=8, seed=3))
    assert again.token_ids == plain.token_ids  # the plain engine is unchanged
    s = adapters_for(tiny_engine)
    for name in list(s.adapters):
        s.unload(name)


# ---------------------------------------------------------------------- bad input


def _assert_untouched(aset, tiny_lm, tokenizer, loaded, expected):
    assert list(aset.adapters) == loaded
    ids = tokenizer.encode(PROMPT)
    for name, want in expected.items():
        torch.testing.assert_close(logits(aset.peft, ids, name), want)


def test_bad_adapters_give_clear_errors_and_leave_loaded_ones_alone(tiny_lm, aset, two_adapters,
                                                                   tokenizer, tmp_path):
    a = aset.load(two_adapters[0])
    ids = tokenizer.encode(PROMPT)
    expected = {a.name: logits(aset.peft, ids, a.name)}

    corrupt = tmp_path / "corrupt"
    shutil.copytree(two_adapters[1], corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x00garbage, not safetensors")
    with pytest.raises(AdapterError, match="corrupt or unreadable"):
        aset.load(corrupt)
    _assert_untouched(aset, tiny_lm, tokenizer, [a.name], expected)

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(two_adapters[1] / "adapter_config.json", pickled)
    (pickled / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(AdapterError, match="pickled weights .*adapter_model.bin.*safetensors"):
        aset.load(pickled)

    no_config = tmp_path / "no_config"
    shutil.copytree(two_adapters[1], no_config)
    (no_config / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match="has no adapter_config.json"):
        aset.load(no_config)

    bad_json = tmp_path / "bad_json"
    shutil.copytree(two_adapters[1], bad_json)
    (bad_json / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="not valid JSON"):
        aset.load(bad_json)

    with pytest.raises(AdapterError, match="does not exist"):
        aset.load(tmp_path / "missing")
    _assert_untouched(aset, tiny_lm, tokenizer, [a.name], expected)


def test_mismatched_base_model_is_refused(tiny_lm, aset, two_adapters, tokenizer, tmp_path):
    a = aset.load(two_adapters[0])
    expected = {a.name: logits(aset.peft, tokenizer.encode(PROMPT), a.name)}
    narrow = make_tiny_lm(tokenizer, seed=5, hidden=32)
    other = make_adapter(narrow, tmp_path / "narrow", 3, meta=False)
    with pytest.raises(AdapterError, match=r"does not fit model 'tiny-random-0': .* has in_features=\d+, the adapter expects \d+"):
        aset.load(other)
    deep = make_tiny_lm(tokenizer, seed=6, layers=3)
    deeper = make_adapter(deep, tmp_path / "deeper", 4, meta=False)
    with pytest.raises(AdapterError, match="which this model lacks"):
        aset.load(deeper)
    named = make_adapter(tiny_lm, tmp_path / "named", 5)
    (named / "perec_adapter.json").write_text(json.dumps({"base_model": "SomeOtherModel"}))
    with pytest.raises(AdapterError, match="trained on base model 'SomeOtherModel'"):
        aset.load(named)
    _assert_untouched(aset, tiny_lm, tokenizer, [a.name], expected)


def test_list_adapters_reports_problems_per_directory(tiny_lm, two_adapters, tmp_path):
    shutil.copytree(two_adapters[0], tmp_path / "good")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_model.pt").write_bytes(b"x")
    rows = {r["name"]: r for r in list_adapters(tmp_path)}
    assert rows["good"]["error"] == "" and rows["good"]["rank"] == 4
    assert "pickled" in rows["broken"]["error"]
    assert list_adapters(tmp_path / "nowhere") == []
    info, shapes = inspect_adapter(tmp_path / "good")
    assert info.base_model == tiny_lm.name and any(".lora_A." in k for k in shapes)


def test_parse_weighted_specs():
    from studio.steer import parse_weighted

    assert parse_weighted("adapters/x:0.5", 1.0, "adapter") == ("adapters/x", 0.5)
    assert parse_weighted("adapters/x", 1.0, "adapter") == ("adapters/x", 1.0)
    assert parse_weighted("in the style of: a sea shanty", 1.5, "steer") == ("in the style of: a sea shanty", 1.5)
    assert parse_weighted("joyful:-2", 1.5, "steer") == ("joyful", -2.0)
    with pytest.raises(ValueError, match="must not be empty"):
        parse_weighted("  ", 1.0, "bank")
