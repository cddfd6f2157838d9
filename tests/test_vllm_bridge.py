"""Perec's rules as a vLLM logits processor, driven by hand (no vLLM needed): per-request
mask sets over a batch whose rows are added, removed, moved and swapped as vLLM reports;
EOS only where the rules may end; refusals for rules that need back-off; requests
prepared for vLLM; results told as our engine tells them.  One test (marker ``vllm``)
runs vLLM itself, skipped unless it is installed (``make vllm``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest
import torch

from constraints.spec import parse_spec, parse_specs
from studio.bridges.outcome import replay
from studio.bridges.rows import RowSpec
from studio.bridges.vllm import PerecLogitsProcessor, prepare, refusal
from studio.decode.maskset import compile_masks
from studio.decode.settings import Settings
from studio.decode.vocab import vocab_index

ROOT = Path(__file__).resolve().parents[1]


# vLLM's batch-change records, as plain data (the adapter reads only these fields).
class Direction(Enum):
    UNIDIRECTIONAL = 1
    SWAP = 2


@dataclass
class Params:
    extra_args: dict | None
    max_tokens: int = 40


@dataclass
class Update:
    removed: tuple = ()
    added: tuple = ()
    moved: tuple = ()


def params(spec: str | None, context: str = "", max_tokens: int = 40, min_tokens: int = 0) -> Params:
    if spec is None:
        return Params(None, max_tokens)
    return Params({"perec": RowSpec(spec, context, min_tokens).to_args()}, max_tokens)


@pytest.fixture(scope="module")
def proc(tokenizer):
    return PerecLogitsProcessor.for_tokenizer(tokenizer, len(tokenizer))


def expected_mask(tokenizer, spec, context, out, max_tokens, min_tokens=0):
    """What a fresh mask set allows after ``out``: the independent reference."""
    masks = compile_masks(parse_specs([spec]), vocab_index(tokenizer, len(tokenizer)))
    masks.reset(context)
    for t in out:
        masks.advance(t)
    return masks.step_mask(max_tokens - len(out), may_end=len(out) >= min_tokens)


def sample_rows(logits: torch.Tensor, gen: torch.Generator) -> list[int]:
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen).squeeze(1).tolist()


def test_each_row_obeys_its_own_rules_over_steps(proc, tokenizer):
    specs = ["lipogram:e", "lipogram:a & lipogram:o", None, "ban:the,and"]
    outs = [[] for _ in specs]
    proc.update_state(Update(added=tuple((i, params(s), None, outs[i]) for i, s in enumerate(specs))))
    gen = torch.Generator().manual_seed(0)
    width = len(tokenizer)
    eos = set(vocab_index(tokenizer, width).eos_ids)
    live = set(range(len(specs)))
    for _ in range(24):
        raw = torch.randn(len(specs), width, generator=gen) * 4
        logits = proc.apply(raw.clone())
        assert torch.equal(logits[2], raw[2])  # the row without rules is untouched
        for i, tok in enumerate(sample_rows(logits, gen)):
            if i in live:
                if tok in eos:
                    live.discard(i)
                else:
                    outs[i].append(tok)
    for spec, out in zip(specs, outs):
        if spec is not None:
            text = tokenizer.decode(out)
            assert len(out) > 5
            assert parse_specs([spec]).check(text) == [], (spec, text)
    text_free = tokenizer.decode(outs[2])
    assert "e" in text_free.lower()  # random logits do write what the others ban
    proc.update_state(Update(removed=tuple(range(len(specs)))))
    assert not proc.rows.rows


def test_add_remove_move_swap_keep_each_requests_state(proc, tokenizer):
    """After every kind of batch change each index masks as a fresh mask set replayed
    over the tokens of the request now there."""
    enc = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    reqs = {  # request -> (spec, output so far): 'ban' keeps a cross-token tail
        "A": ("ban:thunder", enc(" the thund")),
        "B": ("require:z", enc(" a quiet")),
        "C": ("lipogram:e & ban:ox", enc(" a big o")),
        "D": ("require:q", enc(" quite")),
    }
    where = {"A": 0, "B": 1, "C": 2}
    proc.update_state(Update(added=tuple(
        (i, params(reqs[r][0], "", 40), None, reqs[r][1]) for r, i in where.items())))

    def check_all():
        logits = proc.apply(torch.zeros(4, len(tokenizer)))
        for r, i in where.items():
            spec, out = reqs[r]
            want = expected_mask(tokenizer, spec, "", out, 40)
            assert torch.equal(torch.isfinite(logits[i]), want), (r, i)
        free = set(range(4)) - set(where.values())
        for i in free:
            assert torch.isfinite(logits[i]).all()

    check_all()
    # vLLM appends sampled tokens to the same lists between steps
    reqs["A"][1].extend(enc("er"))
    reqs["B"][1].extend(enc(" zoo"))
    check_all()
    # remove B, add D at its index, then condense: C moves 2 -> 1 ... no, D sits at 1
    proc.update_state(Update(removed=(1,), added=((1, params("require:q"), None, reqs["D"][1]),)))
    where = {"A": 0, "D": 1, "C": 2}
    check_all()
    proc.update_state(Update(moved=((0, 2, Direction.SWAP),)))
    where = {"C": 0, "D": 1, "A": 2}
    check_all()
    proc.update_state(Update(removed=(1,), moved=((2, 1, Direction.UNIDIRECTIONAL),)))
    where = {"C": 0, "A": 1}
    check_all()
    # a request without rules replacing one with rules leaves that index unmasked
    proc.update_state(Update(added=((0, params(None), None, []),)))
    where = {"A": 1}
    check_all()
    proc.update_state(Update(removed=(0, 1)))
    assert not proc.rows.rows


def test_eos_masked_until_rules_may_end(proc, tokenizer):
    vocab = vocab_index(tokenizer, len(tokenizer))
    out = tokenizer.encode(" a quiet", add_special_tokens=False)
    proc.update_state(Update(added=((0, params("require:z", "", 40, min_tokens=0), None, out),
                                    (1, params("lipogram:e", "", 40, min_tokens=6), None, [198]))))
    eos = list(vocab.eos_ids)
    logits = proc.apply(torch.zeros(2, len(tokenizer)))
    assert torch.isinf(logits[0, eos]).all()  # z is still missing
    assert torch.isinf(logits[1, eos]).all()  # fewer than min_tokens written
    out.extend(tokenizer.encode(" zoo", add_special_tokens=False))
    logits = proc.apply(torch.zeros(2, len(tokenizer)))
    assert torch.isfinite(logits[0, eos]).all()
    assert torch.isinf(logits[1, eos]).all()
    proc.update_state(Update(removed=(0, 1)))


def test_a_dead_end_leaves_eos_alone_and_the_result_is_trimmed(proc, tokenizer):
    """'length:<=2' after ' xq' (no word starts so) allows nothing: EOS alone ends that
    request, the other row goes on, and the result tells a dead end, trimmed."""
    vocab = vocab_index(tokenizer, len(tokenizer))
    # (" no", not " ok": OK is read letter by letter, no word of the writer's lexicon.)
    bad = tokenizer.encode(" no xq", add_special_tokens=False)
    proc.update_state(Update(added=((0, params("length:<=2"), None, list(bad)),
                                    (1, params("lipogram:e"), None, []))))
    logits = proc.apply(torch.zeros(2, len(tokenizer)))
    assert torch.isfinite(logits[0]).sum() == 1
    assert bool(torch.isfinite(logits[0, proc.rows.end_id]))
    assert torch.isfinite(logits[1]).sum() > 1000
    proc.update_state(Update(removed=(0, 1)))
    # Told afterwards: ' no' holds, ' xq' is where the rules stopped being met.
    masks = compile_masks(parse_spec("length:<=2"), vocab)
    ok = tokenizer.encode(" no", add_special_tokens=False)
    out = replay(masks, "", ok, ended="eos", max_tokens=40)
    assert (out.text, out.stop_reason) == (" no", "eos")


def test_replay_of_a_real_dead_end_names_the_rules(proc, tokenizer):
    """' cont' is allowed under syllables:1 & lipogram:e (one-syllable words start so),
    yet every one of them has an e: nothing is allowed next.  The processor gives that
    row EOS alone; replaying its tokens reports the dead end, names the rules, trims."""
    vocab = vocab_index(tokenizer, len(tokenizer))
    c = parse_specs(["syllables:1", "lipogram:e"])
    path = tokenizer.encode(" cont", add_special_tokens=False)
    masks = compile_masks(c, vocab)
    masks.reset("")
    for t in path:
        assert masks.allows(t)
        masks.advance(t)
    proc.update_state(Update(added=((0, params(c.spec()), None, list(path)),)))
    logits = proc.apply(torch.zeros(1, len(tokenizer)))
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [proc.rows.end_id]
    proc.update_state(Update(removed=(0,)))
    out = replay(compile_masks(c, vocab), "", path + [proc.rows.end_id], ended="eos", max_tokens=40)
    assert out.stop_reason == "dead_end"
    assert "syllables:1" in out.message and "--backend perec" in out.message
    assert out.text == "" and out.token_ids == []


def test_replay_tells_a_generation_as_our_engine_does(tiny_engine):
    """Our engine's own tokens, replayed: the same text, stop reason and kept tokens."""
    c = parse_spec("lipogram:e")
    for seed, prompt in enumerate(["The old house ", "Once upon a time"]):
        s = Settings(max_new_tokens=12, seed=seed)
        r = tiny_engine.generate(prompt, c, s)
        _ids, context, drop = tiny_engine.encode_prompt(prompt)
        toks = r.token_ids + ([tiny_engine.vocab.eos_ids[0]] if r.stop_reason == "eos" else [])
        out = replay(compile_masks(c, tiny_engine.vocab), context, toks,
                     ended="eos" if r.stop_reason == "eos" else "length",
                     max_tokens=12, drop_space=drop)
        assert (out.text, out.stop_reason, out.token_ids) == (r.text, r.stop_reason, r.token_ids)


