"""`perec batch` (studio/batch.py) on the tiny random llama: the JSONL contract, resuming,
bad lines, a kill mid-write, and the command line."""

import json
import os
import subprocess
import sys

from constraints.spec import parse_spec
from studio.batch import finished_ids, run_batch
from tests.conftest import ROOT

GOOD = [
    {"id": "a", "prompt": "The old house", "constraints": "lipogram:e", "settings": {"max_new_tokens": 12, "seed": 1}},
    {"id": "b", "prompt": "Once upon a time", "constraints": ["syllables:1"], "max_new_tokens": 10, "seed": 2},
    {"id": "c", "prompt": "The sea", "variants": 2, "settings": {"max_new_tokens": 8, "seed": 3}},
    {"id": "d", "prompt": "autumn rain", "form": "haiku", "search": 1, "seed": 4},
]


def write_jsonl(path, rows, extra_lines=()):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_every_request_gets_a_result_line_with_generate_fields(tiny_engine, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, GOOD)
    p = run_batch(inp, out, engine=tiny_engine, rows=3, show=False)
    got = {r["id"]: r for r in read_jsonl(out)}
    assert set(got) == {"a", "b", "c", "d"} and p.done == 4 and p.errors == 0
    for key in ("text", "prompt", "tokens", "seconds", "model", "constraints", "seed", "stop_reason",
                "settings", "token_ids", "tokens_per_second"):
        assert key in got["a"]
    assert parse_spec("lipogram:e").check(got["a"]["text"]) == [] and got["a"]["tokens"] <= 12
    assert parse_spec("syllables:1").check(got["b"]["text"]) == [] and got["b"]["seed"] == 2
    assert [v["seed"] for v in got["c"]["variants"]] == [3, 4]
    from studio.request import with_form

    assert with_form(None, "haiku").check(got["d"]["text"]) == [], got["d"]["text"]
    # The same request through the API gives the same text: batching changes nothing.
    import studio

    alone = studio.generate("The old house", "lipogram:e", engine=tiny_engine, max_new_tokens=12, seed=1)
    assert alone.text == got["a"]["text"]


def test_bad_lines_become_error_lines_and_the_rest_runs(tiny_engine, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bad = [
        {"id": "x1", "prompt": "Hi", "constraints": "lipogram:"},             # bad spec
        {"id": "x2", "prompt": "Hi", "colour": "red"},                        # unknown field
        {"id": "x3", "prompt": "Hi", "settings": {"temperature": -1}},        # bad setting
        {"id": "x4", "prompt": "   "},                                        # empty prompt
        {"id": "x5", "prompt": "Hi", "constraints": "require:e & lipogram:e"},  # impossible
        {"id": "a", "prompt": "duplicate id"},
    ]
    write_jsonl(inp, GOOD[:1] + bad, extra_lines=["{not json", "[1, 2]"])
    p = run_batch(inp, out, engine=tiny_engine, show=False)
    rows = read_jsonl(out)
    errors = {r["id"]: r["error"] for r in rows if "error" in r}
    assert p.errors == len(errors) == 8 and len(rows) == 9
    assert "lipogram" in errors["x1"] and "colour" in errors["x2"] and "temperature" in errors["x3"]
    assert "empty prompt" in errors["x4"] and "bans it" in errors["x5"]
    assert any("not JSON" in e for e in errors.values()) and any("JSON object" in e for e in errors.values())
    assert any("used by an earlier line" in e for e in errors.values())
    assert all("\n" not in e and "Traceback" not in e for e in errors.values())


def test_a_second_run_resumes_where_the_first_stopped(tiny_engine, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, GOOD[:2])
    run_batch(inp, out, engine=tiny_engine, show=False)
    first = read_jsonl(out)
    write_jsonl(inp, GOOD[:3])  # one more request added
    p = run_batch(inp, out, engine=tiny_engine, show=False)
    rows = read_jsonl(out)
    assert p.total == 1 and [r["id"] for r in rows[:2]] == [r["id"] for r in first] and rows[2]["id"] == "c"
    assert run_batch(inp, out, engine=tiny_engine, show=False).total == 0  # nothing left to do


def test_a_line_cut_short_by_a_crash_is_dropped_on_resume(tiny_engine, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, GOOD[:2])
    run_batch(inp, out, engine=tiny_engine, show=False)
    whole = out.read_text().splitlines()
    out.write_text(whole[0] + "\n" + whole[1][:25])  # kill -9 in the middle of the second line
    assert finished_ids(out) == {json.loads(whole[0])["id"]}
    assert out.read_text() == whole[0] + "\n"  # the partial line is gone
    run_batch(inp, out, engine=tiny_engine, show=False)
    assert sorted(r["id"] for r in read_jsonl(out)) == ["a", "b"]


def test_the_command_line(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"id": "1", "prompt": "Hi", "constraints": "lipogram:"}])
    cmd = [sys.executable, "-m", "studio.cli", "batch", "--in", str(inp), "--out", str(out), "--json", "--no-progress"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"done": 1, "errors": 1, "tokens": 0, "tokens_per_second": 0.0}
    same = subprocess.run(cmd[:-4] + ["--out", str(inp)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert same.returncode == 2 and "must not be the input file" in same.stderr
    missing = subprocess.run(cmd[:5] + [str(tmp_path / "nope.jsonl"), "--out", str(out)], capture_output=True,
                             text=True, cwd=ROOT, timeout=300)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    vllm = subprocess.run(cmd[:-2] + ["--backend", "vllm"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    # vLLM is not in the default environment: one clear line says how to get it.
    assert vllm.returncode == 2 and "make vllm" in vllm.stderr
