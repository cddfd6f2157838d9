"""The llama.cpp engine (models/llamacpp.py, models/llama_source.py) on the embedded GGUF.

llama.cpp has no tiny random model to build from a config here, so these run the real
file; it loads in well under a second and decodes ~100 tokens/s on this CPU."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from models.loading import llama_unavailable

pytestmark = pytest.mark.skipif(llama_unavailable() is not None, reason=str(llama_unavailable()))


@pytest.fixture(scope="module")
def gguf_model():
    from models.llamacpp import GGUFModel
    from models.loading import embedded_gguf

    return GGUFModel(embedded_gguf(), cells=4096, seqs=16)


@pytest.fixture(scope="module")
def llama_engine():
    from models.loading import load_model
    from studio.decode.engine import Engine

    lm = load_model(None, backend="llama")
    assert lm.backend == "llama"
    return Engine(lm)


def _ids(tokenizer, text):
    return tokenizer.encode(text)


def test_logits_agree_with_the_torch_conversion(gguf_model, tokenizer):
    """The same weights (Q4_1, de-quantized for torch): the next-token ranking agrees."""
    from models.loading import load_model

    ids = _ids(tokenizer, "The cat sat on the mat and looked out of the")
    from models.llama_source import LlamaSource

    src = LlamaSource(gguf_model)
    ((sid, ours),) = src.add(ids)
    ref = load_model(None, backend="torch").model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    assert ours.shape == ref.shape
    assert int(ours.argmax()) == int(ref.argmax())
    top = torch.topk(ref, 20).indices
    assert len(set(torch.topk(ours, 20).indices.tolist()) & set(top.tolist())) >= 15
    assert torch.corrcoef(torch.stack([ours, ref]))[0, 1] > 0.99
    src.remove(sid)


def test_batch_fork_crop_remove_match_a_sequence_alone(gguf_model, tokenizer):
    """Sequences decoded together see what each would see alone; a fork continues from its
    source; a back-off then the same token gives the same logits; ids go back when done."""
    from models.llama_source import LlamaSource

    free = gguf_model.free_seqs
    a_ids, b_ids = _ids(tokenizer, "Once upon a time"), _ids(tokenizer, "In the beginning there was")
    alone = LlamaSource(gguf_model)
    ((sa, la),) = alone.add(a_ids)
    la2 = alone.step({sa: 11})[sa]
    alone.remove(sa)

    src = LlamaSource(gguf_model)
    ((s1, l1),) = src.add(a_ids)
    ((s2, _),) = src.add(b_ids)
    assert torch.allclose(l1, la, atol=1e-3)
    out = src.step({s1: 11, s2: 13})
    assert torch.allclose(out[s1], la2, atol=1e-2)
    (f,) = src.fork(s1)
    again = src.step({f: 17, s1: 19})
    # the fork and its source went separate ways from one shared prefix
    assert not torch.allclose(again[f], again[s1])
    # back off the source's last token and take the fork's: the fork's logits come back
    src.crop(s1, len(a_ids) + 1)
    assert torch.allclose(src.step({s1: 17})[s1], again[f], atol=1e-2)
    copies = src.add(a_ids, copies=3)
    assert all(torch.equal(c[1], copies[0][1]) for c in copies)
    for sid in list(src.seqs):
        src.remove(sid)
    assert gguf_model.free_seqs == free


def test_a_prefill_that_never_joins_gives_its_sequence_back(gguf_model, tokenizer):
    import gc

    from models.llama_source import LlamaPrefill

    free = gguf_model.free_seqs
    block = LlamaPrefill(gguf_model, _ids(tokenizer, "A prompt left half way"))
    block.advance(2)
    assert gguf_model.free_seqs == free - 1
    del block
    gc.collect()
    assert gguf_model.free_seqs == free


def test_a_full_cache_is_one_clear_error(tokenizer):
    from models.llama_source import LlamaSource
    from models.llamacpp import GGUFModel, LlamaCppError
    from models.loading import embedded_gguf

    small = GGUFModel(embedded_gguf(), cells=256, seqs=2)
    src = LlamaSource(small)
    with pytest.raises(LlamaCppError, match="cache is full.*PEREC_LLAMA_CTX"):
        src.add(list(range(100, 400)))
    ((a, _),) = src.add([1, 2, 3])
    ((b, _),) = src.add([1, 2, 3])
    with pytest.raises(LlamaCppError, match="sequences are in use.*PEREC_LLAMA_SEQS"):
        src.add([4, 5])
    src.remove(a)
    src.remove(b)
    assert small.free_seqs == 2


def test_plain_rows_only(gguf_model):
    from models.llama_source import LlamaSource
    from models.sources import Row

    src = LlamaSource(gguf_model)
    with pytest.raises(ValueError, match="plain rows only"):
        src.add([1, 2], rows=(Row("x", (), 1.0),))


RULES = ["lipogram:e", "syllables:1", "sentences:3", "ban-words:the & words:<=40", "json",
         "bullets:3", "lipogram:e & syllables:1", "paragraphs:2"]


@pytest.mark.parametrize("spec", RULES)
def test_every_rule_holds_on_llama(llama_engine, spec):
    from constraints.spec import parse_spec as parse
    from studio.decode.settings import Settings

    c = parse(spec)
    r = llama_engine.generate("Write about the sea.", c, Settings(max_new_tokens=120, seed=3), mode="instruct")
    assert r.text.strip() and c.check(r.text) == [], (spec, r.text)


def test_a_form_with_search_and_variants_on_llama(llama_engine):
    from studio.decode.settings import Settings
    from studio.request import Request, prepare

    job = prepare(Request(prompt="autumn rain", form="haiku", search=3, settings={"seed": 1}), llama_engine)
    r = job.generate(llama_engine)
    assert r.text and job.form.check(r.text) == [], r.text
    many = llama_engine.variants("The sea", None, Settings(max_new_tokens=12, seed=5), k=3)
    assert len({v.text for v in many}) > 1
    assert llama_engine.decode_model.free_seqs == llama_engine.decode_model.max_seqs


def test_concurrent_writers_share_one_llama_batch(llama_engine):
    """Three writers through the scheduler: each gets its own text, every rule holds."""
    from constraints.spec import parse_spec as parse
    from studio.decode.settings import Settings

    sched = llama_engine.scheduler()
    specs = ["lipogram:e", "syllables:1", "ban:the"]
    out = {}
    gens = {s: llama_engine.stream("The old house", parse(s), Settings(max_new_tokens=30, seed=2)) for s in specs}

    def read(spec):
        out[spec] = (gens[spec].constraint, "".join(gens[spec]))

    for g in gens.values():
        sched.submit(g)
    threads = [threading.Thread(target=read, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(out) == set(specs)
    for spec, (c, text) in out.items():
        assert text and c.check(text) == [], (spec, text)


def test_steered_rows_run_on_the_torch_twin(llama_engine):
    """Prompt contrast needs two rows per sequence: it runs on the torch model, loaded on
    first use, and the plain rows stay on llama.cpp."""
    from studio.request import Request, Steering, prepare

    req = Request(prompt="The garden", steering=Steering(steer='"joyful"'), settings={"seed": 1, "max_new_tokens": 12})
    r = prepare(req, llama_engine).generate(llama_engine)
    assert r.text
    assert isinstance(llama_engine.model, torch.nn.Module)


def test_backend_choice(monkeypatch):
    from models import loading

    cpu = torch.device("cpu")
    assert loading.pick_backend(None, cpu, "auto") == ("llama", "")
    assert loading.pick_backend(None, cpu, "torch") == ("torch", "")
    assert loading.pick_backend("HuggingFaceTB/SmolLM2-360M", cpu, "auto") == ("torch", "")
    with pytest.raises(loading.ModelLoadError, match="unknown engine 'fast'.*PEREC_BACKEND"):
        loading.pick_backend(None, cpu, "fast")
    with pytest.raises(loading.ModelLoadError, match="runs GGUF files"):
        loading.pick_backend("some/checkpoint", cpu, "llama")
    import models.llamacpp

    monkeypatch.setattr(models.llamacpp, "unavailable", lambda: "llama-cpp-python is not usable (ImportError: x)")
    backend, note = loading.pick_backend(None, cpu, "auto")
    assert backend == "torch" and "torch engine runs" in note and "make setup" in note
    with pytest.raises(loading.ModelLoadError, match="not usable"):
        loading.pick_backend(None, cpu, "llama")


def test_logits_are_float32_numpy_backed(gguf_model, tokenizer):
    from models.llama_source import LlamaSource

    src = LlamaSource(gguf_model)
    ((sid, logits),) = src.add(_ids(tokenizer, "Hello"))
    assert logits.dtype == torch.float32 and logits.shape == (gguf_model.vocab_size,)
    assert np.isfinite(logits.numpy()).all()
    src.remove(sid)


def test_gguf_names(tmp_path, monkeypatch):
    """A local GGUF path, a Hub file (owner/repo/file.gguf) offline, and a Space's refusal
    of local paths: each one clear error."""
    from models import loading

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loading.gguf_file(None) == loading.embedded_gguf()
    assert loading.gguf_file("some/checkpoint") is None
    with pytest.raises(loading.ModelLoadError, match="not in the local Hub cache.*offline"):
        loading.gguf_file("owner/repo/model-Q4_K_M.gguf")
    with pytest.raises(loading.ModelLoadError, match="local model paths are disabled"):
        loading.gguf_file(str(tmp_path / "x.gguf"), allow_local=False)
    with pytest.raises(loading.ModelLoadError, match="no GGUF file"):
        loading.load_model(str(tmp_path / "missing.gguf"), backend="llama")
    local = tmp_path / "copy.gguf"
    local.symlink_to(loading.embedded_gguf())
    lm = loading.load_model(str(local), backend="llama")
    assert lm.backend == "llama" and lm.model.vocab_size == 49152
    loading.unload(lm)


def test_next_words_on_llama_obey_the_rule_and_free_their_sequences(llama_engine):
    """The next-word search runs on the engine's own source: llama.cpp, no torch model."""
    from constraints.spec import parse_spec
    from studio.next_words import next_candidates

    model = llama_engine.decode_model
    free = model.free_seqs
    cands = next_candidates(llama_engine, "The cat sat on the", parse_spec("lipogram:e"), n=8)
    assert len(cands) >= 4
    assert all("e" not in c.text.lower() for c in cands), [c.text for c in cands]
    assert [c.prob for c in cands] == sorted((c.prob for c in cands), reverse=True)
    assert model.free_seqs == free