def test_replay_trims_a_budget_that_ends_mid_word(tokenizer):
    """The budget ran out inside a word a word rule has not finished: the text is cut
    back to the last whole word, which passes the rule's check."""
    vocab = vocab_index(tokenizer, len(tokenizer))
    c = parse_spec("syllables:1")
    toks = tokenizer.encode(" the big red dog ran to the cont", add_special_tokens=False)
    out = replay(compile_masks(c, vocab), "", toks, ended="length", max_tokens=len(toks))
    assert out.text == " the big red dog ran to the"
    assert out.stop_reason == "max_tokens" and "trimmed" in out.message
    assert c.check(out.text) == []


# ---------------------------------------------------------------- refusals and requests


@pytest.mark.parametrize("spec", ["lipogram:e", "lipogram:e & require:z", "ban:the & pangram",
                                  "lowercase & no-digits", "syllables:1", "syllables:1 & starts-with:s",
                                  "rhymes:day", "syllables:1 | starts-with:b", "form:haiku",
                                  "form:limerick"])
def test_rules_that_never_dead_end_run_in_vllm(spec):
    assert refusal(parse_specs([spec])) is None


@pytest.mark.parametrize("spec,named", [
    ("form:haiku & lipogram:e", "form:haiku & lipogram:e"),
    ("syllables:1 & lipogram:e", "syllables:1 & lipogram:e"),  # ' cont': every completion has an e
    ("lipogram:e & include:sea,salt", "include:sea,salt"),
    ("title-case", "title-case"),
    ("next:syllables:2", "next:syllables:2"),
    ("rhopalism:letters", "rhopalism"),
])
def test_rules_that_need_back_off_are_refused_by_name(spec, named):
    why = refusal(parse_specs([spec]))
    assert why is not None and named in why and "--backend perec" in why


