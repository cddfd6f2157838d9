"""The real embedded model end to end (one shared load per session)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.real


def test_lipogram_generation_as_in_the_readme(real_engine):
    import studio

    r = studio.generate("The old house on the hill", "lipogram:e", engine=real_engine,
                        max_new_tokens=80, seed=1)
    assert r.tokens >= 20
    assert "e" not in r.text.lower()
    assert studio.check(r.text, "lipogram:e") == []
    assert len(r.text.split()) >= 10  # words, not a handful of symbols


def test_instruct_mode_answers_under_the_constraint(real_engine):
    import studio

    r = studio.generate("Write two sentences about the sea.", "lipogram:e", engine=real_engine,
                        mode="instruct", max_new_tokens=40, seed=2)
    assert r.tokens > 5 and "e" not in r.text.lower()
    assert "<|im" not in r.text


def test_word_candidates_obey_and_look_like_words(real_engine):
    import studio

    cs = studio.candidates("The old house on the hill was", "lipogram:e", engine=real_engine, n=10)
    assert len(cs) == 10
    assert all("e" not in c.text.lower() for c in cs)
    assert sum(c.text.strip().isalpha() for c in cs) >= 8


def test_filter_lowers_perplexity_on_gadsby(real_engine):
    import studio

    text = (DATA / "gadsby-train.txt").read_text()[20000:23000]
    plain = studio.score(text, engine=real_engine)
    filtered = studio.score(text, "lipogram:e", engine=real_engine)
    assert filtered.disallowed == 0
    assert filtered.perplexity < plain.perplexity


def test_cli_generate_json(tmp_path):
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "studio.cli", "generate", "--prompt", "The old house on the hill",
         "-c", "lipogram:e", "--max-new-tokens", "30", "--seed", "1", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    for key in ("text", "prompt", "tokens", "seconds", "model", "constraints", "seed"):
        assert key in d
    assert d["constraints"] == "lipogram:e" and d["seed"] == 1 and d["tokens"] > 0
    assert "e" not in d["text"].lower()


def test_variants_are_one_batch_and_each_keeps_the_rule(real_engine):
    import studio

    rs = studio.variants("The sea was calm and", "syllables:1", k=3, engine=real_engine,
                         max_new_tokens=24, seed=5)
    assert len(rs) == 3
    assert len({r.text for r in rs}) == 3  # three seeds, three different continuations
    for r in rs:
        assert r.tokens >= 8 and studio.check(r.text, "syllables:1") == []


def test_batch_file_on_the_real_model(real_engine, tmp_path):
    from studio.batch import run_batch
    import studio

    requests = [{"id": "lip", "prompt": "The old house on the hill", "constraints": "lipogram:e",
                 "settings": {"max_new_tokens": 30, "seed": 1}},
                {"id": "haiku", "prompt": "Autumn rain", "form": "haiku", "seed": 2},
                {"id": "bad", "prompt": "x", "constraints": "lipogram:"}]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in requests))
    run_batch(src, out, engine=real_engine, show=False)
    lines = {d["id"]: d for d in map(json.loads, out.read_text().splitlines())}
    assert set(lines) == {"lip", "haiku", "bad"}
    assert lines["lip"]["text"].strip() and studio.check(lines["lip"]["text"], "lipogram:e") == []
    assert len(lines["haiku"]["text"].strip().splitlines()) == 3
    assert studio.check(lines["haiku"]["text"], "form:haiku") == []
    assert "lipogram" in lines["bad"]["error"] and "\n" not in lines["bad"]["error"]