def test_validate_params_refuses_back_off_rules_and_bad_args():
    PerecLogitsProcessor.validate_params(params("lipogram:e"))
    PerecLogitsProcessor.validate_params(params(None))
    PerecLogitsProcessor.validate_params(params("syllables:1"))
    with pytest.raises(ValueError, match="syllables:1 & lipogram:e.*back-off"):
        PerecLogitsProcessor.validate_params(params("syllables:1 & lipogram:e"))
    with pytest.raises(ValueError, match="unknown constraint"):
        PerecLogitsProcessor.validate_params(params("nonsense:1"))
    with pytest.raises(ValueError, match="unknown key"):
        PerecLogitsProcessor.validate_params(Params({"perec": {"constraints": "lipogram:e", "x": 1}}))


def test_rules_travel_as_a_dict_or_as_json():
    import json

    spec = RowSpec("lipogram:e & ban:the", "The sea ", 3, ("a line",))
    assert RowSpec.from_args(spec.to_args()) == spec
    assert RowSpec.from_args(json.dumps(spec.to_args())) == spec  # Ray Data's rows
    assert RowSpec.from_args("") is None
    with pytest.raises(ValueError, match="not JSON"):
        RowSpec.from_args("{lipogram")


def test_prepare_carries_rules_prompt_and_settings(tokenizer):
    p = prepare({"id": 7, "prompt": "The sea ", "constraints": ["lipogram:e", "ban:the"],
                 "settings": {"max_new_tokens": 9, "seed": 3, "top_k": 0, "min_new_tokens": 2}},
                tokenizer)
    assert p.id == "7" and p.prompt == "The sea "
    assert p.prompt_ids == tokenizer.encode("The sea", add_special_tokens=True)
    assert p.drop_space and p.context == "The sea "
    args = p.params["extra_args"]["perec"]
    assert args["context"] == "The sea " and args["min_tokens"] == 2
    assert parse_specs([args["constraints"]]).spec() == parse_specs(["lipogram:e", "ban:the"]).spec()
    assert (p.params["max_tokens"], p.params["seed"], p.params["top_k"]) == (9, 3, 0)
    assert "min_tokens" not in p.params  # the rules hold EOS back, not vLLM
    free = prepare({"id": "f", "prompt": "Hi", "settings": {"greedy": True, "stop": ["\n"]}}, tokenizer)
    assert "extra_args" not in free.params
    assert free.params["temperature"] == 0.0 and free.params["stop"] == ["\n"]


def test_prepare_starts_a_form_on_its_own_line_with_its_budget(tokenizer):
    from studio.request import token_budget, with_form

    p = prepare({"id": "h", "prompt": "Autumn rain", "form": "haiku"}, tokenizer)
    assert p.context == "Autumn rain\n"
    assert p.params["max_tokens"] == token_budget(with_form(None, "haiku"))
    args = p.params["extra_args"]["perec"]
    assert args["constraints"] == "form:haiku" and args["given"] == []
    g = prepare({"id": "g", "prompt": "Autumn rain", "form": "haiku",
                 "given": ["an old silent pond"]}, tokenizer)
    assert g.context == "Autumn rain\nan old silent pond\n"
    spec = RowSpec.from_args(g.params["extra_args"]["perec"])
    assert spec.constraint() == g.constraint  # the given lines survive the trip to vLLM


@pytest.mark.parametrize("request_, match", [
    ({"prompt": "x", "constraints": "syllables:1 & lipogram:e"}, "back-off"),
    ({"prompt": "x", "form": "haiku", "constraints": "lipogram:e"}, "lipogram:e & form:haiku.*back-off"),
    ({"prompt": "x", "constraints": "nonsense:1"}, "unknown constraint"),
    ({"prompt": "x", "settings": {"max_new_tokens": 0}}, "max_new_tokens"),
    ({"prompt": "x", "settings": {"temprature": 1}}, "unknown setting"),
    ({"prompt": "x", "colour": "red"}, "unknown request field"),
    ({"prompt": "  "}, "empty prompt"),
    ({"prompt": "x", "mode": "chat"}, "unknown mode"),
    ({"prompt": "x", "constraints": "lipogram:abcdefghijklmnopqrstuvwxyz"}, "every letter"),
])
def test_prepare_refuses_bad_requests_with_one_clear_error(tokenizer, request_, match):
    with pytest.raises(ValueError, match=match):
        prepare(request_, tokenizer)


# ---------------------------------------------------------------- vLLM itself


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (make vllm)")
def test_vllm_runs_two_prompts_under_the_rules(tmp_path):
    """vLLM spawns its engine: run a script in a child process, as a user would."""
    script = tmp_path / "two.py"
    script.write_text(
        "import json\n"
        "from studio.bridges.vllm import run_batch\n"
        "if __name__ == '__main__':\n"
        "    reqs = [{'id': 'e', 'prompt': 'The old house on the hill', 'constraints': 'lipogram:e',\n"
        "             'settings': {'max_new_tokens': 24, 'seed': 1}},\n"
        "            {'id': 'h', 'prompt': 'Autumn rain', 'form': 'haiku'},\n"
        "            {'id': 'f', 'prompt': 'The sea at night', 'settings': {'max_new_tokens': 24, 'seed': 2}}]\n"
        "    for r in run_batch(reqs, max_model_len=512):\n"
        "        print(json.dumps(r))\n")
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    from studio.api import check as studio_check
    from studio.request import with_form

    rows = {r["id"]: r for r in map(json.loads, [line for line in run.stdout.splitlines() if line.startswith("{")])}
    assert set(rows) == {"e", "h", "f"}
    assert rows["h"]["stop_reason"] == "eos"  # a whole haiku
    assert studio_check(rows["h"]["text"], with_form(None, "haiku")) == []
    assert rows["e"]["tokens"] > 5 and "e" not in rows["e"]["text"].lower()
    assert parse_spec("lipogram:e").check(rows["e"]["text"]) == []
    assert rows["f"]["tokens"] > 5 and rows["f"]["constraints"] == ""


def test_vllm_model_dir_drops_the_gguf_note_in_a_copy(tmp_path):
    import json

    from studio.bridges.vllm import model_name, vllm_model_dir

    src = tmp_path / "m-f32"
    src.mkdir()
    config = {"model_type": "llama", "quantization_config": {"quant_method": "gguf", "gguf_file": "x.gguf"}}
    (src / "config.json").write_text(json.dumps(config))
    (src / "model.safetensors").write_bytes(b"weights")
    dst = vllm_model_dir(src)
    assert dst != src and dst.name == "m-f32-vllm"
    assert "quantization_config" not in json.loads((dst / "config.json").read_text())
    assert (dst / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((src / "config.json").read_text()) == config  # our loader's copy is untouched
    assert vllm_model_dir(src) == dst  # again: the same folder
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert vllm_model_dir(plain) == plain
    assert model_name(str(dst)) == "m-f32-vllm"
